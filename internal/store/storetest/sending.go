package storetest

import (
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
)

func testLeases(t *testing.T, s payout.Store) {
	hour := time.Hour
	steps := []struct {
		name   string
		do     func() error
		wantIs error
	}{
		{"a takes", func() error { return s.AcquireLease(ctx(t), chainID, sender, "a", hour) }, nil},
		{"b refused", func() error { return s.AcquireLease(ctx(t), chainID, sender, "b", hour) }, payout.ErrLeaseHeld},
		{"a renews", func() error { return s.AcquireLease(ctx(t), chainID, sender, "a", hour) }, nil},
		{"b takes another sender", func() error { return s.AcquireLease(ctx(t), chainID, sender2, "b", hour) }, nil},
		{"b takes another chain", func() error { return s.AcquireLease(ctx(t), chainID+1, sender, "b", hour) }, nil},
		{"b cannot release a's", func() error { return s.ReleaseLease(ctx(t), chainID, sender, "b") }, nil},
		{"b still refused", func() error { return s.AcquireLease(ctx(t), chainID, sender, "b", hour) }, payout.ErrLeaseHeld},
		{"a releases", func() error { return s.ReleaseLease(ctx(t), chainID, sender, "a") }, nil},
		{"b takes after release", func() error { return s.AcquireLease(ctx(t), chainID, sender, "b", hour) }, nil},
		{"a refused", func() error { return s.AcquireLease(ctx(t), chainID, sender, "a", hour) }, payout.ErrLeaseHeld},
		{"releasing nothing", func() error { return s.ReleaseLease(ctx(t), 99, sender, "a") }, nil},
	}
	for _, st := range steps {
		err := st.do()
		if st.wantIs == nil && err != nil || st.wantIs != nil && !errors.Is(err, st.wantIs) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.wantIs)
		}
	}
}

func testLeaseExpiry(t *testing.T, s payout.Store) {
	if err := s.AcquireLease(ctx(t), chainID, sender, "a", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := s.AcquireLease(ctx(t), chainID, sender, "b", time.Hour); !errors.Is(err, payout.ErrLeaseHeld) {
		t.Fatalf("b before expiry: err = %v, want ErrLeaseHeld", err)
	}
	time.Sleep(400 * time.Millisecond)
	if err := s.AcquireLease(ctx(t), chainID, sender, "b", time.Hour); err != nil {
		t.Fatalf("b after expiry (steal): %v", err)
	}
	if err := s.AcquireLease(ctx(t), chainID, sender, "a", time.Hour); !errors.Is(err, payout.ErrLeaseHeld) {
		t.Errorf("a after b stole: err = %v, want ErrLeaseHeld", err)
	}
}

func testConcurrentLease(t *testing.T, s payout.Store) {
	owners := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	errs := race(len(owners), func(i int) error {
		return s.AcquireLease(ctx(t), chainID, sender, owners[i], time.Hour)
	})
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, payout.ErrLeaseHeld):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("owners holding the lease = %d, want 1", won)
	}
}

func testQueuedPayouts(t *testing.T, s payout.Store) {
	mine := mustCreate(t, s, 5)
	mustCreate(t, s, 2, withSender(chainID, sender2))
	mustCreate(t, s, 2, withSender(chainID+1, sender))
	if _, err := s.CancelPayout(ctx(t), mine[1].ID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		limit int
		want  []string
	}{
		{3, []string{mine[0].ID, mine[2].ID, mine[3].ID}},
		{10, []string{mine[0].ID, mine[2].ID, mine[3].ID, mine[4].ID}},
		{0, []string{mine[0].ID, mine[2].ID, mine[3].ID, mine[4].ID}},
	}
	for _, tc := range tests {
		got, err := s.QueuedPayouts(ctx(t), chainID, sender, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, idsOf(got)); diff != "" {
			t.Errorf("QueuedPayouts(limit %d) mismatch (-want +got):\n%s", tc.limit, diff)
		}
	}
	got, err := s.QueuedPayouts(ctx(t), chainID, common.Address{}, 10)
	if err != nil || len(got) != 0 {
		t.Errorf("QueuedPayouts(unknown sender) = %d payouts, %v; want none", len(got), err)
	}
}

