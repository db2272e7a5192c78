package store_test

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/policy"
)

// BenchmarkPolicyEvaluate decides payouts with 50 velocity rules against a
// SQLite store holding 100,000 payouts of the last 7 days (1,000
// destinations, half of them paid before) and a 300-address sanctions
// list: each evaluation reads the lists and the destination's first
// payment from the database (the first payment is cached once found) and
// velocity from the engine's ledger, loaded once from the store. It
// reports the 99th percentile of one evaluation.
func BenchmarkPolicyEvaluate(b *testing.B) {
	db := openSQLite(b)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	dests := make([]common.Address, 1000)
	for i := range dests {
		dests[i] = common.BigToAddress(big.NewInt(int64(1000 + i)))
	}
	wallets := []common.Address{common.HexToAddress("0xaa"), common.HexToAddress("0xbb")}
	const history = 100_000
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			for i := w; i < history; i += clients {
				at := now.Add(-7*24*time.Hour + time.Duration(i)*(7*24*time.Hour/history))
				p := &payout.Payout{ID: payout.DefaultIDs.New("po_", at), Status: payout.StatusQueued, Chain: "sandbox", ChainID: 1337,
					Asset: "ETH", To: dests[i%len(dests)], Amount: big.NewInt(int64(i+1) * 1e12), Sender: wallets[i%2],
					Priority: payout.PriorityStandard, Version: 1, CreatedAt: at, UpdatedAt: at}
				if err := db.CreatePayout(ctx, p, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Half the destinations were paid before.
	if err := db.ExecRaw(`UPDATE payouts SET status = 'completed' WHERE to_address IN (SELECT DISTINCT to_address FROM payouts ORDER BY to_address LIMIT 500)`); err != nil {
		b.Fatal(err)
	}
	if err := db.CreateList(ctx, &payout.List{Name: "ofac", Kind: payout.ListDeny, Sanctions: true}, "cli"); err != nil {
		b.Fatal(err)
	}
	var sanctioned []payout.ListEntry
	for i := range 300 {
		sanctioned = append(sanctioned, payout.ListEntry{Address: common.BigToAddress(big.NewInt(int64(900_000 + i)))})
	}
	if _, err := db.ReplaceListEntries(ctx, "ofac", sanctioned, "cli"); err != nil {
		b.Fatal(err)
	}
	p, err := policy.Parse([]byte(benchPolicyDoc(50)))
	if err != nil {
		b.Fatal(err)
	}
	e := policy.NewEngine(db, nil)
	in := func(i int) policy.Input {
		return policy.Input{Chain: "sandbox", Asset: "ETH", Decimals: 18, Sender: wallets[i%2], To: dests[i%len(dests)],
			Amount: big.NewInt(1e15), APIKeyID: "key_1", APIKeyName: "bench", Now: now}
	}
	if _, err := e.Evaluate(ctx, p, 1, in(0)); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, 1<<16)
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

// benchPolicyDoc is policy's BenchmarkEvaluate document: n rules reading
// velocity (4 scopes × 4 windows), none of which matches.
func benchPolicyDoc(n int) string {
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
