package reconcile

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicepay/sluice/internal/payout"
)

// headChain is fakeChain with a head.
type headChain struct {
	*fakeChain
	head uint64
}

func (c *headChain) BlockNumber(context.Context) (uint64, error) { return c.head, nil }

type appended struct {
	objectID, eventType string
	data                map[string]any
}

type fakeEvents struct{ got []appended }

func (e *fakeEvents) AppendEvent(_ context.Context, objectID, eventType string, data any) error {
	e.got = append(e.got, appended{objectID, eventType, data.(map[string]any)})
	return nil
}

// TestWatcherReconcilesSettledBlocks: nothing while the wallet's sender
// has settled nothing; the first pass opens the books; later passes
// reconcile only up to the blocks both confirmed and settled; a drift is
// one wallet.drift event with the books of each asset that drifted and the
// foreign nonce; a gap longer than a node keeps state for is skipped and
// counted.
func TestWatcherReconcilesSettledBlocks(t *testing.T) {
	wallet := common.HexToAddress("0xa1")
	token := common.HexToAddress("0x70")
	chain := &headChain{fakeChain: &fakeChain{
		nonces:   map[uint64]uint64{98: 5, 105: 5, 118: 6, 278: 6, 398: 6},
		balances: map[uint64]*big.Int{98: big.NewInt(1_000), 105: big.NewInt(1_000), 118: big.NewInt(990), 278: big.NewInt(990), 398: big.NewInt(990)},
		tokens:   map[uint64]*big.Int{98: big.NewInt(50), 105: big.NewInt(50), 118: big.NewInt(43), 278: big.NewInt(43), 398: big.NewInt(43)},
		in:       new(big.Int),
	}}
	events := &fakeEvents{}
	settled := uint64(0)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	w, err := NewWatcher(WatchConfig{Chain: "c", ChainID: 7, Wallets: []common.Address{wallet}, Confirmations: 2, Every: time.Hour,
		Assets: []payout.Asset{{Symbol: "ETH", Decimals: 0}, {Symbol: "TOK", Decimals: 0, Token: &token}},
		Books:  &fakeBooks{}, Node: chain, Events: events, Metrics: m,
		Settled: func(a common.Address) uint64 {
			if a != wallet {
				t.Errorf("Settled(%s), want only the watched wallet", a.Hex())
			}
			return settled
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	runs := func(outcome string) float64 {
		return testutil.ToFloat64(m.runs.WithLabelValues("c", wallet.Hex(), outcome))
	}

	chain.head = 100
	w.Pass(ctx) // the sender settled nothing yet
	settled = 98
	w.Pass(ctx) // opens the books at 98, where the sender took over
	if w.last[wallet] != 98 || runs("balanced")+runs("drift")+runs("error") != 0 {
		t.Fatalf("after the first passes: last %v, %v runs; want the books opened at 98 and nothing reconciled", w.last, runs("balanced"))
	}
	chain.head, settled = 110, 105 // confirmed up to 108, settled up to 105
	w.Pass(ctx)
	if w.last[wallet] != 105 || runs("balanced") != 1 || len(events.got) != 0 {
		t.Fatalf("blocks 99-105: last %d, %v balanced, %d events; want balanced up to 105", w.last[wallet], runs("balanced"), len(events.got))
	}
	chain.head, settled = 120, 200 // confirmed up to 118
	w.Pass(ctx)
	if w.last[wallet] != 118 || runs("drift") != 1 || len(events.got) != 1 {
		t.Fatalf("blocks 106-118: last %d, %v drift, %d events; want one drift up to 118", w.last[wallet], runs("drift"), len(events.got))
	}
	ev := events.got[0]
	assets, _ := ev.data["assets"].([]map[string]any)
	foreign, _ := ev.data["foreign_nonces"].([]map[string]any)
	if ev.eventType != payout.EventWalletDrift || ev.objectID != payout.WalletObjectID(7, wallet) || len(assets) != 2 ||
		assets[0]["unexplained"] != "-10" || assets[1]["unexplained"] != "-7" || len(foreign) != 1 || foreign[0]["nonce"] != uint64(5) ||
		ev.data["from_block"] != uint64(106) || ev.data["to_block"] != uint64(118) {
		t.Errorf("drift event %+v", ev)
	}
	if got := testutil.ToFloat64(m.unexplained.WithLabelValues("c", wallet.Hex(), "TOK")); got != -7 {
		t.Errorf("sluice_reconcile_unexplained{asset=TOK} = %v, want -7", got)
	}
	chain.head, settled = 400, 398
	w.Pass(ctx)
	if w.last[wallet] != 398 || runs("balanced") != 2 || testutil.ToFloat64(m.skipped.WithLabelValues("c", wallet.Hex())) != 398-maxWindow-118 {
		t.Errorf("after a long gap: last %d, %v balanced, skipped %v; want blocks 119-%d skipped, the rest balanced",
			w.last[wallet], runs("balanced"), testutil.ToFloat64(m.skipped.WithLabelValues("c", wallet.Hex())), 398-maxWindow)
	}
}

// TestWatcherStops: Stop ends a started watcher, and one never started.
func TestWatcherStops(t *testing.T) {
	cfg := WatchConfig{Chain: "c", Every: time.Millisecond, Books: &fakeBooks{}, Node: &headChain{fakeChain: &fakeChain{}},
		Events: &fakeEvents{}, Metrics: NewMetrics(nil), Settled: func(common.Address) uint64 { return 0 }}
	w, err := NewWatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.Start(context.Background())
	time.Sleep(5 * time.Millisecond)
	w.Stop()
	idle, _ := NewWatcher(cfg)
	idle.Stop()
	cfg.Every = 0
	if _, err := NewWatcher(cfg); err == nil {
		t.Error("a watcher without a positive Every was made")
	}
}
