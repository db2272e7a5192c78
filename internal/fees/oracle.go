package fees

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluicepay/sluice/internal/evm"
)

// Backend is what the oracle needs from a chain's JSON-RPC. The method
// shapes are go-ethereum's ethclient.Client's, which satisfies it (e.g.
// ethclient.NewClient over the engine's rpc.Client).
type Backend interface {
	// HeaderByNumber returns a header; nil number is the latest. A header
	// without a base fee means the chain has no EIP-1559.
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	// FeeHistory is eth_feeHistory.
	FeeHistory(ctx context.Context, blockCount uint64, lastBlock *big.Int, rewardPercentiles []float64) (*ethereum.FeeHistory, error)
	// SuggestGasPrice is eth_gasPrice, for chains without EIP-1559.
	SuggestGasPrice(ctx context.Context) (*big.Int, error)
}

// Quote is the fee to send a transaction with at one head and priority.
type Quote struct {
	Priority Priority
	// Head is the block the quote was made at.
	Head uint64
	// Dynamic is true on EIP-1559 chains. On others both Fees fields hold
	// the legacy gas price.
	Dynamic bool
	// BaseFee is the next block's base fee; Anchor is the base fee the
	// headroom multiplies (see the package doc). Both nil when !Dynamic.
	BaseFee, Anchor *big.Int
	// Fees are the fields to sign.
	Fees evm.Fees
}

// MaxFee returns the most the quote pays per gas: the max fee, or the gas
// price on a legacy chain.
func (q Quote) MaxFee() *big.Int { return q.Fees.MaxFeePerGas }

// copy returns q with its own big.Ints, so a caller may not change the cache.
func (q Quote) copy() Quote {
	c := func(v *big.Int) *big.Int {
		if v == nil {
			return nil
		}
		return new(big.Int).Set(v)
	}
	q.BaseFee, q.Anchor = c(q.BaseFee), c(q.Anchor)
	q.Fees = evm.Fees{MaxFeePerGas: c(q.Fees.MaxFeePerGas), MaxPriorityFeePerGas: c(q.Fees.MaxPriorityFeePerGas), Legacy: q.Fees.Legacy}
	return q
}

// Oracle quotes fees for one chain, cached per block. It is safe for
// concurrent use.
type Oracle struct {
	cfg     Config
	backend Backend
	log     *slog.Logger
	m       *Metrics
	refresh chan struct{} // one refresh at a time; waiting honours ctx
	// hits and quotes are resolved once: label lookups would double the
	// cost of a cached quote.
	hits   prometheus.Counter
	quotes map[Priority]prometheus.Counter

	// mu guards the cached quotes and the newest head reported.
	mu   sync.Mutex
	snap *snapshot
	seen uint64
}

// snapshot holds every priority's quote at one head.
type snapshot struct {
	head    uint64
	checked time.Time
	quotes  map[Priority]Quote
}

// New returns an oracle reading fees through b.
func New(b Backend, cfg Config) (*Oracle, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := &Oracle{
		cfg: cfg, backend: b, m: cfg.Metrics, refresh: make(chan struct{}, 1),
		log:    cfg.Logger.With("component", "fees", "chain", cfg.Chain),
		hits:   cfg.Metrics.cache.WithLabelValues(cfg.Chain, "hit"),
		quotes: make(map[Priority]prometheus.Counter, len(cfg.Levels)),
	}
	for p := range cfg.Levels {
		o.quotes[p] = cfg.Metrics.quotes.WithLabelValues(cfg.Chain, string(p))
	}
	return o, nil
}

// Level returns the configuration of priority p.
func (o *Oracle) Level(p Priority) (Level, bool) {
	l, ok := o.cfg.Levels[p]
	return l, ok
}

// ReplaceDue says whether a transaction of priority p, broadcast as
// attempt number attempt (1 is the first) blocksSince blocks ago and not
// mined, should now be replaced (see Schedule).
func (o *Oracle) ReplaceDue(p Priority, blocksSince uint64, attempt int) bool {
	l, ok := o.cfg.Levels[p]
	if !ok {
		l = o.cfg.Levels[Standard]
	}
	return l.Replace.Due(blocksSince, attempt)
}

// SetHead reports a new head; the next Quote refreshes if it is newer
// than the cached one.
func (o *Oracle) SetHead(number uint64) {
	o.mu.Lock()
	o.seen = max(o.seen, number)
	o.mu.Unlock()
}

