package breaker_test

import (
	"context"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicepay/sluice/internal/breaker"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

// BenchmarkCheck10k: one check of two rules over a window holding 10,000
// payouts that reached submitted (SQLite, the engine's default).
func BenchmarkCheck10k(b *testing.B) {
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "db"), store.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const n, chunk = 10_000, 500
	for i := 0; i < n; i += chunk {
		payN(b, db, "SUSD", 1000, chunk, uint64(i))
	}
	m, err := breaker.New(breaker.Config{Store: db, Logger: quiet, Rules: []breaker.Rule{
		{Name: "outflow", Scope: payout.PauseAsset, Chain: "sandbox", Asset: "SUSD", Window: time.Hour, MaxOutflow: big.NewInt(1 << 62)},
		{Name: "failing", Scope: payout.PauseChain, Chain: "sandbox", Window: time.Hour, MaxFailureRate: 0.5, MinCount: 10},
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if trips, err := m.Check(context.Background()); err != nil || len(trips) != 0 {
			b.Fatalf("Check = %v, %v", trips, err)
		}
	}
}
