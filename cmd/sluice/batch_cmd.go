package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicepay/sluice/client"
)

const batchUsage = `Usage:
  sluice batch submit FILE.csv [--chain C] [--asset A] [--policy all_or_nothing|accept_valid]
                               [--priority P] [--idempotency-key K] [--no-follow]
  sluice batch get ID
  sluice batch statement ID [--out FILE]
  sluice batch approve ID [--reason TEXT]
  sluice batch reject ID --reason TEXT

submit uploads a CSV (header: to, amount and optionally asset, chain,
external_id, memo; amounts in the asset's units, e.g. 12.5). Every row is
checked before anything is paid; refused rows are listed with their row,
column, value and code. It then follows the batch until every payout ended,
showing progress. The idempotency key defaults to a hash of the file and the
options, so running the same submit again never pays twice.

approve approves, with an approver key, every row of the batch the policy
holds for approval (rows it holds are stored pending_approval); held rows and
rows of another approver group are skipped. reject rejects every row that
waits for approval, held ones too, in one go (--reason is required).

statement prints (or writes to --out) the batch's statement: one line per
row in input order, with tx hash, log index, block, time and fee share, then
the totals.

Every subcommand takes:
  --api-url URL   the API (default $SLUICE_API_URL, else http://127.0.0.1:8080)
  --api-key KEY   the API key (default $SLUICE_API_KEY)
  --json          print JSON
`

// runBatch runs `sluice batch submit|get|statement`.
func runBatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: sluice batch needs a subcommand: submit, get, statement or approve\n\n%s", errUsage, batchUsage)
	}
	switch args[0] {
	case "submit":
		return batchSubmit(ctx, args[1:], stdout, stderr)
	case "get":
		return batchGet(ctx, args[1:], stdout, stderr)
	case "approve":
		return batchApprove(ctx, args[1:], stdout, stderr)
	case "reject":
		return batchReject(ctx, args[1:], stdout, stderr)
	case "statement":
		return batchStatement(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, batchUsage)
		return err
	default:
		return fmt.Errorf("%w: unknown subcommand %q of sluice batch\n\n%s", errUsage, args[0], batchUsage)
	}
}

func batchSubmit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := apiFlagSet("batch submit", batchUsage, stderr)
	var p client.BatchParams
	var key string
	var noFollow bool
	fs.StringVar(&p.Chain, "chain", "", "default chain of rows without one")
	fs.StringVar(&p.Asset, "asset", "", "default asset of rows without one")
	fs.StringVar(&p.Policy, "policy", "", "all_or_nothing (default) or accept_valid")
	fs.StringVar(&p.Priority, "priority", "", "low, standard (default) or high")
	fs.StringVar(&key, "idempotency-key", "", "default: a hash of the file and the options")
	fs.BoolVar(&noFollow, "no-follow", false, "print the batch and return without following it")
	pos, err := parseFlags(fs, args, 1, "a CSV file")
	if err != nil {
		return helpOr(err)
	}
	data, err := os.ReadFile(pos[0])
	if err != nil {
		return fmt.Errorf("read %s: %w", pos[0], err)
	}
	if key == "" {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%x|%s|%s|%s|%s", sha256.Sum256(data), p.Chain, p.Asset, p.Policy, p.Priority)))
		key = fmt.Sprintf("batch-%x", sum[:16])
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "uploading %s (%s) ...\n", pos[0], byteSize(len(data)))
	start := time.Now()
	b, err := c.CreateBatchCSV(ctx, p, data, key)
	if err != nil {
		return batchRefusal(err, pos[0], stderr)
	}
	fmt.Fprintf(stderr, "accepted: batch %s, %d payouts (%d rows refused) in %s\n", b.ID, total(b.Counts), b.InvalidRows, time.Since(start).Round(time.Millisecond))
	for _, e := range b.Errors {
		fmt.Fprintf(stderr, "  skipped row %d, %s %q: %s: %s\n", e.Row, e.Column, e.Value, e.Code, e.Message)
	}
	if !noFollow {
		if b, err = followBatch(ctx, c, b, stderr); err != nil {
			return err
		}
	}
	return printBatch(stdout, af.json, b)
}

