package storetest

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// ApprovalStore is what the approvals suite needs of a store.
type ApprovalStore interface {
	payout.Store
	payout.ApprovalStore
	payout.AuditStore
}

// RunApprovals runs the conformance suite of payout.ApprovalStore. open
// must return a new, empty store each time; tests run in parallel.
func RunApprovals(t *testing.T, open func(t *testing.T) ApprovalStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s ApprovalStore)
	}{
		{"Quorum", testApprovalQuorum},
		{"Reject", testApprovalReject},
		{"Refusals", testApprovalRefusals},
		{"Sweep", testApprovalSweep},
		{"Cancel", testApprovalCancel},
		{"Batch", testApprovalBatch},
		{"BatchReject", testApprovalBatchReject},
		{"Concurrent", testApprovalConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// mustCreatePending stores a pending_approval payout waiting for req
// (PayoutID and CreatedAt are filled).
func mustCreatePending(t *testing.T, s ApprovalStore, req payout.ApprovalRequest) *payout.Payout {
	t.Helper()
	p := newPayout(func(p *payout.Payout) { p.Status = payout.StatusPendingApproval })
	req.PayoutID, req.CreatedAt = p.ID, p.CreatedAt
	if req.Initiator == "" {
		req.Initiator = "key_initiator"
	}
	if req.ExpiresAt.IsZero() {
		req.ExpiresAt = p.CreatedAt.Add(24 * time.Hour)
	}
	if err := s.SaveApprovalRequest(ctx(t), &req); err != nil {
		t.Fatalf("SaveApprovalRequest: %v", err)
	}
	if err := s.CreatePayout(ctx(t), p, nil); err != nil {
		t.Fatalf("CreatePayout(pending_approval): %v", err)
	}
	if p.Status != payout.StatusPendingApproval {
		t.Fatalf("created payout status = %s, want pending_approval", p.Status)
	}
	return p
}

func approval(p *payout.Payout, key string, d payout.ApprovalDecision, reason string) *payout.Approval {
	return &payout.Approval{PayoutID: p.ID, ApproverKeyID: key, ApproverName: "name-" + key, Decision: d, Reason: reason,
		CreatedAt: time.Now()}
}

// eventTypes returns the types of the events about id, oldest first.
func eventTypes(t *testing.T, s payout.Store, id string) []string {
	t.Helper()
	evs, err := s.ListEvents(ctx(t), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if e.ObjectID == id {
			out = append(out, e.Type)
		}
	}
	return out
}

// auditActions returns the actions of the audit log about object.
func auditActions(t *testing.T, s payout.AuditStore, object string) []string {
	t.Helper()
	es, _, err := s.ListAudit(ctx(t), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.Object == object {
			out = append(out, e.Actor+" "+e.Action)
		}
	}
	return out
}

func testApprovalQuorum(t *testing.T, s ApprovalStore) {
	p := mustCreatePending(t, s, payout.ApprovalRequest{Kind: payout.ApprovalQuorum, Quorum: 2, Group: "treasury"})
	if queued, _ := s.QueuedPayouts(ctx(t), chainID, sender, 10); len(queued) != 0 {
		t.Fatalf("a pending payout is queued for its sender: %v", queued)
	}
	got, err := s.DecidePayout(ctx(t), approval(p, "key_a", payout.Approve, ""))
	if err != nil || got.Status != payout.StatusPendingApproval {
		t.Fatalf("first approval: %v, %v; want still pending_approval", got, err)
	}
	got, err = s.DecidePayout(ctx(t), approval(p, "key_b", payout.Approve, "ok"))
	if err != nil || got.Status != payout.StatusQueued {
		t.Fatalf("second approval: %v, %v; want queued", got, err)
	}
	if queued, _ := s.QueuedPayouts(ctx(t), chainID, sender, 10); len(queued) != 1 || queued[0].ID != p.ID {
		t.Fatalf("approved payout not queued for its sender: %v", queued)
	}
	st, err := s.ApprovalState(ctx(t), p.ID)
	if err != nil || st.Approved() != 2 || st.Request.Quorum != 2 || st.Request.Group != "treasury" {
		t.Fatalf("ApprovalState = %+v, %v", st, err)
	}
	want := []string{payout.EventCreated, payout.EventApprovalAdded, payout.EventApproved}
	if got := eventTypes(t, s, p.ID); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	wantAudit := []string{"key_a " + payout.AuditPayoutApprove, "key_b " + payout.AuditPayoutApprove}
	if got := auditActions(t, s, p.ID); !slices.Equal(got, wantAudit) {
		t.Fatalf("audit = %v, want %v", got, wantAudit)
	}
	if _, err := s.DecidePayout(ctx(t), approval(p, "key_c", payout.Approve, "")); !errors.Is(err, payout.ErrNotPendingApproval) {
		t.Fatalf("approving a queued payout = %v, want ErrNotPendingApproval", err)
	}
}

func testApprovalReject(t *testing.T, s ApprovalStore) {
	p := mustCreatePending(t, s, payout.ApprovalRequest{Kind: payout.ApprovalQuorum, Quorum: 1, Group: "ops"})
	// The initiator may reject its own payout: that only stops money.
	got, err := s.DecidePayout(ctx(t), approval(p, "key_initiator", payout.Reject, "wrong amount"))
	if err != nil || got.Status != payout.StatusRejected || got.FailureCode != payout.CodeApprovalRejected {
		t.Fatalf("reject: %+v, %v; want rejected with approval_rejected", got, err)
	}
	if got := mustGet(t, s, p.ID); got.Status != payout.StatusRejected || !got.Status.Terminal() {
		t.Fatalf("stored status %s, want rejected", got.Status)
	}
	if got := eventTypes(t, s, p.ID); !slices.Equal(got, []string{payout.EventCreated, "payout.rejected"}) {
		t.Fatalf("events = %v", got)
	}
	var fe *payout.FieldError
	if _, err := s.DecidePayout(ctx(t), approval(p, "key_x", payout.Reject, " ")); !errors.As(err, &fe) || fe.Field != "reason" {
		t.Fatalf("reject without reason = %v, want a FieldError on reason", err)
	}
}

func testApprovalRefusals(t *testing.T, s ApprovalStore) {
	p := mustCreatePending(t, s, payout.ApprovalRequest{Kind: payout.ApprovalQuorum, Quorum: 2, Group: "ops"})
	if _, err := s.DecidePayout(ctx(t), approval(p, "key_initiator", payout.Approve, "")); !errors.Is(err, payout.ErrSelfApproval) {
		t.Fatalf("self approval = %v, want ErrSelfApproval", err)
	}
	if _, err := s.DecidePayout(ctx(t), approval(p, "key_a", payout.Approve, "")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DecidePayout(ctx(t), approval(p, "key_a", payout.Approve, "")); !errors.Is(err, payout.ErrAlreadyDecided) {
		t.Fatalf("second approval by one key = %v, want ErrAlreadyDecided", err)
	}
	if _, err := s.DecidePayout(ctx(t), &payout.Approval{PayoutID: "po_nope", ApproverKeyID: "key_a", ApproverName: "a",
		Decision: payout.Approve}); !errors.Is(err, payout.ErrNotFound) {
		t.Fatalf("unknown payout = %v, want ErrNotFound", err)
	}
	held := mustCreatePending(t, s, payout.ApprovalRequest{Kind: payout.ApprovalHold, HoldUntil: time.Now().Add(time.Hour)})
	if _, err := s.DecidePayout(ctx(t), approval(held, "key_a", payout.Approve, "")); !errors.Is(err, payout.ErrHeld) {
		t.Fatalf("approving a hold = %v, want ErrHeld", err)
	}
	// An expired request is rejected by the attempt to approve it.
	old := mustCreatePending(t, s, payout.ApprovalRequest{Kind: payout.ApprovalQuorum, Quorum: 1, Group: "ops",
		ExpiresAt: time.Now().Add(-time.Second)})
	got, err := s.DecidePayout(ctx(t), approval(old, "key_a", payout.Approve, ""))
	if !errors.Is(err, payout.ErrApprovalExpired) || got.Status != payout.StatusRejected {
		t.Fatalf("approving an expired payout = %v, %v; want ErrApprovalExpired and rejected", got, err)
	}
	if got := mustGet(t, s, old.ID); got.Status != payout.StatusRejected || got.FailureCode != payout.CodeApprovalExpired {
		t.Fatalf("expired payout stored as %s/%s, want rejected/approval_expired", got.Status, got.FailureCode)
	}
}

func testApprovalSweep(t *testing.T, s ApprovalStore) {
	now := time.Now().UTC()
	due := mustCreatePending(t, s, payout.ApprovalRequest{Kind: payout.ApprovalHold, HoldUntil: now.Add(time.Minute)})
	later := mustCreatePending(t, s, payout.ApprovalRequest{Kind: payout.ApprovalHold, HoldUntil: now.Add(time.Hour)})
	stale := mustCreatePending(t, s, payout.ApprovalRequest{Kind: payout.ApprovalQuorum, Quorum: 1, Group: "ops",
		ExpiresAt: now.Add(2 * time.Minute)})
	fresh := mustCreatePending(t, s, payout.ApprovalRequest{Kind: payout.ApprovalQuorum, Quorum: 1, Group: "ops"})

	res, err := s.SweepApprovals(ctx(t), now.Add(5*time.Minute), 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Released, []string{due.ID}) || !slices.Equal(res.Expired, []string{stale.ID}) {
		t.Fatalf("sweep = %+v, want released [%s] expired [%s]", res, due.ID, stale.ID)
	}
	for id, want := range map[string]payout.Status{due.ID: payout.StatusQueued, later.ID: payout.StatusPendingApproval,
		stale.ID: payout.StatusRejected, fresh.ID: payout.StatusPendingApproval} {
		if got := mustGet(t, s, id); got.Status != want {
			t.Errorf("%s after sweep: %s, want %s", id, got.Status, want)
		}
	}
	if got := eventTypes(t, s, due.ID); !slices.Equal(got, []string{payout.EventCreated, payout.EventReleased}) {
		t.Errorf("released events = %v", got)
	}
	if got := auditActions(t, s, stale.ID); !slices.Equal(got, []string{payout.ActorEngine + " " + payout.AuditPayoutExpire}) {
		t.Errorf("expired audit = %v", got)
	}
	if res, err := s.SweepApprovals(ctx(t), now.Add(5*time.Minute), 100); err != nil || len(res.Released)+len(res.Expired) != 0 {
		t.Fatalf("second sweep = %+v, %v; want nothing", res, err)
	}
	if n, err := payout.VerifyAuditLog(ctx(t), s); err != nil || n != 2 {
		t.Fatalf("VerifyAuditLog = %d, %v; want 2 entries, whole", n, err)
	}
}

func testApprovalCancel(t *testing.T, s ApprovalStore) {
	p := mustCreatePending(t, s, payout.ApprovalRequest{Kind: payout.ApprovalQuorum, Quorum: 1, Group: "ops"})
	got, err := s.CancelPayout(ctx(t), p.ID)
	if err != nil || got.Status != payout.StatusCancelled {
		t.Fatalf("cancel pending payout = %v, %v; want cancelled", got, err)
	}
	if _, err := s.DecidePayout(ctx(t), approval(p, "key_a", payout.Approve, "")); !errors.Is(err, payout.ErrNotPendingApproval) {
		t.Fatalf("approving a cancelled payout = %v, want ErrNotPendingApproval", err)
	}
}

func testApprovalBatch(t *testing.T, s ApprovalStore) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	b := &payout.Batch{ID: ids.New("bat_", now), Policy: payout.BatchAllOrNothing, Source: "csv", Rows: 4, CreatedAt: now}
	ps := make([]*payout.Payout, 4)
	for i := range ps {
		ps[i] = newPayout(func(p *payout.Payout) {
			p.BatchID, p.BatchRow, p.Status = b.ID, i+2, payout.StatusPendingApproval
			p.To = common.BigToAddress(big.NewInt(int64(1000 + i)))
		})
		req := payout.ApprovalRequest{PayoutID: ps[i].ID, Kind: payout.ApprovalQuorum, Quorum: 1, Group: "ops",
			Initiator: "key_initiator", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		switch i {
		case 1:
			req.Group = "board" // not the approver's group
		case 2:
			req.Quorum = 2 // one approval is not enough
		case 3:
			req.Kind, req.Quorum, req.Group, req.HoldUntil = payout.ApprovalHold, 0, "", now.Add(time.Hour)
		}
		if err := s.SaveApprovalRequest(ctx(t), &req); err != nil {
			t.Fatal(err)
		}
	}
	if err := batchStore(t, s).CreateBatch(ctx(t), b, ps, nil); err != nil {
		t.Fatalf("CreateBatch(pending rows): %v", err)
	}
	if got, _ := batchStore(t, s).GetBatch(ctx(t), b.ID); got.Counts[payout.StatusPendingApproval] != 4 {
		t.Fatalf("batch counts = %v, want 4 pending_approval", got.Counts)
	}
	ops := func(g string) bool { return g == "ops" }
	self := &payout.Approval{ApproverKeyID: "key_initiator", ApproverName: "i", Decision: payout.Approve, CreatedAt: time.Now()}
	if _, err := s.DecideBatch(ctx(t), b.ID, self, ops); !errors.Is(err, payout.ErrSelfApproval) {
		t.Fatalf("self approval of a batch = %v, want ErrSelfApproval", err)
	}
	a := &payout.Approval{ApproverKeyID: "key_a", ApproverName: "a", Decision: payout.Approve, CreatedAt: time.Now()}
	res, err := s.DecideBatch(ctx(t), b.ID, a, ops)
	if err != nil {
		t.Fatal(err)
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	if !slices.Equal(res.Approved, sorted(ps[0].ID, ps[2].ID)) || !slices.Equal(res.Queued, []string{ps[0].ID}) ||
		!slices.Equal(res.Skipped, sorted(ps[1].ID, ps[3].ID)) {
		t.Fatalf("DecideBatch = %+v", res)
	}
	for i, want := range []payout.Status{payout.StatusQueued, payout.StatusPendingApproval, payout.StatusPendingApproval, payout.StatusPendingApproval} {
		if got := mustGet(t, s, ps[i].ID); got.Status != want {
			t.Errorf("row %d: %s, want %s", i, got.Status, want)
		}
	}
	if _, err := s.DecideBatch(ctx(t), "bat_none", a, ops); !errors.Is(err, payout.ErrNotPendingApproval) {
		t.Fatalf("batch with nothing pending = %v, want ErrNotPendingApproval", err)
	}
}

// Approvers deciding at once: each is recorded once, the payout moves to
// queued once, and a key racing itself is refused.
func testApprovalConcurrent(t *testing.T, s ApprovalStore) {
	p := mustCreatePending(t, s, payout.ApprovalRequest{Kind: payout.ApprovalQuorum, Quorum: 3, Group: "ops"})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("key_%d", i%4) // four approvers, each twice
			_, errs[i] = s.DecidePayout(ctx(t), approval(p, key, payout.Approve, ""))
		}()
	}
	wg.Wait()
	var ok, dup int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, payout.ErrAlreadyDecided), errors.Is(err, payout.ErrNotPendingApproval):
			dup++
		default:
			t.Fatalf("concurrent approval: %v", err)
		}
	}
	if got := mustGet(t, s, p.ID); got.Status != payout.StatusQueued || ok < 3 || ok > 4 || ok+dup != 8 {
		t.Fatalf("after 8 concurrent approvals by 4 keys: %s, %d recorded, %d refused", got.Status, ok, dup)
	}
	var approved int
	for _, typ := range eventTypes(t, s, p.ID) {
		if typ == payout.EventApproved {
			approved++
		}
	}
	if approved != 1 {
		t.Fatalf("%d payout.approved events, want 1", approved)
	}
}
