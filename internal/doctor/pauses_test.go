package doctor

import (
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

func TestPausesInForce(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t, f.rpcURL)
	if r := find(t, Run(t.Context(), cfg, Options{}), "emergency pauses"); r.Status != OK || r.Detail != "none in force" {
		t.Fatalf("no pause: %+v", r)
	}
	db := f.openStore(t)
	defer db.Close()
	p := &payout.Pause{ID: payout.DefaultIDs.New("pse_", time.Now()), Scope: payout.PauseChain, Chain: "sandbox",
		Reason: "incident 42: provider outage", CreatedBy: "key_ops"}
	if err := db.CreatePause(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	r := find(t, Run(t.Context(), cfg, Options{}), "emergency pauses")
	if r.Status != Warn || !strings.Contains(r.Detail, p.ID) || !strings.Contains(r.Detail, "incident 42") ||
		!strings.Contains(r.Detail, "key_ops") || !strings.Contains(r.Advice, "sluice resume "+p.ID) {
		t.Fatalf("a pause in force: %+v, want WARN naming it, who and why, and how to resume", r)
	}
}

// TestHandovers: an active offline plan and a rotation under way are
// WARNs naming the wallet and what to do; a completed rotation is OK and
// names the retired wallet.
func TestHandovers(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t, f.rpcURL)
	if r := find(t, Run(t.Context(), cfg, Options{}), "offline plans and rotations"); r.Status != OK {
		t.Fatalf("nothing under way: %+v", r)
	}
	db := f.openStore(t)
	defer db.Close()
	wallet, next := common.HexToAddress("0x00000000000000000000000000000000000000a1"), common.HexToAddress("0x00000000000000000000000000000000000000a2")
	pl := &payout.OfflinePlan{ID: "ofp_doctor", Chain: "sandbox", ChainID: 1337, Wallet: wallet, MaxPayouts: 10, RequestedBy: "key_ops"}
	if err := db.CreateOfflinePlan(t.Context(), pl); err != nil {
		t.Fatal(err)
	}
	rot := &payout.Rotation{ID: "rot_doctor", Chain: "sandbox", ChainID: 1337, From: next, To: wallet, CreatedBy: "key_ops"}
	if err := db.CreateRotation(t.Context(), rot); err != nil {
		t.Fatal(err)
	}
	r := find(t, Run(t.Context(), cfg, Options{}), "offline plans and rotations")
	if r.Status != Warn || !strings.Contains(r.Detail, "ofp_doctor") || !strings.Contains(r.Detail, "rotation rot_doctor of") || !strings.Contains(r.Detail, "is draining") ||
		!strings.Contains(r.Advice, "sluice tx void-unsigned ofp_doctor") || !strings.Contains(r.Advice, "sluice wallet rotation rot_doctor") {
		t.Fatalf("a plan and a rotation under way: %+v", r)
	}
	if err := db.StartSweep(t.Context(), rot.ID, nil, "nothing to sweep"); err != nil {
		t.Fatal(err)
	}
	if err := db.OpenOfflinePlan(t.Context(), pl.ID, nil, "nothing queued"); err != nil {
		t.Fatal(err)
	}
	if r := find(t, Run(t.Context(), cfg, Options{}), "offline plans and rotations"); r.Status != OK || !strings.Contains(r.Detail, next.Hex()) {
		t.Fatalf("all ended: %+v, want OK naming the retired wallet", r)
	}
}
