package reconcile

import (
	"context"
	"log/slog"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
)

// headChain is fakeChain with a head.
type headChain struct {
	*fakeChain
	head uint64
}

func (c *headChain) BlockNumber(context.Context) (uint64, error) { return c.head, nil }

// fakeMarks keeps the books' marks in memory, as the store does.
type fakeMarks struct {
	mark   map[common.Address]uint64
	drifts []map[string]any
	stale  bool // another instance moves the marks first
}

func (m *fakeMarks) BooksClosedAt(_ context.Context, _ uint64, w common.Address) (uint64, bool, error) {
	b, ok := m.mark[w]
	return b, ok, nil
}
func (m *fakeMarks) OpenBooks(_ context.Context, _ uint64, w common.Address, b uint64) error {
	if _, ok := m.mark[w]; !ok {
		m.mark[w] = b
	}
	return nil
}
func (m *fakeMarks) CloseBooks(_ context.Context, _ uint64, w common.Address, from, to uint64, drift any) (bool, error) {
	if m.stale || m.mark[w] != from {
		return false, nil
	}
	m.mark[w] = to
	if drift != nil {
		m.drifts = append(m.drifts, drift.(map[string]any))
	}
	return true, nil
}

// TestWatcherReconcilesSettledBlocks: nothing while the wallet's sender
// has settled nothing; the first pass opens the books where it took over;
// later passes reconcile only blocks both confirmed and settled; a drift
// closes its window with one wallet.drift; a wallet far behind goes on
// window by window while the node keeps the state, and skips (counted)
// to what it keeps when it does not; another instance's close wins.
func TestWatcherReconcilesSettledBlocks(t *testing.T) {
	wallet := common.HexToAddress("0xa1")
	token := common.HexToAddress("0x70")
	chain := &headChain{fakeChain: &fakeChain{
		nonces:   map[uint64]uint64{98: 5, 105: 5},
		balances: map[uint64]*big.Int{98: big.NewInt(1_000), 105: big.NewInt(1_000), 118: big.NewInt(990)},
		tokens:   map[uint64]*big.Int{98: big.NewInt(50), 105: big.NewInt(50), 118: big.NewInt(43)},
		in:       new(big.Int),
	}}
	for _, b := range []uint64{118, 238, 358, 398, 878, 998, 1008} { // after the foreign transaction at nonce 5
		chain.nonces[b], chain.balances[b], chain.tokens[b] = 6, big.NewInt(990), big.NewInt(43)
	}
	marks := &fakeMarks{mark: map[common.Address]uint64{}}
	books := &fakeBooks{}
	settled := uint64(0)
	m := NewMetrics(prometheus.NewRegistry())
	w, err := NewWatcher(WatchConfig{Chain: "c", ChainID: 7, Wallets: []common.Address{wallet}, Confirmations: 2, Every: time.Hour,
		Assets: []payout.Asset{{Symbol: "ETH", Decimals: 0}, {Symbol: "TOK", Decimals: 0, Token: &token}},
		Books:  books, Node: chain, Marks: marks, Metrics: m, Logger: slog.New(slog.DiscardHandler),
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
	skipped := func() float64 { return testutil.ToFloat64(m.skipped.WithLabelValues("c", wallet.Hex())) }

	chain.head = 100
	w.Pass(ctx) // the sender settled nothing yet
	if _, open := marks.mark[wallet]; open {
		t.Fatal("the books opened before the sender settled a block")
	}
	settled = 98
	w.Pass(ctx) // opens the books at 98, where the sender took over
	if marks.mark[wallet] != 98 || runs("balanced")+runs("drift")+runs("error") != 0 {
		t.Fatalf("after the first passes: mark %d, want the books opened at 98 and nothing reconciled", marks.mark[wallet])
	}
	chain.head, settled = 110, 105 // confirmed up to 108, settled up to 105
	w.Pass(ctx)
	if marks.mark[wallet] != 105 || runs("balanced") != 1 || len(marks.drifts) != 0 {
		t.Fatalf("blocks 99-105: mark %d, %v balanced, drifts %v; want balanced up to 105", marks.mark[wallet], runs("balanced"), marks.drifts)
	}
	chain.head, settled = 120, 200 // confirmed up to 118
	w.Pass(ctx)
	if marks.mark[wallet] != 118 || runs("drift") != 1 || len(marks.drifts) != 1 {
		t.Fatalf("blocks 106-118: mark %d, %v drift, %d drifts; want one drift up to 118", marks.mark[wallet], runs("drift"), len(marks.drifts))
	}
	d := marks.drifts[0]
	assets, _ := d["assets"].([]map[string]any)
	foreign, _ := d["foreign_nonces"].([]map[string]any)
	if len(assets) != 2 || assets[0]["unexplained"] != "-10" || assets[1]["unexplained"] != "-7" || len(foreign) != 1 ||
		foreign[0]["nonce"] != uint64(5) || d["from_block"] != uint64(106) || d["to_block"] != uint64(118) {
		t.Errorf("drift data %+v", d)
	}
	if got := testutil.ToFloat64(m.unexplained.WithLabelValues("c", wallet.Hex(), "TOK")); got != -7 {
		t.Errorf("sluice_reconcile_unexplained{asset=TOK} = %v, want -7", got)
	}

	chain.head, settled = 400, 398 // 280 blocks behind; the node keeps them all
	w.Pass(ctx)
	if marks.mark[wallet] != 398 || runs("balanced") != 4 || skipped() != 0 {
		t.Errorf("280 blocks behind on an archive node: mark %d, %v balanced, %v skipped; want three windows to 398",
			marks.mark[wallet], runs("balanced"), skipped())
	}
	chain.head, settled, chain.prunedBelow = 1000, 998, 870 // 600 behind; the node keeps the last 128
	w.Pass(ctx)
	if marks.mark[wallet] != 998 || runs("balanced") != 5 || skipped() != 878-398 || runs("error") != 0 {
		t.Errorf("600 blocks behind on a full node: mark %d, %v balanced, %v skipped, %v errors; want blocks 399-878 skipped, 879-998 balanced",
			marks.mark[wallet], runs("balanced"), skipped(), runs("error"))
	}
	// A Sluice transaction mined at nonce 6 whose payout the sender has
	// not recorded yet (the watcher never reads past what the sender
	// settled; this is the guard behind that).
	late := common.Hash{0x1a}
	books.attempts = []*payout.Attempt{{PayoutID: "po_late", Nonce: 6, TxHash: late}}
	books.unrecorded = map[string]bool{"po_late": true}
	chain.receipts = map[common.Hash]*evm.Receipt{late: receipt(1005, 21_000, 1)}
	chain.nonces[1008] = 7
	chain.head, settled = 1010, 1008
	w.Pass(ctx)
	if marks.mark[wallet] != 998 || runs("error") != 1 || runs("drift") != 1 {
		t.Errorf("with a payout not recorded: mark %d, %v errors, %v drifts; want the window left for the next pass", marks.mark[wallet], runs("error"), runs("drift"))
	}
	books.unrecorded = nil
	marks.stale = true // another instance closes the books first
	chain.head, settled = 1010, 1008
	w.Pass(ctx)
	if marks.mark[wallet] != 998 || runs("balanced") != 5 {
		t.Errorf("with another instance ahead: mark %d, %v balanced; want nothing counted here", marks.mark[wallet], runs("balanced"))
	}
}

// TestWatcherStops: Stop ends a started watcher, and one never started.
func TestWatcherStops(t *testing.T) {
	cfg := WatchConfig{Chain: "c", Every: time.Millisecond, Books: &fakeBooks{}, Node: &headChain{fakeChain: &fakeChain{}},
		Marks: &fakeMarks{mark: map[common.Address]uint64{}}, Metrics: NewMetrics(nil), Settled: func(common.Address) uint64 { return 0 }}
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