func testFailQueued(t *testing.T, s payout.Store) {
	ps := mustCreate(t, s, 3)
	mustSubmit(t, s, ps[2:], 0)
	err := s.FailQueued(ctx(t), []payout.Failure{
		{PayoutID: ps[0].ID, Code: payout.FailureInsufficientFunds, Message: "hot wallet is short of 1 ETH"},
		{PayoutID: ps[2].ID, Code: payout.FailureWouldRevert, Message: "not queued: left alone"},
		{PayoutID: "po_missing", Code: payout.FailureWouldRevert, Message: "unknown: ignored"},
	})
	if err != nil {
		t.Fatalf("FailQueued: %v", err)
	}
	tests := []struct {
		id      string
		status  payout.Status
		code    payout.Code
		version int64
	}{
		{ps[0].ID, payout.StatusFailed, payout.FailureInsufficientFunds, 2},
		{ps[1].ID, payout.StatusQueued, "", 1},
		{ps[2].ID, payout.StatusSubmitted, "", 2},
	}
	for _, tc := range tests {
		p := mustGet(t, s, tc.id)
		if p.Status != tc.status || p.FailureCode != tc.code || p.Version != tc.version {
			t.Errorf("payout %s = %s/%q/v%d, want %s/%q/v%d", tc.id, p.Status, p.FailureCode, p.Version,
				tc.status, tc.code, tc.version)
		}
	}
	if got := mustGet(t, s, ps[0].ID).FailureMessage; got != "hot wallet is short of 1 ETH" {
		t.Errorf("failure message = %q", got)
	}
	if err := s.FailQueued(ctx(t), nil); err != nil {
		t.Errorf("FailQueued(nil): %v", err)
	}
}

