package main

import (
	"log/slog"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

// queuedGauge gathers reg and returns sluice_payouts{status="queued"}.
func queuedGauge(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_payouts" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "status" && l.GetValue() == string(payout.StatusQueued) {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatal(`no sluice_payouts{status="queued"}`)
	return 0
}

// TestPayoutGaugeReusesARecentCount: scrapes in quick succession share one
// count of the payouts table (a count reads the whole status index); once
// the count is older than its least age the next scrape counts again.
func TestPayoutGaugeReusesARecentCount(t *testing.T) {
	db, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "sluice.db"), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	const minAge = 300 * time.Millisecond
	reg := prometheus.NewRegistry()
	reg.MustRegister(&statusCollector{store: db, minAge: minAge})

	if n := queuedGauge(t, reg); n != 0 {
		t.Fatalf("queued = %v before any payout, want 0", n)
	}
	counted := time.Now()
	now := time.Now()
	p := &payout.Payout{ID: "po_gauge", Status: payout.StatusQueued, Chain: "sandbox", ChainID: 1337, Asset: "ETH",
		To: common.HexToAddress("0x60"), Amount: big.NewInt(1), Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := db.CreatePayout(t.Context(), p, nil); err != nil {
		t.Fatal(err)
	}
	n := queuedGauge(t, reg)
	if time.Since(counted) < minAge && n != 0 {
		t.Fatalf("queued = %v right after the last count, want that count (0) reused", n)
	}
	time.Sleep(time.Until(counted.Add(minAge + 50*time.Millisecond)))
	if n := queuedGauge(t, reg); n != 1 {
		t.Fatalf("queued = %v once the count is older than %s, want 1", n, minAge)
	}
}
