package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
)

// maxWindow bounds the blocks one reconciliation covers: the opening
// balance is read at the window's start, and a full node keeps the state
// of about the last 128 blocks. A wallet further behind (the engine was
// down) goes on window by window while the node has the state, and skips
// to the last maxWindow blocks when it does not.
const maxWindow = 120

// WatchChain is what a Watcher reads of the chain.
type WatchChain interface {
	Chain
	BlockNumber(ctx context.Context) (uint64, error)
}

// Marks keeps where each wallet's books were last closed (the store), so
// that reconciliation goes on from there after a restart, or on the
// instance that takes a wallet's sending over.
type Marks interface {
	BooksClosedAt(ctx context.Context, chainID uint64, wallet common.Address) (uint64, bool, error)
	// OpenBooks sets the mark unless there is one.
	OpenBooks(ctx context.Context, chainID uint64, wallet common.Address, block uint64) error
	// CloseBooks moves the mark from from to to and, when drift is not
	// nil, writes the wallet.drift event with it, in one transaction;
	// false when the mark was no longer at from.
	CloseBooks(ctx context.Context, chainID uint64, wallet common.Address, from, to uint64, drift any) (bool, error)
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
	Every time.Duration
	Books Books
	Node  WatchChain
	Marks Marks
	// Settled returns the last block whose receipts this engine has
	// recorded for a wallet (its sender's scan), or 0 when this instance
	// does not send for it now (another holds its lease, or it is
	// starting). A block the sender has not scanned yet would show its
	// payouts as drift.
	Settled func(wallet common.Address) uint64
	Metrics *Metrics // NewMetrics, shared by the chains' watchers
	Logger  *slog.Logger
}