func testSubmitAttempts(t *testing.T, s payout.Store) {
	if _, ok, err := s.MaxNonce(ctx(t), chainID, sender); err != nil || ok {
		t.Fatalf("MaxNonce before any = %v, %v; want false, nil", ok, err)
	}
	ps := mustCreate(t, s, 3)
	as := mustSubmit(t, s, ps, 7)
	n, ok, err := s.MaxNonce(ctx(t), chainID, sender)
	if err != nil || !ok || n != 9 {
		t.Errorf("MaxNonce = %d, %v, %v; want 9, true, nil", n, ok, err)
	}
	for i, p := range ps {
		got := mustGet(t, s, p.ID)
		if got.Status != payout.StatusSubmitted || got.Version != 2 || got.Nonce == nil || *got.Nonce != 7+uint64(i) ||
			got.TxHash == nil || *got.TxHash != as[i].TxHash {
			t.Errorf("payout %d after submit = %+v", i, got)
		}
		stored, err := s.ListAttempts(ctx(t), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if as[i].ID == 0 || as[i].CreatedAt.IsZero() {
			t.Errorf("attempt %d: id %d created_at %v, want both set", i, as[i].ID, as[i].CreatedAt)
		}
		if diff := cmp.Diff([]*payout.Attempt{as[i]}, stored, cmpOpts...); diff != "" {
			t.Errorf("ListAttempts(%d) mismatch (-want +got):\n%s", i, diff)
		}
	}
	inflight, err := s.InFlightAttempts(ctx(t), chainID, sender)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(as, inflight, cmpOpts...); diff != "" {
		t.Errorf("InFlightAttempts mismatch (-want +got):\n%s", diff)
	}
	if other, err := s.InFlightAttempts(ctx(t), chainID, sender2); err != nil || len(other) != 0 {
		t.Errorf("InFlightAttempts(other sender) = %d, %v; want none", len(other), err)
	}
	if err := s.SubmitAttempts(ctx(t), nil); err != nil {
		t.Errorf("SubmitAttempts(nil): %v", err)
	}
}

func testSubmitAttemptsStale(t *testing.T, s payout.Store) {
	ps := mustCreate(t, s, 4)
	if _, err := s.CancelPayout(ctx(t), ps[1].ID); err != nil {
		t.Fatal(err)
	}
	mustSubmit(t, s, ps[3:], 0)
	as := []*payout.Attempt{attemptFor(ps[0], 1), attemptFor(ps[1], 2), attemptFor(ps[2], 3), attemptFor(ps[3], 4)}
	as = append(as, &payout.Attempt{PayoutID: "po_missing", ChainID: chainID, Sender: sender, Nonce: 5,
		RawTx: []byte{1}, MaxFeePerGas: big.NewInt(1), MaxPriorityFeePerGas: big.NewInt(1)})
	err := s.SubmitAttempts(ctx(t), as)
	var stale *payout.StaleError
	if !errors.As(err, &stale) {
		t.Fatalf("SubmitAttempts with cancelled payout: err = %v, want StaleError", err)
	}
	want := []string{ps[1].ID, ps[3].ID, "po_missing"}
	if diff := cmp.Diff(want, stale.PayoutIDs); diff != "" {
		t.Errorf("stale ids mismatch (-want +got):\n%s", diff)
	}
	// Nothing was written: ps[0] and ps[2] are still queued without attempts.
	for _, p := range []*payout.Payout{ps[0], ps[2]} {
		if got := mustGet(t, s, p.ID); got.Status != payout.StatusQueued || got.Version != 1 {
			t.Errorf("payout %s = %s v%d, want queued v1", p.ID, got.Status, got.Version)
		}
		if atts, _ := s.ListAttempts(ctx(t), p.ID); len(atts) != 0 {
			t.Errorf("payout %s has %d attempts, want 0", p.ID, len(atts))
		}
	}
	if n, _, _ := s.MaxNonce(ctx(t), chainID, sender); n != 0 {
		t.Errorf("MaxNonce = %d, want 0 (nothing allocated by the stale call)", n)
	}
}

func testSubmitAttemptsInvalid(t *testing.T, s payout.Store) {
	p := mustCreate(t, s, 1)[0]
	tests := []struct {
		name string
		as   []*payout.Attempt
	}{
		{"no payout id", []*payout.Attempt{{Nonce: 1}}},
		{"two for one payout", []*payout.Attempt{attemptFor(p, 1), attemptFor(p, 2)}},
		{"no raw tx", []*payout.Attempt{func() *payout.Attempt { a := attemptFor(p, 1); a.RawTx = nil; return a }()}},
		{"no fee caps", []*payout.Attempt{func() *payout.Attempt { a := attemptFor(p, 1); a.MaxFeePerGas = nil; return a }()}},
		{"other sender", []*payout.Attempt{func() *payout.Attempt { a := attemptFor(p, 1); a.Sender = sender2; return a }()}},
	}
	for _, tc := range tests {
		if err := s.SubmitAttempts(ctx(t), tc.as); err == nil {
			t.Errorf("SubmitAttempts(%s) err = nil, want an error", tc.name)
		}
	}
	if got := mustGet(t, s, p.ID); got.Status != payout.StatusQueued {
		t.Errorf("payout status = %s after invalid submits, want queued", got.Status)
	}
}

func testNonceConflict(t *testing.T, s payout.Store) {
	ps := mustCreate(t, s, 4)
	mustSubmit(t, s, ps[:1], 5)
	tests := []struct {
		name string
		as   []*payout.Attempt
	}{
		{"nonce taken before", []*payout.Attempt{attemptFor(ps[1], 5)}},
		{"same nonce in one call", []*payout.Attempt{attemptFor(ps[1], 6), attemptFor(ps[2], 6)}},
		{"one of many taken", []*payout.Attempt{attemptFor(ps[1], 7), attemptFor(ps[2], 5)}},
	}
	for _, tc := range tests {
		if err := s.SubmitAttempts(ctx(t), tc.as); !errors.Is(err, payout.ErrNonceConflict) {
			t.Errorf("%s: err = %v, want ErrNonceConflict", tc.name, err)
		}
	}
	for _, p := range ps[1:] {
		if got := mustGet(t, s, p.ID); got.Status != payout.StatusQueued {
			t.Errorf("payout %s = %s, want queued (nothing written)", p.ID, got.Status)
		}
	}
	if n, _, _ := s.MaxNonce(ctx(t), chainID, sender); n != 5 {
		t.Errorf("MaxNonce = %d, want 5", n)
	}
	// The same nonce is free for another sender and another chain.
	other := mustCreate(t, s, 1, withSender(chainID, sender2))
	mustSubmit(t, s, other, 5)
	other = mustCreate(t, s, 1, withSender(chainID+1, sender))
	mustSubmit(t, s, other, 5)
}

// testCancelSubmitRace cancels payouts while they are being submitted:
// each ends either cancelled without attempts, or submitted with the
// cancel recorded as a request for its sender; never both.
func testCancelSubmitRace(t *testing.T, s payout.Store) {
	for round := range 5 {
		ps := mustCreate(t, s, 10)
		nonce := uint64(round * 10)
		errs := race(len(ps)+1, func(i int) error {
			if i == len(ps) {
				as := make([]*payout.Attempt, len(ps))
				for j, p := range ps {
					as[j] = attemptFor(p, nonce+uint64(j))
				}
				return s.SubmitAttempts(ctx(t), as)
			}
			_, err := s.CancelPayout(ctx(t), ps[i].ID)
			return err
		})
		var stale *payout.StaleError
		submitErr := errs[len(ps)]
		if submitErr != nil && !errors.As(submitErr, &stale) {
			t.Fatalf("round %d: SubmitAttempts err = %v, want nil or StaleError", round, submitErr)
		}
		for i, p := range ps {
			got := mustGet(t, s, p.ID)
			atts, err := s.ListAttempts(ctx(t), p.ID)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case submitErr == nil && (got.Status != payout.StatusSubmitted || len(atts) != 1 || errs[i] != nil || !got.CancelRequested):
				t.Errorf("round %d payout %d: submit won but status %s, %d attempts, cancel err %v, cancel requested %v",
					round, i, got.Status, len(atts), errs[i], got.CancelRequested)
			case submitErr != nil && (got.Status != payout.StatusCancelled || len(atts) != 0 || errs[i] != nil):
				t.Errorf("round %d payout %d: submit stale but status %s, %d attempts, cancel err %v", round, i, got.Status, len(atts), errs[i])
			}
		}
	}
}
