package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// OfflineStore is what the offline plans suite needs of a store.
type OfflineStore interface {
	payout.Store
	payout.OfflinePlanStore
}

// RunOfflinePlans runs the conformance suite of payout.OfflinePlanStore.
// open must return a new, empty store each time.
func RunOfflinePlans(t *testing.T, open func(t *testing.T) OfflineStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s OfflineStore)
	}{
		{"Lifecycle", testOfflineLifecycle},
		{"Void", testOfflineVoid},
		{"Stale", testOfflineStale},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func mustRequestPlan(t *testing.T, s OfflineStore) *payout.OfflinePlan {
	t.Helper()
	pl := &payout.OfflinePlan{ID: ids.New("ofp_", time.Now()), Chain: "sandbox", ChainID: chainID, Wallet: sender, MaxPayouts: 10, RequestedBy: "key_ops"}
	if err := s.CreateOfflinePlan(ctx(t), pl); err != nil {
		t.Fatalf("CreateOfflinePlan: %v", err)
	}
	return pl
}

func planItems(ps []*payout.Payout, first uint64) []payout.OfflineItem {
	items := make([]payout.OfflineItem, len(ps))
	for i, p := range ps {
		items[i] = payout.OfflineItem{PayoutID: p.ID, Nonce: first + uint64(i), To: p.To, Asset: p.Asset, Amount: p.Amount.String(),
			GasLimit: 21000, MaxFeePerGas: "30000000000", MaxPriorityFeePerGas: "1500000000",
			Unsigned: []byte("unsigned-" + p.ID), Digest: common.BytesToHash([]byte("digest-" + p.ID))}
	}
	return items
}

// testOfflineLifecycle: one active plan per wallet; opening reserves the
// nonces and moves the payouts to signing_offline (not cancellable); the
// signed plan is submitted as first attempts at exactly those nonces.
func testOfflineLifecycle(t *testing.T, s OfflineStore) {
	pl := mustRequestPlan(t, s)
	second := &payout.OfflinePlan{ID: ids.New("ofp_", time.Now()), Chain: "sandbox", ChainID: chainID, Wallet: sender, MaxPayouts: 5, RequestedBy: "key_ops"}
	if err := s.CreateOfflinePlan(ctx(t), second); !errors.Is(err, payout.ErrOfflinePlanActive) {
		t.Fatalf("a second active plan for the wallet: %v, want ErrOfflinePlanActive", err)
	}
	if got, err := s.ActiveOfflinePlan(ctx(t), chainID, sender); err != nil || got.ID != pl.ID || got.Status != payout.PlanRequested {
		t.Fatalf("ActiveOfflinePlan = %+v, %v", got, err)
	}
	ps := mustCreate(t, s, 2)
	items := planItems(ps, 7)
	if err := s.OpenOfflinePlan(ctx(t), pl.ID, items, ""); err != nil {
		t.Fatalf("OpenOfflinePlan: %v", err)
	}
	for _, p := range ps {
		if got := mustGet(t, s, p.ID); got.Status != payout.StatusSigningOffline {
			t.Errorf("payout %s is %s, want signing_offline", p.ID, got.Status)
		}
	}
	if n, ok, err := s.MaxNonce(ctx(t), chainID, sender); err != nil || !ok || n != 8 {
		t.Errorf("MaxNonce = %d, %v, %v; want 8 (the plan's reserved nonces)", n, ok, err)
	}
	if _, err := s.CancelPayout(ctx(t), ps[0].ID); !errors.Is(err, payout.ErrNotCancellable) {
		t.Errorf("cancel of a signing_offline payout: %v, want ErrNotCancellable", err)
	}
	if q, err := s.QueuedPayouts(ctx(t), chainID, sender, 10); err != nil || len(q) != 0 {
		t.Errorf("queued payouts while planned = %d, %v; want none", len(q), err)
	}
	if err := s.SubmitOfflinePlan(ctx(t), pl.ID, nil); !errors.Is(err, payout.ErrOfflinePlanState) {
		t.Errorf("submit of an open plan: %v, want ErrOfflinePlanState", err)
	}
	signed := append([]payout.OfflineItem(nil), items...)
	attempts := make([]*payout.Attempt, len(ps))
	for i, p := range ps {
		attempts[i] = attemptFor(p, 7+uint64(i))
		h := attempts[i].TxHash
		signed[i].Signed, signed[i].TxHash = attempts[i].RawTx, &h
	}
	bad := append([]payout.OfflineItem(nil), signed...)
	bad[1].Digest = common.Hash{1}
	if _, err := s.SignOfflinePlan(ctx(t), pl.ID, "key_ops", bad); err == nil {
		t.Error("SignOfflinePlan took an item whose digest is not the plan's")
	}
	if got, err := s.SignOfflinePlan(ctx(t), pl.ID, "key_ops", signed); err != nil || got.Status != payout.PlanSigned {
		t.Fatalf("SignOfflinePlan = %v, %v", got, err)
	}
	if err := s.SubmitOfflinePlan(ctx(t), pl.ID, attempts); err != nil {
		t.Fatalf("SubmitOfflinePlan: %v", err)
	}
	for i, p := range ps {
		got := mustGet(t, s, p.ID)
		if got.Status != payout.StatusSubmitted || got.Nonce == nil || *got.Nonce != 7+uint64(i) || *got.TxHash != attempts[i].TxHash {
			t.Errorf("payout %s after submit: %s nonce %v", p.ID, got.Status, got.Nonce)
		}
	}
	if got, err := s.GetOfflinePlan(ctx(t), pl.ID); err != nil || got.Status != payout.PlanSubmitted || len(got.Items) != 2 || got.Items[1].TxHash == nil {
		t.Errorf("plan after submit = %+v, %v", got, err)
	}
	if _, err := s.ActiveOfflinePlan(ctx(t), chainID, sender); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("active plan after submit: %v, want ErrNotFound", err)
	}
	if n := countEvents(t, s, pl.ID, payout.EventOfflinePlanSubmitted); n != 1 {
		t.Errorf("%d %s events, want 1", n, payout.EventOfflinePlanSubmitted)
	}
	mustRequestPlan(t, s) // the wallet may have a new plan now
}