// Quote returns the fee for priority p ("" is Standard) at the current
// head. Calls for the same head share one set of RPC calls.
func (o *Oracle) Quote(ctx context.Context, p Priority) (Quote, error) {
	if p == "" {
		p = Standard
	}
	if _, ok := o.cfg.Levels[p]; !ok {
		return Quote{}, fmt.Errorf("quote: unknown priority %q", p)
	}
	if q, ok := o.cached(p); ok {
		return q, nil
	}
	select {
	case o.refresh <- struct{}{}:
	case <-ctx.Done():
		return Quote{}, fmt.Errorf("quote %s: %w", o.cfg.Chain, ctx.Err())
	}
	defer func() { <-o.refresh }()
	if q, ok := o.cached(p); ok { // another caller refreshed meanwhile
		return q, nil
	}
	s, err := o.update(ctx)
	if err != nil {
		return Quote{}, fmt.Errorf("quote %s: %w", o.cfg.Chain, err)
	}
	o.quotes[p].Inc()
	return s.quotes[p].copy(), nil
}

// cached returns p's quote when the cached head is still current.
func (o *Oracle) cached(p Priority) (Quote, bool) {
	o.mu.Lock()
	s := o.snap
	fresh := s != nil && o.seen <= s.head && (o.cfg.HeadTTL < 0 || time.Since(s.checked) < o.cfg.HeadTTL)
	o.mu.Unlock()
	if !fresh {
		return Quote{}, false
	}
	o.hits.Inc()
	o.quotes[p].Inc()
	return s.quotes[p].copy(), true
}

// update reads the latest header and, if it is a new head, the fees.
func (o *Oracle) update(ctx context.Context) (*snapshot, error) {
	h, err := o.backend.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("latest header: %w", err)
	}
	head := h.Number.Uint64()
	o.mu.Lock()
	if o.snap != nil && o.snap.head >= head {
		// Same head (or an upstream lagging behind SetHead): trust it for
		// another HeadTTL rather than ask again on every Quote.
		o.snap.checked, o.seen = time.Now(), o.snap.head
		s := o.snap
		o.mu.Unlock()
		o.m.cache.WithLabelValues(o.cfg.Chain, "revalidated").Inc()
		return s, nil
	}
	o.mu.Unlock()
	o.m.cache.WithLabelValues(o.cfg.Chain, "miss").Inc()
	snap, err := o.build(ctx, h)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	o.snap = snap
	o.mu.Unlock()
	o.observe(snap)
	return snap, nil
}

// build computes every priority's quote at header h.
func (o *Oracle) build(ctx context.Context, h *types.Header) (*snapshot, error) {
	var quotes map[Priority]Quote
	var err error
	if h.BaseFee == nil {
		quotes, err = o.legacyQuotes(ctx)
	} else {
		quotes, err = o.dynamicQuotes(ctx, h.Number)
	}
	if err != nil {
		return nil, err
	}
	head := h.Number.Uint64()
	for p, q := range quotes {
		q.Head = head
		quotes[p] = q
	}
	return &snapshot{head: head, checked: time.Now(), quotes: quotes}, nil
}

// observe publishes a new snapshot's figures.
func (o *Oracle) observe(s *snapshot) {
	std := s.quotes[Standard]
	base := std.BaseFee
	if !std.Dynamic {
		base = std.Fees.MaxFeePerGas
	}
	o.m.baseFee.WithLabelValues(o.cfg.Chain).Set(weiGauge(base))
	for p, q := range s.quotes {
		o.m.tip.WithLabelValues(o.cfg.Chain, string(p)).Set(weiGauge(q.Fees.MaxPriorityFeePerGas))
	}
	o.log.Debug("fee quote refreshed", "head", s.head, "dynamic", std.Dynamic, "base_fee", base,
		"anchor", std.Anchor, "max_fee_standard", std.Fees.MaxFeePerGas, "tip_standard", std.Fees.MaxPriorityFeePerGas)
}

// Check is Caps.Check with the chain's caps, counting refusals.
func (o *Oracle) Check(q Quote, gasLimit uint64, override *big.Int) error {
	err := o.cfg.Caps.Check(q, gasLimit, override)
	if e, ok := err.(*OverCapError); ok {
		o.m.capReached.WithLabelValues(o.cfg.Chain, string(e.Reason)).Inc()
	}
	return err
}

// Bump is Bump limited by the chain's caps for gasLimit (or an operator's
// per-payout override), counting cap-reached refusals.
func (o *Oracle) Bump(old evm.Fees, current Quote, gasLimit uint64, override *big.Int) (evm.Fees, error) {
	f, err := Bump(old, current, o.cfg.Caps.Limit(gasLimit, override))
	if e, ok := err.(*CapReachedError); ok {
		o.m.capReached.WithLabelValues(o.cfg.Chain, e.Reason()).Inc()
	}
	return f, err
}