// batchRefusal prints every refused row of a batch the server refused.
func batchRefusal(err error, file string, stderr io.Writer) error {
	var e *client.Error
	if !errors.As(err, &e) || len(e.Errors) == 0 {
		return err
	}
	fmt.Fprintf(stderr, "%s was refused (%s); nothing was paid:\n", file, e.Code)
	for _, f := range e.Errors {
		where := fmt.Sprintf("row %d, column %s", f.Row, f.Column)
		if f.Row == 0 {
			where = f.Pointer
		}
		fmt.Fprintf(stderr, "  %s, value %q: %s: %s\n", where, f.Value, f.Code, f.Detail)
	}
	return fmt.Errorf("%s: %s", file, e.Detail)
}

// followBatch polls the batch until it ends, drawing a progress bar on
// stderr.
func followBatch(ctx context.Context, c *client.Client, b *client.Batch, stderr io.Writer) (*client.Batch, error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		fmt.Fprintf(stderr, "\r%s", progressLine(b))
		if b.Done() {
			fmt.Fprintln(stderr)
			return b, nil
		}
		if waiting := b.Counts[client.StatusPendingApproval]; waiting > 0 && waiting+endedOf(b) == total(b.Counts) {
			// Nothing moves until approvers act: do not wait for them here.
			fmt.Fprintf(stderr, "\n%d payout(s) wait for approval: sluice batch approve %s\n", waiting, b.ID)
			return b, nil
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(stderr)
			return b, ctx.Err()
		case <-tick.C:
		}
		next, err := c.GetBatch(ctx, b.ID)
		if err != nil {
			fmt.Fprintf(stderr, "\n(%v; retrying)\n", err)
			continue
		}
		b = next
	}
}

func total(counts map[client.Status]int64) int64 {
	var n int64
	for _, v := range counts {
		n += v
	}
	return n
}

// progressLine is e.g. "[#########.........] 4213/10000 completed, 2 failed, 5785 in flight".
func progressLine(b *client.Batch) string {
	n := total(b.Counts)
	ended := endedOf(b)
	const width = 30
	filled := 0
	if n > 0 {
		filled = int(ended * width / n)
	}
	pending := b.Counts[client.StatusPendingApproval]
	line := fmt.Sprintf("[%s%s] %d/%d completed, %d failed, %d in flight, %d queued ",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), b.Counts[client.StatusCompleted], n,
		b.Counts[client.StatusFailed], n-ended-b.Counts[client.StatusQueued]-pending, b.Counts[client.StatusQueued])
	if pending > 0 {
		line += fmt.Sprintf("%d pending approval ", pending)
	}
	return line
}

// endedOf counts the batch's payouts in a final status.
func endedOf(b *client.Batch) int64 {
	return b.Counts[client.StatusCompleted] + b.Counts[client.StatusFailed] + b.Counts[client.StatusCancelled] +
		b.Counts[client.StatusRejected]
}

func batchGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := apiFlagSet("batch get", batchUsage, stderr)
	pos, err := parseFlags(fs, args, 1, "a batch id")
	if err != nil {
		return helpOr(err)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	b, err := c.GetBatch(ctx, pos[0])
	if err != nil {
		return err
	}
	return printBatch(stdout, af.json, b)
}

func printBatch(w io.Writer, asJSON bool, b *client.Batch) error {
	if asJSON {
		return writeJSONOut(w, b)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "batch\t%s\nstatus\t%s\nrows\t%d (%d refused)\n", b.ID, b.Status, b.Rows, b.InvalidRows)
	statuses := make([]string, 0, len(b.Counts))
	for s, n := range b.Counts {
		if n > 0 {
			statuses = append(statuses, fmt.Sprintf("%s %d", s, n))
		}
	}
	sort.Strings(statuses)
	fmt.Fprintf(tw, "payouts\t%s\n", strings.Join(statuses, ", "))
	assets := make([]string, 0, len(b.Totals))
	for a := range b.Totals {
		assets = append(assets, a)
	}
	sort.Strings(assets)
	for _, a := range assets {
		fmt.Fprintf(tw, "total %s\t%s base units\n", a, b.Totals[a])
	}
	fmt.Fprintf(tw, "fees\t%s wei\n", b.Fees)
	return tw.Flush()
}

func batchStatement(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := apiFlagSet("batch statement", batchUsage, stderr)
	var out string
	fs.StringVar(&out, "out", "", "write the statement to this file instead of standard output")
	pos, err := parseFlags(fs, args, 1, "a batch id")
	if err != nil {
		return helpOr(err)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	data, err := c.GetBatchStatement(ctx, pos[0])
	if err != nil {
		return err
	}
	if out == "" {
		_, err = stdout.Write(data)
		return err
	}
	if err := os.WriteFile(out, data, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s (%s)\n", out, byteSize(len(data)))
	return nil
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
