package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"sort"
	"strconv"
	"text/tabwriter"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/reconcile"
	"github.com/sluicepay/sluice/internal/store"
)

// defaultReconcileBlocks is the range reconciled when --from-block is not
// given: about what a full (not archive) node keeps the state of.
const defaultReconcileBlocks = 127

// runReconcile compares each hot wallet's books with the chain over a
// range of blocks, reading the config's database and upstreams directly.
// Exit 0: the books match; 1: drift, or payouts not yet recorded; 2: usage,
// config or a read failed.
func runReconcile(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", defaultDoctorConfig, "the YAML config file: its database, chains and hot wallets")
	chainName := fs.String("chain", "", "reconcile this chain only (default: every chain)")
	walletFlag := fs.String("wallet", "", "reconcile this wallet only, e.g. one rotated away (default: the chain's hot wallets)")
	var fromBlock, toBlock blockFlag
	fs.Var(&fromBlock, "from-block", fmt.Sprintf("balances after this `block` open the books (default: --to-block less %d)", defaultReconcileBlocks))
	fs.Var(&toBlock, "to-block", "balances after this `block` close them (default: the head less the chain's confirmations)")
	asJSON := fs.Bool("json", false, "print the reports as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sluice reconcile --config FILE [--chain NAME] [--wallet ADDR] [--from-block N] [--to-block N] [--json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "sluice reconcile: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	if *walletFlag != "" && !common.IsHexAddress(*walletFlag) {
		return fail("--wallet %q is not a 0x address of 40 hex digits", *walletFlag)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return fail("%s: %v", *cfgPath, err)
	}
	chains := cfg.Chains
	if *chainName != "" {
		chains = nil
		for _, ch := range cfg.Chains {
			if ch.Name == *chainName {
				chains = append(chains, ch)
			}
		}
		if chains == nil {
			return fail("--chain %q: the config has no such chain", *chainName)
		}
	}
	db, err := store.Open(ctx, cfg.Database, store.Options{NoMigrate: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fail("open the database: %v", err)
	}
	defer func() { _ = db.Close() }()
	var reports []*reconcile.Report
	for _, ch := range chains {
		rs, err := reconcileChain(ctx, db, ch, *walletFlag, fromBlock.value(), toBlock.value(), stderr)
		if err != nil {
			return fail("chain %s: %v", ch.Name, err)
		}
		reports = append(reports, rs...)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reconcileJSON(reports)); err != nil {
			return fail("write: %v", err)
		}
	} else {
		for _, r := range reports {
			writeReconciliation(stdout, r)
		}
	}
	for _, r := range reports {
		if !r.Balanced() || !r.Recorded() {
			return 1
		}
	}
	return 0
}

// blockFlag is a block number flag that may be left unset.
type blockFlag struct {
	n   uint64
	set bool
}

func (b *blockFlag) String() string {
	if b == nil || !b.set {
		return ""
	}
	return strconv.FormatUint(b.n, 10)
}

func (b *blockFlag) Set(v string) error {
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		return fmt.Errorf("%q is not a block number (0 or more)", v)
	}
	b.n, b.set = n, true
	return nil
}

// value is the block, or -1 when the flag was not given.
func (b *blockFlag) value() int64 {
	if !b.set {
		return -1
	}
	return int64(b.n)
}

// reconcileChain reconciles the chain's hot wallets (or the one named).
func reconcileChain(ctx context.Context, db *store.DB, ch config.Chain, wallet string, from, to int64, stderr io.Writer) ([]*reconcile.Report, error) {
	reg := prometheus.NewRegistry()
	pool, err := startPool(ctx, ch, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		return nil, err
	}
	defer pool.Stop()
	client := evm.NewClient(pool, ch.Name, evm.NewMetrics(reg))
	head, err := client.BlockNumber(ctx)
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	req := reconcile.Request{Chain: ch.Name, ChainID: ch.ChainID, Assets: chainAssets(ch)}
	req.From, req.To, err = reconcileRange(head, ch.Confirmations, from, to)
	if err != nil {
		return nil, err
	}
	wallets := make([]common.Address, 0, len(ch.HotWallets))
	for _, w := range ch.HotWallets {
		wallets = append(wallets, common.HexToAddress(w.Address))
	}
	if wallet != "" {
		wallets = []common.Address{common.HexToAddress(wallet)}
	}
	var out []*reconcile.Report
	for _, w := range wallets {
		req.Wallet = w
		req.Progress = func(done, total uint64) {
			fmt.Fprintf(stderr, "\r%s %s: reading receipts %d/%d", ch.Name, w.Hex(), done, total)
			if done == total {
				fmt.Fprintln(stderr)
			}
		}
		r, err := reconcile.Run(ctx, db, client, req)
		if err != nil {
			return nil, fmt.Errorf("wallet %s: %w", w.Hex(), err)
		}
		out = append(out, r)
	}
	return out, nil
}

