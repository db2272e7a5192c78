package storetest

import (
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/payout"
)

// countEvents counts an object's events of one type.
func countEvents(t *testing.T, s payout.Store, objectID, eventType string) int {
	t.Helper()
	n := 0
	for _, e := range eventsOf(t, s, objectID) {
		if e.Type == eventType {
			n++
		}
	}
	return n
}

// replacementFor is a bumped attempt (or a cancel) at a's nonce.
func replacementFor(a *payout.Attempt, kind payout.AttemptKind, salt int64) *payout.Attempt {
	r := *a
	r.ID = 0
	r.Kind = kind
	r.TxHash = crypto.Keccak256Hash(a.TxHash[:], big.NewInt(salt).Bytes())
	r.MaxFeePerGas = new(big.Int).Mul(a.MaxFeePerGas, big.NewInt(2))
	r.MaxPriorityFeePerGas = new(big.Int).Mul(a.MaxPriorityFeePerGas, big.NewInt(2))
	r.CreatedAt = a.CreatedAt.Add(1)
	return &r
}

func testPriorityStored(t *testing.T, s payout.Store) {
	high := mustCreate(t, s, 1, func(p *payout.Payout) { p.Priority = payout.PriorityHigh })[0]
	none := mustCreate(t, s, 1, func(p *payout.Payout) { p.Priority = "" })[0]
	if got := mustGet(t, s, high.ID).Priority; got != payout.PriorityHigh {
		t.Errorf("priority = %q, want high", got)
	}
	if got := mustGet(t, s, none.ID).Priority; got != payout.PriorityStandard {
		t.Errorf("priority of a payout created without one = %q, want standard", got)
	}
}

func testReplaceAttempts(t *testing.T, s payout.Store) {
	ps := mustCreate(t, s, 2)
	as := mustSubmit(t, s, ps, 40)
	bump := replacementFor(as[0], payout.AttemptTransfer, 1)
	cancel := replacementFor(as[1], payout.AttemptCancel, 2)
	if err := s.ReplaceAttempts(ctx(t), []*payout.Attempt{bump, cancel}); err != nil {
		t.Fatalf("ReplaceAttempts: %v", err)
	}
	if got := mustGet(t, s, ps[0].ID); got.TxHash == nil || *got.TxHash != bump.TxHash || got.Status != payout.StatusSubmitted {
		t.Errorf("after a bump: tx hash %v, status %s; want the bump's hash, submitted", got.TxHash, got.Status)
	}
	if got := mustGet(t, s, ps[1].ID); got.TxHash == nil || *got.TxHash != as[1].TxHash {
		t.Errorf("after a cancel attempt: tx hash %v, want the transfer's %s (a cancel never becomes the payout's hash)", got.TxHash, as[1].TxHash)
	}
	list, err := s.ListAttempts(ctx(t), ps[1].ID)
	if err != nil || len(list) != 2 || list[0].Kind != payout.AttemptTransfer || list[1].Kind != payout.AttemptCancel ||
		list[1].Nonce != 41 || list[1].TxHash != cancel.TxHash {
		t.Fatalf("ListAttempts = %+v, %v; want the transfer then the cancel at nonce 41", list, err)
	}
	inFlight, err := s.InFlightAttempts(ctx(t), chainID, sender)
	if err != nil || len(inFlight) != 4 {
		t.Errorf("InFlightAttempts = %d, %v; want 4", len(inFlight), err)
	}
	if n := countEvents(t, s, ps[0].ID, payout.EventReplaced); n != 1 {
		t.Errorf("%d %s events, want 1", n, payout.EventReplaced)
	}

	// Stale: another nonce, or a payout not in flight; nothing is written.
	queued := mustCreate(t, s, 1)[0]
	wrongNonce := replacementFor(as[0], payout.AttemptTransfer, 3)
	wrongNonce.Nonce = 99
	notInFlight := attemptFor(queued, 50)
	err = s.ReplaceAttempts(ctx(t), []*payout.Attempt{replacementFor(as[1], payout.AttemptTransfer, 4), wrongNonce, notInFlight})
	var stale *payout.StaleError
	if !errors.As(err, &stale) || len(stale.PayoutIDs) != 2 {
		t.Fatalf("ReplaceAttempts(stale) = %v, want StaleError naming 2 payouts", err)
	}
	if list, _ := s.ListAttempts(ctx(t), ps[1].ID); len(list) != 2 {
		t.Errorf("a refused ReplaceAttempts wrote %d attempts, want none (2 in all)", len(list)-2)
	}
}