// Watcher reconciles a chain's hot wallets, pass after pass, from where
// each wallet's books were last closed (Marks) up to the blocks both
// confirmed and settled by its sender; the books first open where the
// sender first took over. A window that does not match closes with a
// wallet.drift event.
type Watcher struct {
	cfg     WatchConfig
	log     *slog.Logger
	metrics *Metrics

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
	if cfg.Books == nil || cfg.Node == nil || cfg.Marks == nil || cfg.Settled == nil || cfg.Metrics == nil || cfg.Every <= 0 {
		return nil, fmt.Errorf("reconcile: watcher of %s: Books, Node, Marks, Settled, Metrics and a positive Every are required", cfg.Chain)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Watcher{cfg: cfg, log: cfg.Logger.With("component", "reconcile", "chain", cfg.Chain), metrics: cfg.Metrics,
		done: make(chan struct{})}, nil
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
	node := &passChain{WatchChain: w.cfg.Node, blocks: map[uint64][]*evm.Receipt{}}
	for _, wallet := range w.cfg.Wallets {
		w.passWallet(ctx, node, wallet, confirmed)
	}
}

// passChain reads each block's receipts once in a pass, for all the
// chain's wallets (a node decodes a busy block's receipts in tens of
// milliseconds; the RPC client's own cache keeps fewer blocks than a pass
// may read).
type passChain struct {
	WatchChain
	blocks map[uint64][]*evm.Receipt
}

func (p *passChain) BlockReceipts(ctx context.Context, n uint64) ([]*evm.Receipt, error) {
	if rs, ok := p.blocks[n]; ok {
		return rs, nil
	}
	rs, err := p.WatchChain.BlockReceipts(ctx, n)
	if err == nil {
		p.blocks[n] = rs
	}
	return rs, err
}

// maxWindowsPerPass bounds the windows one pass reconciles for a wallet
// that fell behind (an archive node keeps every block's state).
const maxWindowsPerPass = 10

// passWallet reconciles a wallet from its mark up to the blocks confirmed
// and settled by its sender, maxWindow blocks at a time.
func (w *Watcher) passWallet(ctx context.Context, node Chain, wallet common.Address, confirmed uint64) {
	hex := wallet.Hex()
	settled := w.cfg.Settled(wallet)
	if settled == 0 {
		return // not sending for it here now
	}
	from, open, err := w.cfg.Marks.BooksClosedAt(ctx, w.cfg.ChainID, wallet)
	if err != nil {
		w.log.Warn("reconciliation: cannot read where the books were closed", "wallet", hex, "err", err)
		return
	}
	if !open {
		// The books open where this engine's sender first took over: what
		// came before (other transactions from the wallet, such as a
		// sandbox funding its extra wallets) is for sluice reconcile.
		if err := w.cfg.Marks.OpenBooks(ctx, w.cfg.ChainID, wallet, settled); err != nil {
			w.log.Warn("reconciliation: cannot open the books", "wallet", hex, "err", err)
		}
		return
	}
	to := min(confirmed, settled)
	for range maxWindowsPerPass {
		if from >= to {
			return
		}
		end := min(to, from+maxWindow)
		r, err := Run(ctx, w.cfg.Books, node, Request{Chain: w.cfg.Chain, ChainID: w.cfg.ChainID, Wallet: wallet, Assets: w.cfg.Assets, From: from, To: end})
		if err != nil && prunedState(err) && to-from > maxWindow {
			// The node no longer keeps the state the window opens with:
			// go on from the oldest block it surely keeps.
			skipTo := to - maxWindow
			if moved, err := w.cfg.Marks.CloseBooks(ctx, w.cfg.ChainID, wallet, from, skipTo, nil); err != nil || !moved {
				return
			}
			w.metrics.skipped.WithLabelValues(w.cfg.Chain, hex).Add(float64(skipTo - from))
			w.log.Warn("reconciliation: blocks skipped, older than the node keeps state for (sluice reconcile with an archive node covers them)",
				"wallet", hex, "from_block", from+1, "to_block", skipTo)
			from = skipTo
			continue
		}
		if err == nil && !r.Recorded() {
			err = fmt.Errorf("%d payouts mined in these blocks are not recorded yet, e.g. %s", len(r.Unrecorded), r.Unrecorded[0])
		}
		if err != nil {
			w.metrics.runs.WithLabelValues(w.cfg.Chain, hex, "error").Inc()
			w.log.Warn("reconciliation failed; trying again next pass", "wallet", hex, "from_block", from+1, "to_block", end, "err", err)
			return
		}
		var drift map[string]any
		var event any // stays a nil interface when balanced: no event
		if !r.Balanced() {
			drift = driftData(r)
			event = drift
		}
		moved, err := w.cfg.Marks.CloseBooks(ctx, w.cfg.ChainID, wallet, from, end, event)
		if err != nil {
			w.metrics.runs.WithLabelValues(w.cfg.Chain, hex, "error").Inc()
			w.log.Warn("reconciliation: cannot close the books", "wallet", hex, "err", err)
			return
		}
		if !moved {
			return // another instance reconciled these blocks meanwhile
		}
		w.record(r, drift)
		from = end
	}
}

// record exports a closed window's outcome and logs a drift.
func (w *Watcher) record(r *Report, drift map[string]any) {
	hex := r.Wallet.Hex()
	w.metrics.lastBlock.WithLabelValues(w.cfg.Chain, hex).Set(float64(r.ToBlock))
	for _, l := range r.Assets {
		v, _ := strconv.ParseFloat(payout.FormatDecimal(l.Unexplained, l.Decimals), 64)
		w.metrics.unexplained.WithLabelValues(w.cfg.Chain, hex, l.Asset).Set(v)
	}
	if drift == nil {
		w.metrics.runs.WithLabelValues(w.cfg.Chain, hex, "balanced").Inc()
		return
	}
	w.metrics.runs.WithLabelValues(w.cfg.Chain, hex, "drift").Inc()
	w.log.Error("the books do not match the chain", "wallet", hex, "from_block", r.FromBlock+1, "to_block", r.ToBlock, "detail", drift["detail"])
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
