package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/payout"
)

// maxWindow bounds the blocks one pass reconciles: the opening balance is
// read at the window's start, and a full node keeps the state of about
// the last 128 blocks. Blocks beyond it (the engine was down longer) are
// counted as skipped.
const maxWindow = 120

// WatchChain is what a Watcher reads of the chain.
type WatchChain interface {
	Chain
	BlockNumber(ctx context.Context) (uint64, error)
}

// Events records an alert about a wallet (the store's outbox).
type Events interface {
	AppendEvent(ctx context.Context, objectID, eventType string, data any) error
}

// WatchConfig is what a Watcher needs. Every field but Logger is
// required.
type WatchConfig struct {
	Chain         string
	ChainID       uint64
	Assets        []payout.Asset
	Wallets       []common.Address
	Confirmations uint64
	// Every is how often a pass runs.
	Every  time.Duration
	Books  Books
	Node   WatchChain
	Events Events
	// Settled returns the last block whose receipts this engine has
	// recorded for a wallet (its sender's scan), or 0 when this instance
	// does not send for it now (another holds its lease, or it is
	// starting). A block the sender has not scanned yet would show its
	// payouts as drift.
	Settled func(wallet common.Address) uint64
	Metrics *Metrics // NewMetrics, shared by the chains' watchers
	Logger  *slog.Logger
}

// Watcher reconciles a chain's hot wallets, pass after pass, over the
// blocks settled since its previous pass (the first pass only opens the
// books), and writes a wallet.drift event when the books do not match.
type Watcher struct {
	cfg     WatchConfig
	log     *slog.Logger
	metrics *Metrics
	last    map[common.Address]uint64 // the block each wallet's books were closed at

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Metrics are the watchers' Prometheus metrics.
type Metrics struct {
	runs        *prometheus.CounterVec
	lastBlock   *prometheus.GaugeVec
	unexplained *prometheus.GaugeVec
	skipped     *prometheus.CounterVec
}

// NewMetrics makes the watchers' metrics and registers them with reg
// (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_reconcile_runs_total",
			Help: "Reconciliations of a hot wallet's books with the chain, by outcome: balanced, drift or error."}, []string{"chain", "wallet", "outcome"}),
		lastBlock: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_reconcile_last_block",
			Help: "The block up to which a hot wallet's books were last reconciled."}, []string{"chain", "wallet"}),
		unexplained: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_reconcile_unexplained",
			Help: "What the last reconciled blocks left unexplained, in the asset's units: 0 when the books match; for the native coin, above 0 is coin received (a top-up)."},
			[]string{"chain", "wallet", "asset"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_reconcile_skipped_blocks_total",
			Help: "Blocks not reconciled because they were older than a node keeps state for when the watcher got to them."}, []string{"chain", "wallet"}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.lastBlock, m.unexplained, m.skipped)
	}
	return m
}

