package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/sluicepay/sluice/client"
)

// payoutApprove runs `sluice payout approve ID [--reason TEXT]` with an
// approver key.
func payoutApprove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return payoutDecide(ctx, "approve", args, stdout, stderr)
}

// payoutReject runs `sluice payout reject ID --reason TEXT`.
func payoutReject(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return payoutDecide(ctx, "reject", args, stdout, stderr)
}

func payoutDecide(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs, af := newFlagSet(verb, stderr)
	reason := fs.String("reason", "", "why (required to reject; written to the audit log)")
	pos, err := parseFlags(fs, args, 1, "one payout id")
	if err != nil {
		return helpOr(err)
	}
	if verb == "reject" && *reason == "" {
		return fmt.Errorf("%w: sluice payout reject needs --reason", errUsage)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	call := (*client.Client).ApprovePayout
	if verb == "reject" {
		call = (*client.Client).RejectPayout
	}
	p, err := call(c, ctx, pos[0], *reason)
	if err != nil {
		return err
	}
	if err := printPayout(stdout, af.json, p, chainsForDisplay(ctx, c, af.json)); err != nil || af.json {
		return err
	}
	a, err := c.PayoutApproval(ctx, p.ID)
	if err != nil || a == nil {
		return err
	}
	if a.Kind == "hold" {
		_, err = fmt.Fprintf(stdout, "Approvals:  held until %s\n", a.HoldUntil.UTC().Format("2006-01-02 15:04:05Z"))
		return err
	}
	_, err = fmt.Fprintf(stdout, "Approvals:  %d of %d (group %s), expires %s\n", a.Approved, a.Quorum, a.Group,
		a.ExpiresAt.UTC().Format("2006-01-02 15:04:05Z"))
	return err
}

// batchApprove runs `sluice batch approve ID [--reason TEXT]`: every payout
// of the batch that waits for approval is approved with the calling key.
func batchApprove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := apiFlagSet("batch approve", batchUsage, stderr)
	reason := fs.String("reason", "", "why (written to the audit log)")
	pos, err := parseFlags(fs, args, 1, "a batch id")
	if err != nil {
		return helpOr(err)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	res, err := c.ApproveBatch(ctx, pos[0], *reason)
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, res)
	}
	if _, err := fmt.Fprintf(stdout, "approved %d payout(s): %d now queued, %d skipped, %d expired\n",
		len(res.Approved), len(res.Queued), len(res.Skipped), len(res.Expired)); err != nil {
		return err
	}
	return printBatch(stdout, false, res.Batch)
}

// batchReject runs `sluice batch reject ID --reason TEXT`: every payout of
// the batch that waits for approval is rejected with the calling key.
func batchReject(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := apiFlagSet("batch reject", batchUsage, stderr)
	reason := fs.String("reason", "", "why (required; written to the audit log)")
	pos, err := parseFlags(fs, args, 1, "a batch id")
	if err != nil {
		return helpOr(err)
	}
	if strings.TrimSpace(*reason) == "" {
		return fmt.Errorf("%w: sluice batch reject needs --reason", errUsage)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	res, err := c.RejectBatch(ctx, pos[0], *reason)
	if err != nil {
		switch client.ErrorCode(err) {
		case "not_found", "not_pending_approval":
			return fmt.Errorf("batch %q: %w", pos[0], err)
		case "invalid_request":
			return fmt.Errorf("--reason %q: %w", *reason, err)
		}
		return err
	}
	if af.json {
		return writeJSONOut(stdout, res)
	}
	if _, err := fmt.Fprintf(stdout, "rejected %d payout(s): %d skipped (approved by this key), %d expired\n",
		len(res.Rejected), len(res.Skipped), len(res.Expired)); err != nil {
		return err
	}
	return printBatch(stdout, false, res.Batch)
}