// testOfflineVoid: a refused void keeps the plan and its payouts; a void
// frees the nonces and queues the payouts again.
func testOfflineVoid(t *testing.T, s OfflineStore) {
	pl := mustRequestPlan(t, s)
	ps := mustCreate(t, s, 2)
	if err := s.OpenOfflinePlan(ctx(t), pl.ID, planItems(ps, 0), ""); err != nil {
		t.Fatal(err)
	}
	if got, err := s.RequestOfflineVoid(ctx(t), pl.ID, "key_ops"); err != nil || got.Status != payout.PlanVoidRequested {
		t.Fatalf("RequestOfflineVoid = %v, %v", got, err)
	}
	if err := s.EndOfflineVoid(ctx(t), pl.ID, "void refused: nonce used"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetOfflinePlan(ctx(t), pl.ID); got.Status != payout.PlanOpen || got.Note != "void refused: nonce used" {
		t.Errorf("plan after a refused void: %s %q", got.Status, got.Note)
	}
	if got := mustGet(t, s, ps[0].ID); got.Status != payout.StatusSigningOffline {
		t.Errorf("payout after a refused void: %s", got.Status)
	}
	if _, err := s.RequestOfflineVoid(ctx(t), pl.ID, "key_ops"); err != nil {
		t.Fatal(err)
	}
	if err := s.EndOfflineVoid(ctx(t), pl.ID, ""); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if got := mustGet(t, s, p.ID); got.Status != payout.StatusQueued {
			t.Errorf("payout %s after void: %s, want queued", p.ID, got.Status)
		}
	}
	if _, ok, err := s.MaxNonce(ctx(t), chainID, sender); err != nil || ok {
		t.Errorf("MaxNonce after void: used %v, %v; want the reserved nonces freed", ok, err)
	}
	mustSubmit(t, s, ps, 0) // the freed nonces are the sender's again
	if _, err := s.RequestOfflineVoid(ctx(t), pl.ID, "key_ops"); !errors.Is(err, payout.ErrOfflinePlanState) {
		t.Errorf("void of a voided plan: %v, want ErrOfflinePlanState", err)
	}
}

// testOfflineStale: a plan naming a payout no longer queued, or another
// wallet's, writes nothing.
func testOfflineStale(t *testing.T, s OfflineStore) {
	pl := mustRequestPlan(t, s)
	ps := mustCreate(t, s, 2)
	other := mustCreate(t, s, 1, func(p *payout.Payout) { p.Sender = sender2 })
	if _, err := s.CancelPayout(ctx(t), ps[1].ID); err != nil {
		t.Fatal(err)
	}
	var stale *payout.StaleError
	if err := s.OpenOfflinePlan(ctx(t), pl.ID, planItems(ps, 0), ""); !errors.As(err, &stale) || len(stale.PayoutIDs) != 1 || stale.PayoutIDs[0] != ps[1].ID {
		t.Fatalf("plan with a cancelled payout: %v, want StaleError naming it", err)
	}
	if err := s.OpenOfflinePlan(ctx(t), pl.ID, planItems([]*payout.Payout{ps[0], other[0]}, 0), ""); !errors.As(err, &stale) {
		t.Fatalf("plan with another wallet's payout: %v, want StaleError", err)
	}
	if got := mustGet(t, s, ps[0].ID); got.Status != payout.StatusQueued {
		t.Errorf("after refused plans payout is %s, want queued", got.Status)
	}
	if _, ok, _ := s.MaxNonce(ctx(t), chainID, sender); ok {
		t.Error("a refused plan reserved nonces")
	}
	if err := s.OpenOfflinePlan(ctx(t), pl.ID, nil, "nothing queued"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetOfflinePlan(ctx(t), pl.ID); got.Status != payout.PlanEmpty || got.Note != "nothing queued" {
		t.Errorf("empty plan: %s %q", got.Status, got.Note)
	}
}
