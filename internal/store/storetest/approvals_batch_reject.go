package storetest

import (
	"errors"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// A batch rejected as a whole: every pending row is rejected in one
// transaction (held rows and rows of any group too, by the initiator
// too), each with its event and audit entry; a row the key approved
// already is skipped, an expired one expires; nothing changes without a
// reason.
func testApprovalBatchReject(t *testing.T, s ApprovalStore) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	b := &payout.Batch{ID: ids.New("bat_", now), Policy: payout.BatchAllOrNothing, Source: "csv", Rows: 5, CreatedAt: now}
	ps := make([]*payout.Payout, 5)
	for i := range ps {
		ps[i] = newPayout(func(p *payout.Payout) {
			p.BatchID, p.BatchRow, p.Status = b.ID, i+2, payout.StatusPendingApproval
			p.To = common.BigToAddress(big.NewInt(int64(2000 + i)))
		})
		req := payout.ApprovalRequest{PayoutID: ps[i].ID, Kind: payout.ApprovalQuorum, Quorum: 2, Group: "ops",
			Initiator: "key_initiator", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		switch i {
		case 1:
			req.Group = "board"
		case 3:
			req.Kind, req.Quorum, req.Group, req.HoldUntil = payout.ApprovalHold, 0, "", now.Add(time.Hour)
		case 4:
			req.CreatedAt, req.ExpiresAt = now.Add(-2*time.Hour), now.Add(-time.Hour)
		}
		if err := s.SaveApprovalRequest(ctx(t), &req); err != nil {
			t.Fatal(err)
		}
	}
	if err := batchStore(t, s).CreateBatch(ctx(t), b, ps, nil); err != nil {
		t.Fatalf("CreateBatch(pending rows): %v", err)
	}
	// key_a approved row 2 before (one of two): it cannot reject it now.
	if _, err := s.DecidePayout(ctx(t), approval(ps[2], "key_a", payout.Approve, "")); err != nil {
		t.Fatal(err)
	}
	noReason := &payout.Approval{ApproverKeyID: "key_a", ApproverName: "a", Decision: payout.Reject, CreatedAt: time.Now()}
	if _, err := s.DecideBatch(ctx(t), b.ID, noReason, nil); err == nil {
		t.Fatal("a batch was rejected without a reason")
	}
	if got, _ := batchStore(t, s).GetBatch(ctx(t), b.ID); got.Counts[payout.StatusPendingApproval] != 5 {
		t.Fatalf("after a refused rejection, batch counts = %v, want 5 pending_approval", got.Counts)
	}
	events := len(eventTypes(t, s, ps[0].ID))

	a := &payout.Approval{ApproverKeyID: "key_a", ApproverName: "a", Decision: payout.Reject, Reason: "wrong file",
		CreatedAt: time.Now()}
	res, err := s.DecideBatch(ctx(t), b.ID, a, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	if !slices.Equal(res.Approved, sorted(ps[0].ID, ps[1].ID, ps[3].ID)) || len(res.Queued) != 0 ||
		!slices.Equal(res.Skipped, []string{ps[2].ID}) || !slices.Equal(res.Expired, []string{ps[4].ID}) {
		t.Fatalf("DecideBatch(reject) = %+v", res)
	}
	for i, want := range []payout.Code{payout.CodeApprovalRejected, payout.CodeApprovalRejected, "", payout.CodeApprovalRejected, payout.CodeApprovalExpired} {
		got := mustGet(t, s, ps[i].ID)
		wantStatus := payout.StatusRejected
		if want == "" {
			wantStatus = payout.StatusPendingApproval
		}
		if got.Status != wantStatus || got.FailureCode != want {
			t.Errorf("row %d: %s %q, want %s %q", i, got.Status, got.FailureCode, wantStatus, want)
		}
	}
	if got := eventTypes(t, s, ps[0].ID); len(got) != events+1 || got[len(got)-1] != payout.StatusRejected.EventType() {
		t.Errorf("events of a rejected row = %v, want one more: %s", got, payout.StatusRejected.EventType())
	}
	if got := auditActions(t, s, ps[3].ID); !slices.Contains(got, "key_a "+payout.AuditPayoutReject) {
		t.Errorf("audit of the rejected hold = %v, want key_a %s", got, payout.AuditPayoutReject)
	}
	// The initiator may reject what is left.
	self := &payout.Approval{ApproverKeyID: "key_initiator", ApproverName: "i", Decision: payout.Reject, Reason: "withdrawn",
		CreatedAt: time.Now()}
	if res, err := s.DecideBatch(ctx(t), b.ID, self, nil); err != nil || !slices.Equal(res.Approved, []string{ps[2].ID}) {
		t.Fatalf("initiator rejects the rest = %+v, %v", res, err)
	}
	if _, err := s.DecideBatch(ctx(t), b.ID, a, nil); !errors.Is(err, payout.ErrNotPendingApproval) {
		t.Fatalf("rejecting a batch with nothing pending = %v, want ErrNotPendingApproval", err)
	}
}