// NewWatcher checks cfg and returns a stopped Watcher.
func NewWatcher(cfg WatchConfig) (*Watcher, error) {
	if cfg.Books == nil || cfg.Node == nil || cfg.Events == nil || cfg.Settled == nil || cfg.Metrics == nil || cfg.Every <= 0 {
		return nil, fmt.Errorf("reconcile: watcher of %s: Books, Node, Events, Settled, Metrics and a positive Every are required", cfg.Chain)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Watcher{cfg: cfg, log: cfg.Logger.With("component", "reconcile", "chain", cfg.Chain), metrics: cfg.Metrics,
		last: map[common.Address]uint64{}, done: make(chan struct{})}, nil
}

// Start runs passes every Every until Stop.
func (w *Watcher) Start(ctx context.Context) {
	ctx, w.cancel = context.WithCancel(ctx)
	go func() {
		defer close(w.done)
		t := time.NewTicker(w.cfg.Every)
		defer t.Stop()
		for {
			w.Pass(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the passes, cancelling the one under way, and waits for it.
func (w *Watcher) Stop() {
	w.once.Do(func() {
		if w.cancel == nil {
			close(w.done) // never started
			return
		}
		w.cancel()
	})
	<-w.done
}

// Pass reconciles each wallet once, over the blocks settled since its
// previous pass.
func (w *Watcher) Pass(ctx context.Context) {
	head, err := w.cfg.Node.BlockNumber(ctx)
	if err != nil {
		w.log.Warn("reconciliation: no head", "err", err)
		return
	}
	confirmed := uint64(0)
	if head > w.cfg.Confirmations {
		confirmed = head - w.cfg.Confirmations
	}
	node := &passChain{WatchChain: w.cfg.Node, blocks: map[uint64][]*types.Receipt{}}
	for _, wallet := range w.cfg.Wallets {
		settled := w.cfg.Settled(wallet)
		if _, opened := w.last[wallet]; !opened {
			if settled != 0 {
				// The books open where this engine's sender took over: what
				// came before (other transactions from the wallet, such as a
				// sandbox funding its extra wallets) is for sluice reconcile.
				w.last[wallet] = settled
			}
			continue
		}
		w.passWallet(ctx, node, wallet, min(confirmed, settled))
	}
}

// passChain reads each block's receipts once in a pass, for all the
// chain's wallets (a node decodes a busy block's receipts in tens of
// milliseconds; the RPC client's own cache keeps fewer blocks than a pass
// may read).
type passChain struct {
	WatchChain
	blocks map[uint64][]*types.Receipt
}

func (p *passChain) BlockReceipts(ctx context.Context, n uint64) ([]*types.Receipt, error) {
	if rs, ok := p.blocks[n]; ok {
		return rs, nil
	}
	rs, err := p.WatchChain.BlockReceipts(ctx, n)
	if err == nil {
		p.blocks[n] = rs
	}
	return rs, err
}

func (w *Watcher) passWallet(ctx context.Context, node Chain, wallet common.Address, to uint64) {
	hex := wallet.Hex()
	from := w.last[wallet]
	if to <= from {
		return // not sending for it here (0), or nothing new settled and confirmed
	}
	if to-from > maxWindow {
		skipped := to - maxWindow - from
		w.metrics.skipped.WithLabelValues(w.cfg.Chain, hex).Add(float64(skipped))
		w.log.Warn("reconciliation: blocks skipped, older than a node keeps state for", "wallet", hex, "from_block", from+1, "to_block", to-maxWindow)
		from = to - maxWindow
	}
	r, err := Run(ctx, w.cfg.Books, node, Request{Chain: w.cfg.Chain, ChainID: w.cfg.ChainID, Wallet: wallet, Assets: w.cfg.Assets, From: from, To: to})
	if err != nil {
		w.metrics.runs.WithLabelValues(w.cfg.Chain, hex, "error").Inc()
		w.log.Warn("reconciliation failed; trying again next pass", "wallet", hex, "from_block", from+1, "to_block", to, "err", err)
		return
	}
	w.last[wallet] = to
	w.metrics.lastBlock.WithLabelValues(w.cfg.Chain, hex).Set(float64(to))
	for _, l := range r.Assets {
		v, _ := strconv.ParseFloat(payout.FormatDecimal(l.Unexplained, l.Decimals), 64)
		w.metrics.unexplained.WithLabelValues(w.cfg.Chain, hex, l.Asset).Set(v)
	}
	if r.Balanced() {
		w.metrics.runs.WithLabelValues(w.cfg.Chain, hex, "balanced").Inc()
		return
	}
	w.metrics.runs.WithLabelValues(w.cfg.Chain, hex, "drift").Inc()
	data := driftData(r)
	w.log.Error("the books do not match the chain", "wallet", hex, "from_block", from+1, "to_block", to, "detail", data["detail"])
	if err := w.cfg.Events.AppendEvent(ctx, payout.WalletObjectID(w.cfg.ChainID, wallet), payout.EventWalletDrift, data); err != nil {
		w.log.Error("could not record wallet.drift", "wallet", hex, "err", err)
	}
}

// driftData is the wallet.drift event's data: the blocks, each asset that
// drifted with its books, the foreign nonces, and a sentence.
func driftData(r *Report) map[string]any {
	var assets []map[string]any
	detail := ""
	for _, l := range r.Assets {
		if !l.Drift {
			continue
		}
		a := map[string]any{"asset": l.Asset, "opening": l.Opening.String(), "closing": l.Closing.String(), "paid": l.Paid.String(),
			"payouts": l.Payouts, "unexplained": l.Unexplained.String()}
		if l.Fees != nil {
			a["fees"] = l.Fees.String()
		}
		if l.Received != nil {
			a["received"] = l.Received.String()
		}
		assets = append(assets, a)
		detail += fmt.Sprintf("%s %s unexplained; ", payout.FormatDecimal(l.Unexplained, l.Decimals), l.Asset)
	}
	var foreign []map[string]any
	for _, f := range r.Foreign {
		m := map[string]any{"nonce": f.Nonce}
		if f.Tx != nil {
			m["tx_hash"], m["block_number"] = f.Tx.Hex(), f.Block
			detail += fmt.Sprintf("nonce %d used by %s, which Sluice did not sign; ", f.Nonce, f.Tx.Hex())
		} else {
			detail += fmt.Sprintf("nonce %d used by a transaction Sluice did not sign; ", f.Nonce)
		}
		foreign = append(foreign, m)
	}
	if len(detail) > 2 {
		detail = detail[:len(detail)-2]
	}
	return map[string]any{"chain": r.Chain, "wallet": r.Wallet.Hex(), "from_block": r.FromBlock + 1, "to_block": r.ToBlock,
		"assets": assets, "foreign_nonces": foreign, "detail": detail}
}
