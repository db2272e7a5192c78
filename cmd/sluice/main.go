// Command sluice is the payout engine's single binary: the sandbox, the dev
// chain, the server and the API's command-line client. It parses flags,
// wires the parts together and exits; the parts live in internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `sluice: a payout engine for EVM chains

Usage:
  sluice sandbox  [--data-dir DIR] [--http ADDR] [--rpc ADDR] [--block-time D]
                  start a dev chain with a funded hot wallet and the engine on it
  sluice devchain [--data-dir DIR] [--rpc ADDR] [--block-time D]
                  run only the dev chain; writes DIR/sluice.yaml for 'sluice serve'
  sluice serve    --config FILE [--http ADDR] [--data-dir DIR]
                  run the engine against the chains and database of a config file
  sluice payout   create|get|list|cancel ...
                  create and inspect payouts through the API ($SLUICE_API_URL, $SLUICE_API_KEY)
  sluice batch    submit FILE.csv|get|statement ...
                  pay many recipients from one CSV, follow it live, and get its statement
  sluice events   list|get|tail ...
                  what happened, newest first, or followed live as it happens
  sluice rpc-proxy --config FILE [--http ADDR]
                  serve only the failover JSON-RPC endpoint POST /rpc/{chain}
  sluice tx       export|rebroadcast|trace ...
                  the signed transactions of a payout: print, send again, ask every upstream
  sluice tx       export-unsigned|submit-signed|void-unsigned ...
  sluice sign     --offline --keystore FILE --in PLAN --out SIGNED
                  when a wallet's signer is down: export its queued payouts unsigned (nonces reserved),
                  sign them on a machine with no network, submit the signed file
  sluice wallet   rotate --chain C --from OLD --to NEW | rotation ID | rotations
                  retire a hot wallet: its queue moves to NEW, its flights finish, its funds are swept
  sluice doctor   [--config FILE] [--json]
                  check upstreams, TLS, database, signers, balances, stuck payouts (exit 0/1/2)
  sluice reconcile --config FILE [--chain C] [--wallet W] [--from-block N] [--to-block N] [--json]
                  do the books match the chain: each hot wallet's balances against its payouts, fees
                  and transfers in, over a range of blocks (exit 0 match, 1 drift)
  sluice apikey   create|list|revoke|hash ...
                  make, list and revoke API keys through the API; hash one for the config
  sluice webhook  create|list|get|update|delete|rotate-secret|deliveries|attempts|redeliver ...
                  endpoints that receive signed events, and their delivery log
  sluice pause    [--chain C] [--asset A] [--wallet W] --reason TEXT | list
  sluice resume   ID
                  emergency stop of payments (all, a chain, an asset or a hot wallet), and its end
  sluice policy   check|apply|get|test FILE ...
                  the payout policy: type-check, activate, show, or try a payout against it locally
  sluice lists    import|add|list ...
                  deny and allow lists of destinations; import OFAC's SDN XML or a plain list
  sluice audit    verify|export [--config FILE] [--since TIME]
                  check the audit log's hash chain (names the first changed entry; exit 1), or export it as JSON lines
  sluice key      new|import|export|list [--dir DIR] ...
                  keystore v3 files (geth's format); passphrases from the environment, keys from stdin
  sluice mpc      keygen --out DIR [--parties 3] [--threshold 2]
                  a threshold (2-of-3) key: encrypted share files and the group's address
  sluice signer serve --keystore FILE --tls-cert FILE --tls-key FILE --limits FILE [--limits-state FILE|none] [--listen ADDR] [--client-ca FILE]
                  a remote signer for the engine: holds a keystore, checks every transaction against its own limits
  sluice version

Run 'sluice COMMAND --help' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a command and turns its error into an exit code: 2 for
// usage errors, 1 for others.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "sandbox":
		err = runSandbox(ctx, args[1:], stdout, stderr)
	case "devchain":
		err = runDevchain(ctx, args[1:], stdout, stderr)
	case "serve":
		err = runServe(ctx, args[1:], stdout, stderr)
	case "payout":
		err = runPayout(ctx, args[1:], stdout, stderr)
	case "tx":
		err = runTx(ctx, args[1:], stdout, stderr)
	case "events":
		err = runEvents(ctx, args[1:], stdout, stderr)
	case "batch":
		err = runBatch(ctx, args[1:], stdout, stderr)
	case "rpc-proxy":
		err = runRPCProxy(ctx, args[1:], stdout, stderr)
	case "apikey":
		err = runAPIKey(ctx, args[1:], stdin, stdout, stderr)
	case "webhook":
		err = runWebhook(ctx, args[1:], stdout, stderr)
	case "pause":
		err = runPause(ctx, args[1:], stdout, stderr)
	case "resume":
		err = runResume(ctx, args[1:], stdout, stderr)
	case "audit":
		err = runAudit(ctx, args[1:], stdout, stderr)
	case "policy":
		err = runPolicy(ctx, args[1:], stdout, stderr)
	case "lists":
		err = runLists(ctx, args[1:], stdout, stderr)
	case "doctor":
		return runDoctor(ctx, args[1:], stdout, stderr)
	case "reconcile":
		return runReconcile(ctx, args[1:], stdout, stderr)
	case "signer":
		err = runSigner(ctx, args[1:], stdout, stderr)
	case "key":
		err = runKey(args[1:], stdin, stdout, stderr)
	case "mpc":
		err = runMPC(ctx, args[1:], stdout, stderr)
	case "sign":
		err = runSign(ctx, args[1:], stdout, stderr)
	case "wallet":
		err = runWallet(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "sluice", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "sluice:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "sluice:", err)
		return 1
	}
}