func testStuckAndSpeedUp(t *testing.T, s payout.Store) {
	ps := mustCreate(t, s, 2)
	as := mustSubmit(t, s, ps, 0)
	hold := payout.Hold{PayoutID: ps[0].ID, Reason: payout.ReasonFeeCapReached, Detail: "needs 5 wei, cap 4"}
	if err := s.MarkStuck(ctx(t), []payout.Hold{hold, {PayoutID: "po_missing", Reason: payout.ReasonFeeCapReached}}); err != nil {
		t.Fatalf("MarkStuck: %v", err)
	}
	got := mustGet(t, s, ps[0].ID)
	if got.Status != payout.StatusStuck || got.Reason != hold.Reason || got.ReasonDetail != hold.Detail {
		t.Fatalf("after MarkStuck: %s %q %q", got.Status, got.Reason, got.ReasonDetail)
	}
	if old, err := s.OldestUnfinished(ctx(t)); err != nil || old.ID != ps[0].ID {
		t.Errorf("OldestUnfinished = %v, %v; want the stuck payout", old, err)
	}
	inFlight, err := s.InFlightPayouts(ctx(t), chainID, sender)
	if err != nil || len(inFlight) != 2 {
		t.Errorf("InFlightPayouts = %d, %v; want 2 (stuck ones included)", len(inFlight), err)
	}

	// A hold without a reason unsticks (a node took a refused transaction);
	// it leaves payouts that are not stuck alone.
	refused := payout.Hold{PayoutID: ps[1].ID, Reason: payout.ReasonBroadcastRefused, Detail: "intrinsic gas too low"}
	if err := s.MarkStuck(ctx(t), []payout.Hold{refused}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkStuck(ctx(t), []payout.Hold{{PayoutID: ps[1].ID}}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, ps[1].ID); got.Status != payout.StatusSubmitted || got.Reason != "" || got.ReasonDetail != "" {
		t.Fatalf("after unsticking: %s %q %q; want submitted with no reason", got.Status, got.Reason, got.ReasonDetail)
	}
	if n := countEvents(t, s, ps[1].ID, "payout.submitted"); n != 2 {
		t.Errorf("%d payout.submitted events after unsticking, want 2 (sent, then taken)", n)
	}
	if err := s.MarkStuck(ctx(t), []payout.Hold{{PayoutID: ps[1].ID}}); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, s, ps[1].ID, "payout.submitted"); n != 2 {
		t.Errorf("unsticking a payout that is not stuck wrote an event (%d payout.submitted)", n)
	}

	raised, err := s.RaiseFeeCap(ctx(t), ps[0].ID, big.NewInt(1e15))
	if err != nil {
		t.Fatalf("RaiseFeeCap: %v", err)
	}
	if raised.Status != payout.StatusSubmitted || raised.Reason != "" || raised.FeeCap == nil || raised.FeeCap.Int64() != 1e15 {
		t.Errorf("after RaiseFeeCap: %s %q cap %v; want submitted, no reason, cap 1e15", raised.Status, raised.Reason, raised.FeeCap)
	}
	if got := mustGet(t, s, ps[0].ID); got.FeeCap == nil || got.FeeCap.Cmp(raised.FeeCap) != 0 {
		t.Errorf("stored fee cap = %v, want %v", got.FeeCap, raised.FeeCap)
	}
	reqs, err := s.PayoutRequests(ctx(t), chainID, sender)
	if err != nil || len(reqs) != 1 || reqs[0].ID != ps[0].ID {
		t.Errorf("PayoutRequests = %v, %v; want the sped-up payout", reqs, err)
	}
	if n := countEvents(t, s, ps[0].ID, payout.EventFeeCapRaised); n != 1 {
		t.Errorf("%d %s events, want 1", n, payout.EventFeeCapRaised)
	}

	// A stuck payout that mines anyway goes on to confirming.
	if err := s.MarkStuck(ctx(t), []payout.Hold{{PayoutID: ps[1].ID, Reason: payout.ReasonFeeCapReached}}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkMined(ctx(t), []payout.Receipt{receiptFor(as[1], 9, true)}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, ps[1].ID); got.Status != payout.StatusConfirming || got.Reason != "" {
		t.Errorf("a stuck payout mined: %s %q, want confirming without a reason", got.Status, got.Reason)
	}
	for _, id := range []string{ps[1].ID, mustCreate(t, s, 1)[0].ID} {
		if _, err := s.RaiseFeeCap(ctx(t), id, big.NewInt(1)); !errors.Is(err, payout.ErrNotInFlight) {
			t.Errorf("RaiseFeeCap(not in flight) = %v, want ErrNotInFlight", err)
		}
	}
	if _, err := s.RaiseFeeCap(ctx(t), "po_missing", big.NewInt(1)); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("RaiseFeeCap(missing) = %v, want ErrNotFound", err)
	}
}

