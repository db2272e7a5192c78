package storetest

import (
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// RotationStore is what the rotations suite needs of a store.
type RotationStore interface {
	payout.Store
	payout.RotationStore
}

// RunRotations runs the conformance suite of payout.RotationStore.
func RunRotations(t *testing.T, open func(t *testing.T) RotationStore) {
	t.Run("Lifecycle", func(t *testing.T) {
		t.Parallel()
		testRotationLifecycle(t, open(t))
	})
}

// testRotationLifecycle: a wallet is rotated away once; the sweeps are
// stored with the move to sweeping, or not at all; completion is kept.
func testRotationLifecycle(t *testing.T, s RotationStore) {
	r := &payout.Rotation{ID: ids.New("rot_", time.Now()), Chain: "sandbox", ChainID: chainID, From: sender, To: sender2, CreatedBy: "key_ops"}
	if err := s.CreateRotation(ctx(t), r); err != nil {
		t.Fatalf("CreateRotation: %v", err)
	}
	again := &payout.Rotation{ID: ids.New("rot_", time.Now()), Chain: "sandbox", ChainID: chainID, From: sender, To: receiver, CreatedBy: "key_ops"}
	if err := s.CreateRotation(ctx(t), again); !errors.Is(err, payout.ErrRotationExists) {
		t.Fatalf("second rotation from the wallet: %v, want ErrRotationExists", err)
	}
	sweep := func(asset, ext string) *payout.Payout {
		return newPayout(func(p *payout.Payout) {
			p.Asset, p.To, p.Amount, p.ExternalID = asset, sender2, big.NewInt(77), ext
		})
	}
	forged := sweep("ETH", "not-a-sweep")
	if err := s.StartSweep(ctx(t), r.ID, []*payout.Payout{forged}, "x"); err == nil {
		t.Fatal("StartSweep took a payout that is not one of the rotation's sweeps")
	}
	sw := []*payout.Payout{sweep("SUSD", payout.SweepExternalIDPrefix+r.ID+":SUSD"), sweep("ETH", payout.SweepExternalIDPrefix+r.ID+":ETH")}
	if err := s.StartSweep(ctx(t), r.ID, sw, "sweeping 77 SUSD, 77 ETH"); err != nil {
		t.Fatalf("StartSweep: %v", err)
	}
	got, err := s.GetRotation(ctx(t), r.ID)
	if err != nil || got.Status != payout.RotationSweeping || len(got.Sweeps) != 2 || got.Note != "sweeping 77 SUSD, 77 ETH" {
		t.Fatalf("rotation after StartSweep = %+v, %v", got, err)
	}
	if q, err := s.QueuedPayouts(ctx(t), chainID, sender, 10); err != nil || len(q) != 2 || !payout.IsSweepOf(q[0], r.ID) {
		t.Errorf("queued sweeps = %d, %v", len(q), err)
	}
	if err := s.StartSweep(ctx(t), r.ID, nil, ""); err == nil {
		t.Error("a second StartSweep was taken")
	}
	if err := s.CompleteRotation(ctx(t), r.ID, "done"); err != nil {
		t.Fatal(err)
	}
	if rs, err := s.Rotations(ctx(t)); err != nil || len(rs) != 1 || rs[0].Status != payout.RotationCompleted || rs[0].Note != "done" {
		t.Errorf("Rotations = %+v, %v", rs, err)
	}
	if n := countEvents(t, s, r.ID, payout.EventRotationCompleted); n != 1 {
		t.Errorf("%d %s events, want 1", n, payout.EventRotationCompleted)
	}
}