// reconcileRange resolves the flags (-1: not given) against the head.
func reconcileRange(head, confirmations uint64, from, to int64) (uint64, uint64, error) {
	end := uint64(0)
	if head > confirmations {
		end = head - confirmations
	}
	if to >= 0 {
		if uint64(to) > head {
			return 0, 0, fmt.Errorf("--to-block %d is past the head, block %d", to, head)
		}
		end = uint64(to)
	}
	start := uint64(0)
	if end > defaultReconcileBlocks {
		start = end - defaultReconcileBlocks
	}
	if from >= 0 {
		start = uint64(from)
	}
	if start >= end {
		return 0, 0, fmt.Errorf("--from-block %d must be below --to-block %d", start, end)
	}
	return start, end, nil
}

// chainAssets lists a chain's assets, the native coin first.
func chainAssets(ch config.Chain) []payout.Asset {
	assets := assetsOf(ch)
	out := make([]payout.Asset, 0, len(assets))
	for _, a := range assets {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Native() != out[j].Native() {
			return out[i].Native()
		}
		return out[i].Symbol < out[j].Symbol
	})
	return out
}

// writeReconciliation prints one wallet's books as a table and says what
// does not match.
func writeReconciliation(w io.Writer, r *reconcile.Report) {
	nonces := "no nonce used"
	if r.ToNonce > r.FromNonce {
		nonces = fmt.Sprintf("nonces %d-%d used", r.FromNonce, r.ToNonce-1)
	}
	fmt.Fprintf(w, "%s %s, blocks %d-%d: %s, %d transaction(s) of Sluice's mined\n",
		r.Chain, r.Wallet.Hex(), r.FromBlock+1, r.ToBlock, nonces, r.Transactions)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ASSET\tOPENING\tCLOSING\tPAID (PAYOUTS)\tFEES\tRECEIVED (TRANSFERS)\tUNEXPLAINED\t")
	for _, l := range r.Assets {
		fees, received := "-", "-"
		if l.Fees != nil {
			fees = payout.FormatDecimal(l.Fees, l.Decimals)
		}
		if l.Received != nil {
			received = fmt.Sprintf("%s (%d)", payout.FormatDecimal(l.Received, l.Decimals), l.Transfers)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s (%d)\t%s\t%s\t%s\t\n", l.Asset, payout.FormatDecimal(l.Opening, l.Decimals),
			payout.FormatDecimal(l.Closing, l.Decimals), payout.FormatDecimal(l.Paid, l.Decimals), l.Payouts, fees, received,
			payout.FormatDecimal(l.Unexplained, l.Decimals))
	}
	_ = tw.Flush()
	for _, l := range r.Assets {
		switch {
		case l.Drift && l.Native:
			fmt.Fprintf(w, "  DRIFT: %s %s left the wallet without a payout or a fee of Sluice's\n", payout.FormatDecimal(new(big.Int).Neg(l.Unexplained), l.Decimals), l.Asset)
		case l.Drift && l.Unexplained.Sign() < 0:
			fmt.Fprintf(w, "  DRIFT: %s %s left the wallet without a payout\n", payout.FormatDecimal(new(big.Int).Neg(l.Unexplained), l.Decimals), l.Asset)
		case l.Drift:
			fmt.Fprintf(w, "  DRIFT: the wallet holds %s %s more than its payouts and transfers in explain\n", payout.FormatDecimal(l.Unexplained, l.Decimals), l.Asset)
		case l.Native && l.Unexplained.Sign() > 0:
			fmt.Fprintf(w, "  %s %s came in from outside this wallet's payouts (a top-up, or a sweep from another wallet; a native transfer leaves no log to name it by)\n", payout.FormatDecimal(l.Unexplained, l.Decimals), l.Asset)
		}
	}
	for _, f := range r.Foreign {
		if f.Tx != nil {
			fmt.Fprintf(w, "  DRIFT: nonce %d was used by transaction %s in block %d, which Sluice did not sign: someone else holds this wallet's key\n", f.Nonce, f.Tx.Hex(), f.Block)
		} else {
			fmt.Fprintf(w, "  DRIFT: nonce %d was used by a transaction Sluice did not sign: someone else holds this wallet's key\n", f.Nonce)
		}
	}
	if !r.Recorded() {
		fmt.Fprintf(w, "  NOT YET: %d payout(s) mined in these blocks are not recorded by the engine yet (it is behind, or down), e.g. %s: "+
			"their amounts count as unexplained above; reconcile again once it has caught up\n", len(r.Unrecorded), r.Unrecorded[0])
	}
	if r.Balanced() && r.Recorded() {
		fmt.Fprintln(w, "  The books match the chain.")
	}
	fmt.Fprintln(w)
}

// reconcileJSON is the reports as scripts read them, each saying whether
// it balanced (amounts: decimal strings of base units, see reconcile.Line).
func reconcileJSON(rs []*reconcile.Report) any {
	type report struct {
		*reconcile.Report
		Balanced bool `json:"balanced"`
	}
	out := make([]report, len(rs))
	for i, r := range rs {
		if r.Foreign == nil {
			r.Foreign = []reconcile.Foreign{} // [] rather than null for scripts
		}
		if r.Unrecorded == nil {
			r.Unrecorded = []string{}
		}
		out[i] = report{Report: r, Balanced: r.Balanced() && r.Recorded()}
	}
	return struct {
		Reports []report `json:"reports"`
	}{out}
}
