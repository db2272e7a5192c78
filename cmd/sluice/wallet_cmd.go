package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/client"
)

const walletUsage = `Usage:
  sluice wallet rotate --chain C --from OLD --to NEW [--no-wait] [--timeout 30m]
                       retire OLD in favour of NEW (both hot wallets of C in the engine's config):
                       OLD gets no new payouts and hands its queued ones to NEW, finishes what it
                       has in flight, then sweeps its tokens and coin to NEW. Follows it until done.
  sluice wallet rotation <rotation-id>   show a rotation
  sluice wallet rotations                list every rotation

Flags common to all: --api-url (default $SLUICE_API_URL), --api-key (default $SLUICE_API_KEY), --json.
`

// rotationPoll is how often `sluice wallet rotate` reads the rotation.
var rotationPoll = 500 * time.Millisecond

// runWallet dispatches `sluice wallet`.
func runWallet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: sluice wallet needs a subcommand: rotate, rotation or rotations\n\n%s", errUsage, walletUsage)
	}
	switch args[0] {
	case "rotate":
		return walletRotate(ctx, args[1:], stdout, stderr)
	case "rotation":
		fs, f := apiFlagSet("wallet rotation", walletUsage, stderr)
		pos, err := parseFlags(fs, args[1:], 1, "a rotation id")
		if err != nil {
			return err
		}
		c, err := f.client()
		if err != nil {
			return err
		}
		rot, err := c.GetWalletRotation(ctx, pos[0])
		if err != nil {
			return err
		}
		return printRotation(stdout, rot, f.json)
	case "rotations":
		fs, f := apiFlagSet("wallet rotations", walletUsage, stderr)
		if _, err := parseFlags(fs, args[1:], 0, ""); err != nil {
			return err
		}
		c, err := f.client()
		if err != nil {
			return err
		}
		list, err := c.ListWalletRotations(ctx)
		if err != nil {
			return err
		}
		if f.json {
			return writeJSONOut(stdout, list)
		}
		for i := range list.Data {
			printRotation(stdout, &list.Data[i], false)
		}
		return nil
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, walletUsage)
		return err
	default:
		return fmt.Errorf("%w: unknown subcommand %q of sluice wallet\n\n%s", errUsage, args[0], walletUsage)
	}
}

func printRotation(w io.Writer, rot *client.WalletRotation, asJSON bool) error {
	if asJSON {
		return writeJSONOut(w, rot)
	}
	_, err := fmt.Fprintf(w, "%s\t%s\t%s -> %s\t%s\t%d sweep(s)\t%s\n", rot.ID, rot.Chain, rot.From, rot.To, rot.Status, len(rot.SweepPayoutIDs), rot.Note)
	return err
}

// walletRotate starts a rotation and follows it.
func walletRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := apiFlagSet("wallet rotate", walletUsage, stderr)
	chain := fs.String("chain", "", "the chain of both wallets (required)")
	from := fs.String("from", "", "the hot wallet to retire (required)")
	to := fs.String("to", "", "the hot wallet that takes over (required)")
	noWait := fs.Bool("no-wait", false, "start the rotation and return")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up following after this long (the rotation goes on)")
	if _, err := parseFlags(fs, args, 0, ""); err != nil {
		return err
	}
	for _, fl := range []struct{ name, v string }{{"--from", *from}, {"--to", *to}} {
		if !common.IsHexAddress(fl.v) {
			return fmt.Errorf("%w: wallet rotate: %s %q is not a 0x-prefixed 20-byte hex address", errUsage, fl.name, fl.v)
		}
	}
	if *chain == "" {
		return fmt.Errorf("%w: wallet rotate: --chain is required", errUsage)
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	rot, err := c.CreateWalletRotation(ctx, *chain, *from, *to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "rotation %s: %s -> %s on %s\n", rot.ID, rot.From, rot.To, rot.Chain)
	deadline := time.Now().Add(*timeout)
	for last := ""; !*noWait && rot.Status != client.RotationCompleted; {
		if rot.Status != last {
			fmt.Fprintf(stderr, "rotation %s: %s %s\n", rot.ID, rot.Status, rot.Note)
			last = rot.Status
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rotation %s is still %s after %s; it goes on: follow it with sluice wallet rotation %s", rot.ID, rot.Status, *timeout, rot.ID)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(rotationPoll):
		}
		if rot, err = c.GetWalletRotation(ctx, rot.ID); err != nil {
			return err
		}
	}
	return printRotation(stdout, rot, f.json)
}
