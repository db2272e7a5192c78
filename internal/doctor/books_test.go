package doctor

import (
	"strings"
	"testing"
	"time"
)

// TestBooksCheck: a wallet the engine never reconciled is OK and says so;
// one reconciled says up to which block; a wallet.drift in the last 24
// hours fails the check with its blocks, detail and what to do; an older
// one does not; with the engine's reconciliation off it warns.
func TestBooksCheck(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t, f.rpcURL)
	check := "books sandbox " + f.wallet.Hex()
	if r := find(t, Run(t.Context(), cfg, Options{}), check); r.Status != OK || !strings.Contains(r.Detail, "not reconciled yet") {
		t.Fatalf("never reconciled: %+v", r)
	}
	db := f.openStore(t)
	defer db.Close()
	if err := db.OpenBooks(t.Context(), 1337, f.wallet, 40); err != nil {
		t.Fatal(err)
	}
	if r := find(t, Run(t.Context(), cfg, Options{}), check); r.Status != OK || !strings.Contains(r.Detail, "up to block 40") {
		t.Fatalf("reconciled: %+v", r)
	}
	drift := map[string]any{"from_block": 41, "to_block": 60, "detail": "-7 SUSD unexplained; nonce 9 used by 0xabc, which Sluice did not sign"}
	if moved, err := db.CloseBooks(t.Context(), 1337, f.wallet, 40, 60, drift); err != nil || !moved {
		t.Fatal(moved, err)
	}
	r := find(t, Run(t.Context(), cfg, Options{}), check)
	if r.Status != Fail || !strings.Contains(r.Detail, "blocks 41-60") || !strings.Contains(r.Detail, "-7 SUSD unexplained") ||
		!strings.Contains(r.Advice, "sluice pause --wallet "+f.wallet.Hex()) || !strings.Contains(r.Advice, "--from-block 40 --to-block 60") {
		t.Fatalf("after a drift: %+v, want FAIL naming the blocks and the detail, and what to do", r)
	}
	later := func() time.Time { return time.Now().Add(25 * time.Hour) }
	if r := find(t, Run(t.Context(), cfg, Options{Now: later}), check); r.Status != OK || !strings.Contains(r.Detail, "up to block 60") {
		t.Errorf("a day after the drift: %+v, want OK", r)
	}
	// Never reconciled, with the engine's reconciliation turned off.
	f2 := newFixture(t)
	off := f2.config(t, f2.rpcURL)
	off.Engine.ReconcileEvery = -time.Second
	if r := find(t, Run(t.Context(), off, Options{}), "books sandbox "+f2.wallet.Hex()); r.Status != Warn || !strings.Contains(r.Advice, "sluice reconcile") {
		t.Errorf("reconciliation off: %+v, want WARN saying to reconcile by hand", r)
	}
}