func testCancelAfterBroadcast(t *testing.T, s payout.Store) {
	ps := mustCreate(t, s, 2)
	as := mustSubmit(t, s, ps, 0)
	for _, p := range ps {
		if _, err := s.CancelPayout(ctx(t), p.ID); err != nil {
			t.Fatal(err)
		}
	}
	// ps[0]: the cancel wins the nonce; ps[1]: the transfer does.
	cancel := replacementFor(as[0], payout.AttemptCancel, 1)
	if err := s.ReplaceAttempts(ctx(t), []*payout.Attempt{cancel}); err != nil {
		t.Fatal(err)
	}
	won := receiptFor(cancel, 5, true)
	won.Cancel = true
	if err := s.MarkMined(ctx(t), []payout.Receipt{won, receiptFor(as[1], 5, true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CancelPayout(ctx(t), ps[0].ID); !errors.Is(err, payout.ErrNotCancellable) {
		t.Errorf("CancelPayout(confirming) = %v, want ErrNotCancellable", err)
	}
	if err := s.Finalize(ctx(t), idsOf(ps)); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, s, ps[0].ID)
	if got.Status != payout.StatusCancelled || got.TxHash == nil || *got.TxHash != cancel.TxHash || got.Fee == nil || got.Fee.Sign() <= 0 {
		t.Errorf("cancel mined: %s tx %v fee %v; want cancelled with the cancel's hash and fee", got.Status, got.TxHash, got.Fee)
	}
	got = mustGet(t, s, ps[1].ID)
	if got.Status != payout.StatusCompleted || got.Reason != payout.ReasonCancelFailed {
		t.Errorf("transfer mined despite a cancel: %s %q; want completed, %s", got.Status, got.Reason, payout.ReasonCancelFailed)
	}
}

func testCancelForeignNonce(t *testing.T, s payout.Store) {
	p := mustCreate(t, s, 1)[0]
	mustSubmit(t, s, []*payout.Payout{p}, 0)
	hold := payout.Hold{PayoutID: p.ID, Reason: payout.ReasonForeignNonce, Detail: "nonce 0 was used by 0xabc"}
	if err := s.MarkStuck(ctx(t), []payout.Hold{hold}); err != nil {
		t.Fatal(err)
	}
	got, err := s.CancelPayout(ctx(t), p.ID)
	if err != nil || got.Status != payout.StatusCancelled || got.Reason != payout.ReasonForeignNonce || got.Fee != nil {
		t.Fatalf("CancelPayout(stuck, nonce taken) = %+v, %v; want cancelled at once, reason kept, no fee", got, err)
	}
}

func testHoldQueued(t *testing.T, s payout.Store) {
	p := mustCreate(t, s, 1)[0]
	hold := payout.Hold{PayoutID: p.ID, Reason: payout.ReasonInsufficientFunds, Detail: "needs 5, has 4"}
	for range 3 {
		if err := s.HoldQueued(ctx(t), []payout.Hold{hold}); err != nil {
			t.Fatal(err)
		}
	}
	got := mustGet(t, s, p.ID)
	if got.Status != payout.StatusQueued || got.Reason != hold.Reason || got.ReasonDetail != hold.Detail {
		t.Errorf("held: %s %q %q", got.Status, got.Reason, got.ReasonDetail)
	}
	if n := countEvents(t, s, p.ID, payout.EventWaiting); n != 1 {
		t.Errorf("%d %s events for the same reason held 3 times, want 1", n, payout.EventWaiting)
	}
	mustSubmit(t, s, []*payout.Payout{p}, 0)
	if got := mustGet(t, s, p.ID); got.Reason != "" || got.ReasonDetail != "" {
		t.Errorf("a submitted payout keeps its waiting reason %q", got.Reason)
	}
	if err := s.HoldQueued(ctx(t), []payout.Hold{hold}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, p.ID); got.Reason != "" {
		t.Errorf("HoldQueued changed a submitted payout: %q", got.Reason)
	}
}

func testAppendEvent(t *testing.T, s payout.Store) {
	obj := payout.WalletObjectID(chainID, sender)
	for i := range 3 {
		if err := s.AppendEvent(ctx(t), obj, payout.EventWalletLowBalance, map[string]any{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	evs := eventsOf(t, s, obj)
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	for i, e := range evs {
		if e.ObjectSeq != int64(i+1) || e.Type != payout.EventWalletLowBalance || string(e.Data) != `{"n":`+string(rune('0'+i))+`}` {
			t.Errorf("event %d = seq %d %s %s", i, e.ObjectSeq, e.Type, e.Data)
		}
	}
}
