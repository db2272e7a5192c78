package storetest

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// testMoveQueued hands queued payouts to another hot wallet; payouts that
// left the queue or the wallet in the meantime stay where they are.
func testMoveQueued(t *testing.T, s payout.Store) {
	other := common.HexToAddress("0x00000000000000000000000000000000000000b2")
	ps := mustCreate(t, s, 3)
	mustSubmit(t, s, ps[1:2], 0)
	if err := s.HoldQueued(ctx(t), []payout.Hold{{PayoutID: ps[0].ID, Reason: payout.ReasonInsufficientFunds, Detail: "short 5 wei"}}); err != nil {
		t.Fatal(err)
	}
	err := s.MoveQueued(ctx(t), []payout.Move{
		{PayoutID: ps[0].ID, From: sender, To: other},
		{PayoutID: ps[1].ID, From: sender, To: other}, // submitted: stays
		{PayoutID: ps[2].ID, From: other, To: sender}, // not held by From: stays
		{PayoutID: "po_missing", From: sender, To: other},
	})
	if err != nil {
		t.Fatalf("MoveQueued: %v", err)
	}
	moved := mustGet(t, s, ps[0].ID)
	if moved.Sender != other || moved.Status != payout.StatusQueued || moved.Reason != "" || moved.ReasonDetail != "" {
		t.Fatalf("moved payout: sender %s, %s %q %q; want queued at %s with no reason", moved.Sender.Hex(), moved.Status, moved.Reason, moved.ReasonDetail, other.Hex())
	}
	if n := countEvents(t, s, ps[0].ID, payout.EventReassigned); n != 1 {
		t.Errorf("%d %s events, want 1", n, payout.EventReassigned)
	}
	if got := mustGet(t, s, ps[1].ID); got.Sender != sender || got.Status != payout.StatusSubmitted {
		t.Errorf("the submitted payout: sender %s, %s; want it left alone", got.Sender.Hex(), got.Status)
	}
	if got := mustGet(t, s, ps[2].ID); got.Sender != sender || got.Version != ps[2].Version {
		t.Errorf("the payout not held by From: sender %s, version %d; want it left alone", got.Sender.Hex(), got.Version)
	}
	if q, err := s.QueuedPayouts(ctx(t), chainID, other, 10); err != nil || len(q) != 1 || q[0].ID != ps[0].ID {
		t.Errorf("the other wallet's queue = %v, %v; want the moved payout", q, err)
	}
	if q, err := s.QueuedPayouts(ctx(t), chainID, sender, 10); err != nil || len(q) != 1 || q[0].ID != ps[2].ID {
		t.Errorf("the first wallet's queue = %v, %v; want only the payout not moved", q, err)
	}
}
