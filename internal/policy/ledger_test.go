package policy

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// TestLedgerMatchesBruteForce records payouts out of order, across several
// prunes, and compares every window with a plain sum.
func TestLedgerMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLedger(48 * time.Hour)
	var all []payout.HistoryItem
	to := []common.Address{common.HexToAddress("0x01"), common.HexToAddress("0x02")}
	for i := range 6000 {
		// Mostly in order, now and then a few seconds late.
		at := base.Add(time.Duration(i)*30*time.Second - time.Duration(r.IntN(5))*time.Second)
		h := payout.HistoryItem{ID: fmt.Sprint("po_", i), Chain: "c", Asset: "ETH", To: to[r.IntN(2)],
			Amount: big.NewInt(int64(r.IntN(1000) + 1)), APIKeyID: "key_1", CreatedAt: at}
		all = append(all, h)
		l.Record(h)
		l.Record(h) // twice: counted once
		if i%499 != 0 {
			continue
		}
		now := at
		for _, d := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 48 * time.Hour} {
			want := Window{Sum: new(big.Int)}
			for _, x := range all {
				if x.To == to[0] && x.CreatedAt.After(now.Add(-d)) && !x.CreatedAt.After(now) {
					want.Sum.Add(want.Sum, x.Amount)
					want.Count++
				}
			}
			got := l.window(scopeKey(ScopeDestination, "c", "ETH", &payout.HistoryItem{To: to[0]}), now, d)
			if got.Count != want.Count || got.Sum.Cmp(want.Sum) != 0 {
				t.Fatalf("at %d, window %v: got %v/%d, want %v/%d", i, d, got.Sum, got.Count, want.Sum, want.Count)
			}
		}
	}
}
