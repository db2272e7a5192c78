package fees

import (
	"context"
	"errors"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
)

// fillBlocks makes one block per tip set, each holding one transfer per
// tip (in gwei), then empty blocks. It returns the last header.
func fillBlocks(t testing.TB, c *testChain, tipSets [][]int64, empty int) {
	t.Helper()
	for _, tips := range tipSets {
		for _, tip := range tips {
			c.mustSend(t, c.next(t, evm.Fees{MaxFeePerGas: gwei(100), MaxPriorityFeePerGas: gwei(tip)}))
		}
		c.waitPending(t)
		if h := c.commit(t); h.GasUsed != uint64(len(tips))*21_000 {
			t.Fatalf("block %d used %d gas, want %d transfers", h.Number, h.GasUsed, len(tips))
		}
	}
	for range empty {
		c.commit(t)
	}
}

func TestQuoteFromFeeHistory(t *testing.T) {
	t.Parallel()
	c := startChain(t)
	// Three blocks with tips spread differently, then four empty blocks: a
	// window that counted empty blocks would see a median tip of 0.
	fillBlocks(t, c, [][]int64{{1, 2, 3, 4}, {5, 4, 3, 2}, {3, 4, 5, 6}}, 4)
	o, err := New(c.eth, Config{Chain: "sandbox", Window: 7, HeadTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Per block, geth's p25/p50/p75 of four equal transfers are the 1st,
	// 2nd and 3rd lowest tips; the quote takes the median over the blocks.
	wantTip := map[Priority]int64{Low: 2, Standard: 3, High: 4}
	anchor := windowMedianBaseFee(t, c, 7)
	for _, p := range payout.Priorities {
		q, err := o.Quote(ctx, p)
		if err != nil {
			t.Fatalf("Quote(%s): %v", p, err)
		}
		if got, want := q.Fees.MaxPriorityFeePerGas, gwei(wantTip[p]); got.Cmp(want) != 0 {
			t.Errorf("%s tip = %s, want %s", p, got, want)
		}
		if q.Anchor.Cmp(anchor) != 0 || q.Anchor.Cmp(q.BaseFee) <= 0 {
			t.Errorf("%s anchor = %s, want the window's median %s (above the falling next base fee %s)", p, q.Anchor, anchor, q.BaseFee)
		}
		l, _ := o.Level(p)
		if got, want := q.MaxFee(), new(big.Int).Add(Headroom(anchor, l.Headroom), q.Fees.MaxPriorityFeePerGas); got.Cmp(want) != 0 {
			t.Errorf("%s max fee = %s, want %s", p, got, want)
		}
	}
	// Percentiles are configurable; two levels may share one.
	o2, err := New(c.eth, Config{Chain: "sandbox", Window: 7, HeadTTL: -1, Levels: map[Priority]Level{
		Standard: {Percentile: 75, Headroom: 3, Replace: Schedule{After: 3}},
		High:     {Percentile: 90, Headroom: 6, Replace: Schedule{After: 2}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[Priority]int64{Low: 2, Standard: 4, High: 5} {
		if q, err := o2.Quote(ctx, p); err != nil || q.Fees.MaxPriorityFeePerGas.Cmp(gwei(want)) != 0 {
			t.Errorf("configured %s tip = %v (%v), want %d gwei", p, q.Fees.MaxPriorityFeePerGas, err, want)
		}
	}
	// The next block's base fee is what the chain then charges.
	q, _ := o.Quote(ctx, Standard)
	if h := c.commit(t); h.BaseFee.Cmp(q.BaseFee) != 0 {
		t.Errorf("quoted next base fee %s, block %d has %s", q.BaseFee, h.Number, h.BaseFee)
	}
}

// windowMedianBaseFee reads the base fees of the last n blocks from their
// headers and returns their upper median.
func windowMedianBaseFee(t *testing.T, c *testChain, n int) *big.Int {
	t.Helper()
	head, err := c.eth.HeaderByNumber(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var bs []*big.Int
	for i := range n {
		h, err := c.eth.HeaderByNumber(context.Background(), new(big.Int).Sub(head.Number, big.NewInt(int64(i))))
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, h.BaseFee)
	}
	slices.SortFunc(bs, func(a, b *big.Int) int { return a.Cmp(b) })
	return bs[n/2]
}

func TestQuoteEmptyWindowUsesMinTip(t *testing.T) {
	t.Parallel()
	c := startChain(t)
	fillBlocks(t, c, nil, 3)
	minTip := big.NewInt(7_000_000)
	o, err := New(c.eth, Config{Chain: "sandbox", Window: 3, MinTip: minTip, HeadTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	q, err := o.Quote(context.Background(), High)
	if err != nil {
		t.Fatal(err)
	}
	if q.Fees.MaxPriorityFeePerGas.Cmp(minTip) != 0 {
		t.Errorf("tip over empty blocks = %s, want MinTip %s", q.Fees.MaxPriorityFeePerGas, minTip)
	}
	// The quote gets a transaction into the next block.
	tx := c.next(t, q.Fees)
	c.mustSend(t, tx)
	c.commit(t)
	if !c.mined(t, tx) {
		t.Error("a transaction at the quoted fees was not mined in the next block")
	}
}

// TestHeadroomSurvivesFullBlocks fills k blocks completely after a quote:
// a max fee of baseFee × 1.125^k still covers the base fee after them, and
// one block less of headroom does not.
func TestHeadroomSurvivesFullBlocks(t *testing.T) {
	t.Parallel()
	c := startChain(t)
	fillBlocks(t, c, nil, 1)
	o, err := New(c.eth, Config{Chain: "sandbox", Window: 1, HeadTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	q, err := o.Quote(context.Background(), Standard)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := o.Level(Standard)
	full := make([]int64, 100) // 100 transfers fill a block
	for i := range full {
		full[i] = 1
	}
	fillBlocks(t, c, slices.Repeat([][]int64{full}, l.Headroom), 0)
	h, err := c.eth.HeaderByNumber(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	next := new(big.Int).Add(h.BaseFee, new(big.Int).Div(h.BaseFee, big.NewInt(8))) // after the last full block
	if got := Headroom(q.BaseFee, l.Headroom); got.Cmp(next) < 0 {
		t.Errorf("base fee %s × 1.125^%d = %s, below the base fee %s after %d full blocks", q.BaseFee, l.Headroom, got, next, l.Headroom)
	}
	if got := Headroom(q.BaseFee, l.Headroom-1); got.Cmp(next) >= 0 {
		t.Errorf("k-1 headroom %s already covers %s: the test does not measure k", got, next)
	}
	if q.MaxFee().Cmp(next) < 0 {
		t.Errorf("standard max fee %s below the base fee %s after %d full blocks", q.MaxFee(), next, l.Headroom)
	}
}

func TestQuoteCachedPerBlock(t *testing.T) {
	t.Parallel()
	c := startChain(t)
	fillBlocks(t, c, [][]int64{{2}}, 0)
	b := &counting{Backend: c.eth}
	reg := prometheus.NewRegistry()
	o, err := New(b, Config{Chain: "sandbox", HeadTTL: -1, Metrics: NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	quoteMany := func() {
		var wg sync.WaitGroup
		for i := range 60 {
			wg.Go(func() {
				if _, err := o.Quote(context.Background(), payout.Priorities[i%3]); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	quoteMany()
	if got, want := b.calls(), [3]int64{1, 1, 0}; got != want {
		t.Errorf("60 quotes on one head made %v calls (headers, histories, prices), want %v", got, want)
	}
	h := c.commit(t)
	quoteMany() // no new head reported: still cached
	o.SetHead(h.Number.Uint64())
	quoteMany()
	if got, want := b.calls(), [3]int64{2, 2, 0}; got != want {
		t.Errorf("after one new head: %v calls, want %v", got, want)
	}
	for result, want := range map[string]float64{"miss": 2, "hit": 178} {
		if got := testutil.ToFloat64(o.m.cache.WithLabelValues("sandbox", result)); got != want {
			t.Errorf("cache %s = %v, want %v", result, got, want)
		}
	}
	if got := testutil.ToFloat64(o.m.quotes.WithLabelValues("sandbox", "high")); got != 60 {
		t.Errorf("high quotes = %v, want 60", got)
	}
	q, _ := o.Quote(context.Background(), Standard)
	if got, want := testutil.ToFloat64(o.m.baseFee.WithLabelValues("sandbox")), weiGauge(q.BaseFee); got != want || got == 0 {
		t.Errorf("base fee gauge = %v, want %v", got, want)
	}
	if got := testutil.ToFloat64(o.m.tip.WithLabelValues("sandbox", "standard")); got != 2e9 {
		t.Errorf("standard tip gauge = %v, want 2e9", got)
	}
}

func TestQuotePollsHeadAfterTTL(t *testing.T) {
	t.Parallel()
	c := startChain(t)
	b := &counting{Backend: c.eth}
	o, err := New(b, Config{Chain: "sandbox", HeadTTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	quote := func() Quote {
		q, err := o.Quote(ctx, Standard)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	first := quote()
	quote()
	time.Sleep(350 * time.Millisecond)
	quote() // same head: one header call, no fee history
	if got, want := b.calls(), [3]int64{2, 1, 0}; got != want {
		t.Errorf("same head after the TTL: %v calls, want %v", got, want)
	}
	c.commit(t)
	time.Sleep(350 * time.Millisecond)
	if q := quote(); q.Head != first.Head+1 {
		t.Errorf("quote head = %d, want %d", q.Head, first.Head+1)
	}
	if got, want := b.calls(), [3]int64{3, 2, 0}; got != want {
		t.Errorf("new head after the TTL: %v calls, want %v", got, want)
	}
}

func TestQuoteLegacyChain(t *testing.T) {
	t.Parallel()
	c := startChain(t)
	fillBlocks(t, c, [][]int64{{3}}, 0)
	// The dev chain has EIP-1559; hiding the header's base fee makes it
	// look like a chain without, as the oracle detects one.
	b := &counting{Backend: c.eth, noBaseFee: true}
	o, err := New(b, Config{Chain: "legacy", HeadTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	price, err := c.eth.SuggestGasPrice(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for p, premium := range map[Priority]int64{Low: 100, Standard: 110, High: 125} {
		q, err := o.Quote(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		want := new(big.Int).Mul(price, big.NewInt(premium))
		want.Add(want, big.NewInt(99)).Div(want, big.NewInt(100))
		if q.Dynamic || q.MaxFee().Cmp(want) != 0 || q.Fees.MaxPriorityFeePerGas.Cmp(want) != 0 {
			t.Errorf("%s legacy quote = %+v, want gas price %s in both fields", p, q, want)
		}
	}
	if got, want := b.calls(), [3]int64{1, 0, 1}; got != want {
		t.Errorf("legacy calls %v, want %v (no fee history)", got, want)
	}
}

func TestQuoteUnknownPriority(t *testing.T) {
	t.Parallel()
	o, err := New(nil, Config{Chain: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Quote(context.Background(), "urgent"); err == nil {
		t.Error("Quote(urgent): got no error")
	}
}

// TestReplacementOnChain sends a transaction, then replaces it with Bump
// through geth's real txpool: the bump is accepted and mined, one wei less
// is "replacement transaction underpriced".
func TestReplacementOnChain(t *testing.T) {
	t.Parallel()
	c := startChain(t)
	fillBlocks(t, c, nil, 1)
	reg := prometheus.NewRegistry()
	o, err := New(c.eth, Config{Chain: "sandbox", HeadTTL: -1, Metrics: NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		old        evm.Fees
		checkUnder bool // old × 1.1 is a whole number, so one wei less is under geth's threshold
	}{
		{name: "exact ten percent", old: evm.Fees{MaxFeePerGas: gwei(20), MaxPriorityFeePerGas: gwei(2)}, checkUnder: true},
		{name: "odd values", old: evm.Fees{MaxFeePerGas: big.NewInt(20_000_000_007), MaxPriorityFeePerGas: big.NewInt(1_000_000_003)}},
		// A tip under the miner's minimum: pooled, never mined, stuck until
		// the bump lifts it to the current quote.
		{name: "stuck below the quote", old: evm.Fees{MaxFeePerGas: gwei(2), MaxPriorityFeePerGas: big.NewInt(1000)}},
	}
	for _, tt := range tests {
		old := c.next(t, tt.old)
		c.mustSend(t, old)
		if tt.name == "stuck below the quote" {
			c.commit(t)
			if c.mined(t, old) {
				t.Fatalf("%s: the old transaction was mined; it should be stuck", tt.name)
			}
		}
		h, _ := c.eth.HeaderByNumber(context.Background(), nil)
		o.SetHead(h.Number.Uint64())
		q, err := o.Quote(context.Background(), Standard)
		if err != nil {
			t.Fatal(err)
		}
		bumped, err := o.Bump(tt.old, q, 21_000, nil)
		if err != nil {
			t.Fatalf("%s: Bump: %v", tt.name, err)
		}
		if tt.checkUnder {
			underTip := evm.Fees{MaxFeePerGas: bumped.MaxFeePerGas, MaxPriorityFeePerGas: new(big.Int).Sub(bumped.MaxPriorityFeePerGas, big.NewInt(1))}
			underFee := evm.Fees{MaxFeePerGas: new(big.Int).Sub(bumped.MaxFeePerGas, big.NewInt(1)), MaxPriorityFeePerGas: bumped.MaxPriorityFeePerGas}
			for _, under := range []evm.Fees{underTip, underFee} {
				errs := c.send(t, c.sign(t, old.Nonce(), under))
				if kind, _ := evm.Classify(errs[0]); kind != evm.KindReplacementUnderpriced {
					t.Errorf("%s: %s: node said %v (%s), want replacement transaction underpriced", tt.name, feesString(under), errs[0], kind)
				}
			}
		}
		// The cap forbids the bump: typed error, counted.
		if _, err := o.Bump(tt.old, q, 21_000, new(big.Int).Mul(tt.old.MaxFeePerGas, big.NewInt(21_000))); !errors.Is(err, ErrCapReached) {
			t.Errorf("%s: Bump under a cap at the old fee: %v, want ErrCapReached", tt.name, err)
		}
		repl := c.sign(t, old.Nonce(), bumped)
		c.mustSend(t, repl)
		c.commit(t)
		if !c.mined(t, repl) || c.mined(t, old) {
			t.Errorf("%s: replacement %s mined %v, old mined %v; want only the replacement", tt.name, feesString(bumped), c.mined(t, repl), c.mined(t, old))
		}
	}
	if got := testutil.ToFloat64(o.m.capReached.WithLabelValues("sandbox", "fee_cap_reached")); got != 3 {
		t.Errorf("cap reached count = %v, want 3", got)
	}
}

func TestCheckOnChainQuote(t *testing.T) {
	t.Parallel()
	c := startChain(t)
	fillBlocks(t, c, [][]int64{{2}}, 0)
	reg := prometheus.NewRegistry()
	o, err := New(c.eth, Config{Chain: "sandbox", HeadTTL: -1, Metrics: NewMetrics(reg),
		Caps: Caps{MaxFeePerGas: gwei(4), MaxFeePerPayout: new(big.Int).Mul(gwei(4), big.NewInt(50_000))}})
	if err != nil {
		t.Fatal(err)
	}
	q, err := o.Quote(context.Background(), Standard) // 2 gwei tip + under 1 gwei base × 1.125^3: about 3.3 gwei
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Check(q, 21_000, nil); err != nil {
		t.Errorf("transfer at %s wei/gas: %v, want within the caps", q.MaxFee(), err)
	}
	var over *OverCapError
	if err := o.Check(q, 100_000, nil); !errors.As(err, &over) || over.Reason != ReasonPayoutFee {
		t.Errorf("100k gas at %s: %v, want %s", q.MaxFee(), err, ReasonPayoutFee)
	}
	if err := o.Check(q, 100_000, new(big.Int).Mul(q.MaxFee(), big.NewInt(100_000))); err != nil {
		t.Errorf("with an operator override: %v, want nil", err)
	}
	hq, _ := o.Quote(context.Background(), High)
	hq.Fees.MaxFeePerGas = new(big.Int).Add(gwei(4), big.NewInt(1))
	if err := o.Check(hq, 21_000, nil); !errors.As(err, &over) || over.Reason != ReasonMaxFeePerGas {
		t.Errorf("4 gwei + 1 wei: %v, want %s", err, ReasonMaxFeePerGas)
	}
	if got := testutil.ToFloat64(o.m.capReached.WithLabelValues("sandbox", string(ReasonPayoutFee))); got != 1 {
		t.Errorf("payout cap count = %v, want 1", got)
	}
}

// blocking is a backend whose header call waits for release: a refresh in
// flight.
type blocking struct {
	Backend
	entered, release chan struct{}
}

func (b *blocking) HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Backend.HeaderByNumber(ctx, n)
}

func TestQuoteWaitHonoursContext(t *testing.T) {
	t.Parallel()
	c := startChain(t)
	b := &blocking{Backend: c.eth, entered: make(chan struct{}, 1), release: make(chan struct{})}
	o, err := New(b, Config{Chain: "sandbox", HeadTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { _, err := o.Quote(context.Background(), Standard); first <- err }()
	<-b.entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := o.Quote(ctx, High); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Quote while a refresh is in flight with a short deadline: %v, want DeadlineExceeded", err)
	}
	close(b.release)
	if err := <-first; err != nil {
		t.Errorf("the refreshing Quote: %v", err)
	}
	if _, err := o.Quote(context.Background(), High); err != nil {
		t.Errorf("Quote after the refresh: %v", err)
	}
}
