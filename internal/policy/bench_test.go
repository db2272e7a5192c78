package policy_test

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/policy"
)

// benchPolicy writes n rules that each read velocity (four scopes × four
// windows) and none of which matches, so every evaluation runs them all and
// ends in the default.
func benchPolicy(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\ndefault: deny\nrules:\n")
	scopes := []string{"wallet", "asset", "destination", "api_key"}
	windows := []string{"1h", "6h", "24h", "7d"}
	for i := range n {
		sc, w := scopes[i%4], windows[(i/4)%4]
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "  - {name: sum-%d, when: 'velocity.sum(\"%s\", \"%s\") + amount > units(\"%d000000000000000000000000\")', action: deny}\n", i, sc, w, i+1)
		case 1:
			fmt.Fprintf(&b, "  - {name: count-%d, when: 'velocity.count(\"%s\", \"%s\") > %d && asset == \"ETH\"', action: require_approval, approvals: {quorum: 2, group: ops}}\n", i, sc, w, 1000000+i)
		default:
			fmt.Fprintf(&b, "  - {name: mixed-%d, when: 'destination_age_seconds < 0 && amount > units(\"%d000000000000000000000\") || velocity.sum(\"%s\", \"%s\") > units(\"99%d000000000000000000000000\") || (\"tier\" in metadata && metadata[\"tier\"] == \"x%d\")', action: hold, hold_for: 1h}\n", i, i, sc, w, i, i)
		}
	}
	return b.String()
}

// BenchmarkEvaluate decides payouts with 50 velocity rules over 100,000
// payouts of history (7 days, 1,000 destinations, 10 API keys, 2 hot
// wallets) and reports the 99th percentile of one evaluation: facts
// (lists, destination age, 16 velocity windows) and the rules.
func BenchmarkEvaluate(b *testing.B) {
	p, err := policy.Parse([]byte(benchPolicy(50)))
	if err != nil {
		b.Fatal(err)
	}
	if len(p.Windows()) != 16 {
		b.Fatalf("windows = %v, want 16", p.Windows())
	}
	r := rand.New(rand.NewPCG(3, 4))
	start := now.Add(-7 * 24 * time.Hour)
	dests := make([]common.Address, 1000)
	for i := range dests {
		dests[i] = common.BigToAddress(big.NewInt(int64(1000 + i)))
	}
	wallets := []common.Address{common.HexToAddress("0xaa"), common.HexToAddress("0xbb")}
	src := &memSources{lists: map[common.Address][]payout.ListHit{}, firstPaid: map[common.Address]time.Time{}}
	const history = 100000
	for i := range history {
		src.history = append(src.history, payout.HistoryItem{ID: fmt.Sprint("po_", i), Chain: "sandbox", Asset: "ETH",
			Sender: wallets[i%2], To: dests[r.IntN(len(dests))], Amount: big.NewInt(int64(r.IntN(1e9)) * 1e9),
			APIKeyID: fmt.Sprint("key_", i%10), CreatedAt: start.Add(time.Duration(i) * (7 * 24 * time.Hour / history))})
	}
	for _, d := range dests[:500] {
		src.firstPaid[d] = start
	}
	e := policy.NewEngine(src, nil)
	ctx := context.Background()
	in := func(i int) policy.Input {
		return policy.Input{Chain: "sandbox", Asset: "ETH", Decimals: 18, Sender: wallets[i%2], To: dests[i%len(dests)],
			Amount: big.NewInt(1e15), APIKeyID: fmt.Sprint("key_", i%10), APIKeyName: "bench", Now: now}
	}
	if _, err := e.Evaluate(ctx, p, 1, in(0)); err != nil { // loads the ledger
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		d, err := e.Evaluate(ctx, p, 1, in(i))
		lat = append(lat, time.Since(t0))
		if err != nil || d.Rule != "" {
			b.Fatalf("decision %+v, %v: want the default", d, err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
}
