package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/rpcpool"
)

const txUsage = `Usage:
  sluice tx export <payout-id>                     print the payout's latest signed transaction (0x-hex)
  sluice tx rebroadcast <payout-id> [--to URL ...] send its signed transactions again: through the
                                                   engine to every upstream, and to each --to endpoint
  sluice tx trace <payout-id | tx-hash> (--config FILE | --rpc URL ...)
                                                   ask every upstream about each transaction side by side
  sluice tx export-unsigned --chain C --wallet W --out PLAN.json [--max 100]
                                                   when the wallet's signer is down: plan its queued payouts,
                                                   nonces reserved, unsigned, for sluice sign --offline
  sluice tx submit-signed SIGNED.json              check each signed transaction against its plan, then
                                                   store and broadcast them
  sluice tx void-unsigned <plan-id>                give a plan up (only while the chain used none of its nonces)

Flags common to all: --api-url (default $SLUICE_API_URL), --api-key (default $SLUICE_API_KEY), --json.
`

// runTx dispatches `sluice tx`.
func runTx(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: sluice tx needs a subcommand: export, rebroadcast, trace, export-unsigned, submit-signed or void-unsigned\n\n%s", errUsage, txUsage)
	}
	switch args[0] {
	case "export":
		return txExport(ctx, args[1:], stdout, stderr)
	case "rebroadcast":
		return txRebroadcast(ctx, args[1:], stdout, stderr)
	case "trace":
		return txTrace(ctx, args[1:], stdout, stderr)
	case "export-unsigned":
		return txExportUnsigned(ctx, args[1:], stdout, stderr)
	case "submit-signed":
		return txSubmitSigned(ctx, args[1:], stdout, stderr)
	case "void-unsigned":
		return txVoidUnsigned(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, txUsage)
		return err
	default:
		return fmt.Errorf("%w: unknown subcommand %q of sluice tx\n\n%s", errUsage, args[0], txUsage)
	}
}

// listOf is a repeatable string flag.
type listOf []string

func (l *listOf) String() string     { return strings.Join(*l, ",") }
func (l *listOf) Set(v string) error { *l = append(*l, v); return nil }

func txFlags(name string, stderr io.Writer) (*flag.FlagSet, *apiFlags) {
	fs, f := newFlagSet(name, stderr)
	fs.Usage = func() { fmt.Fprint(stderr, txUsage) }
	return fs, f
}

// txExport prints the latest signed transaction of a payout.
func txExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := txFlags("export", stderr)
	pos, err := parseFlags(fs, args, 1, "a payout id")
	if err != nil {
		return err
	}
	attempts, err := attemptsOf(ctx, f, pos[0])
	if err != nil {
		return err
	}
	latest := attempts[len(attempts)-1]
	if f.json {
		return writeJSONOut(stdout, latest)
	}
	_, err = fmt.Fprintln(stdout, latest.RawTx)
	return err
}

func attemptsOf(ctx context.Context, f *apiFlags, id string) ([]client.Attempt, error) {
	c, err := f.client()
	if err != nil {
		return nil, err
	}
	attempts, err := c.ListAttempts(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(attempts) == 0 {
		return nil, fmt.Errorf("payout %s has no signed transaction yet (it is still queued, or failed before signing)", id)
	}
	return attempts, nil
}

// txRebroadcast re-sends through the engine and to each --to endpoint.
func txRebroadcast(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := txFlags("rebroadcast", stderr)
	var to listOf
	fs.Var(&to, "to", "also send to this JSON-RPC endpoint (repeatable), e.g. a third-party broadcast service")
	pos, err := parseFlags(fs, args, 1, "a payout id")
	if err != nil {
		return err
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	results, err := c.Rebroadcast(ctx, pos[0])
	if err != nil {
		return err
	}
	attempts, err := attemptsOf(ctx, f, pos[0])
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TX HASH\tVIA\tRESULT")
	failed := 0
	for _, r := range results {
		fmt.Fprintf(tw, "%s\tengine upstreams\t%s\n", r.TxHash, orOK(r.Error))
	}
	for _, url := range to {
		for _, a := range attempts {
			err := sendRaw(ctx, url, a.RawTx)
			if err != nil {
				failed++
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.TxHash, rpcpool.RedactURL(url), orOK(errText(err)))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d extra endpoint sends failed", failed)
	}
	return nil
}

func orOK(s string) string {
	if s == "" {
		return "ok"
	}
	return s
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// sendRaw sends one signed transaction to an endpoint; "already known"
// counts as sent.
func sendRaw(ctx context.Context, url, raw string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := rpc.DialContext(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close()
	var hash common.Hash
	err = c.CallContext(ctx, &hash, "eth_sendRawTransaction", raw)
	if err != nil && strings.Contains(strings.ToLower(err.Error()), "already known") {
		return nil
	}
	return err
}

// decodeRaw reads a signed transaction from its 0x-hex form.
func decodeRaw(raw string) (*types.Transaction, error) {
	b, err := hexutil.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("raw transaction: %w", err)
	}
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("raw transaction: %w", err)
	}
	return tx, nil
}

// upstreamsFor lists the endpoints to ask: --rpc URLs, or every upstream
// of the payout's chain in a config file.
func upstreamsFor(cfgPath string, rpcs []string, chainID uint64) ([]string, error) {
	if len(rpcs) > 0 {
		return rpcs, nil
	}
	if cfgPath == "" {
		return nil, fmt.Errorf("%w: trace needs --config FILE (to ask every upstream it names) or --rpc URL", errUsage)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	for _, ch := range cfg.Chains {
		if chainID == 0 || ch.ChainID == chainID {
			var out []string
			for _, u := range ch.Upstreams {
				out = append(out, u.URL)
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("%s has no chain with id %d", cfgPath, chainID)
}
