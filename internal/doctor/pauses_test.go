package doctor

import (
	"strings"
	"testing"
	"time"

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
