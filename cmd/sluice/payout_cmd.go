package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/payout"
)

// errUsage marks errors in how a command was called; main exits 2 on them.
var errUsage = errors.New("usage")

const payoutUsage = `Usage:
  sluice payout create --chain NAME --asset SYMBOL --to ADDRESS --amount AMOUNT
                       [--priority low|standard|high] [--external-id ID] [--idempotency-key KEY]
                       [--metadata K=V]... [--base-units]
  sluice payout get ID
  sluice payout list [--status STATUS] [--external-id ID] [--batch ID] [--limit N] [--starting-after ID]
  sluice payout cancel ID
  sluice payout speed-up ID --fee-cap AMOUNT [--base-units]
  sluice payout approve ID [--reason TEXT]
  sluice payout reject ID --reason TEXT

cancel stops a queued payout at once. For a payout already broadcast it asks
Sluice to race a zero-value self-transfer for the payout's nonce: the payout
ends cancelled if that is mined, or completed if the payout's own
transaction wins; "get" shows which.

speed-up sets the most the payout's transaction may cost (gas limit × max
fee), in the chain's coin (0.01) or, with --base-units, in wei. A payout
stuck at its fee cap is replaced at once with higher fees.

approve and reject decide a payout the policy holds (pending_approval), with
an API key that has the approver scope and a name. The key that created a
payout cannot approve it; when approvals reach the rule's quorum it is paid.
A rejection ends it (rejected). Both are written to the audit log.

AMOUNT is in the asset's units (1.5 SUSD), converted exactly with the asset's
decimals from the server; with --base-units it is in base units (wei).

Every subcommand takes:
  --api-url URL   the API (default $SLUICE_API_URL, else http://127.0.0.1:8080)
  --api-key KEY   the API key (default $SLUICE_API_KEY; prefer the variable:
                  command lines are visible to other users)
  --json          print JSON instead of text
`

// runPayout runs `sluice payout create|get|list|cancel`.
func runPayout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: sluice payout needs a subcommand: create, get, list, cancel, speed-up, approve or reject\n\n%s", errUsage, payoutUsage)
	}
	switch args[0] {
	case "create":
		return payoutCreate(ctx, args[1:], stdout, stderr)
	case "get":
		return payoutGet(ctx, args[1:], stdout, stderr)
	case "list":
		return payoutList(ctx, args[1:], stdout, stderr)
	case "cancel":
		return payoutCancel(ctx, args[1:], stdout, stderr)
	case "speed-up":
		return payoutSpeedUp(ctx, args[1:], stdout, stderr)
	case "approve":
		return payoutApprove(ctx, args[1:], stdout, stderr)
	case "reject":
		return payoutReject(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, payoutUsage)
		return err
	default:
		return fmt.Errorf("%w: unknown subcommand %q of sluice payout\n\n%s", errUsage, args[0], payoutUsage)
	}
}

// apiFlags are the flags every payout subcommand takes.
type apiFlags struct {
	url  string
	key  string
	json bool
}

func newFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *apiFlags) {
	return apiFlagSet("payout "+name, payoutUsage, stderr)
}

// apiFlagSet is the flag set of `sluice CMD`, a client of the API: it
// takes --api-url, --api-key and --json, and prints usage on -h.
func apiFlagSet(cmd, usage string, stderr io.Writer) (*flag.FlagSet, *apiFlags) {
	fs := flag.NewFlagSet("sluice "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	f := &apiFlags{}
	defURL := os.Getenv("SLUICE_API_URL")
	if defURL == "" {
		defURL = "http://127.0.0.1:8080"
	}
	fs.StringVar(&f.url, "api-url", defURL, "the API's base URL")
	fs.StringVar(&f.key, "api-key", "", "the API key (default $SLUICE_API_KEY)")
	fs.BoolVar(&f.json, "json", false, "print JSON")
	return fs, f
}

// client builds the API client once the flags are parsed.
func (f *apiFlags) client() (*client.Client, error) {
	if f.key == "" {
		f.key = os.Getenv("SLUICE_API_KEY")
	}
	if f.key == "" {
		return nil, fmt.Errorf("%w: no API key: set $SLUICE_API_KEY (or pass --api-key)", errUsage)
	}
	if !strings.HasPrefix(f.url, "http://") && !strings.HasPrefix(f.url, "https://") {
		return nil, fmt.Errorf("%w: --api-url %q must start with http:// or https://", errUsage, f.url)
	}
	return client.New(f.url, f.key), nil
}

// parseArgs parses flags that may come before or after the positional
// arguments (`get ID --json` as well as `get --json ID`).
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseFlags parses args and checks the number of positional arguments.
// A help request returns flag.ErrHelp (usage was printed).
func parseFlags(fs *flag.FlagSet, args []string, wantArgs int, what string) ([]string, error) {
	pos, err := parseArgs(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
	case len(pos) != wantArgs && wantArgs == 0:
		return nil, fmt.Errorf("%w: %s takes no arguments, got %q", errUsage, fs.Name(), pos)
	case len(pos) != wantArgs:
		return nil, fmt.Errorf("%w: %s needs %s", errUsage, fs.Name(), what)
	}
	return pos, nil
}

// helpOr turns a help request into success.
func helpOr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// createFlags are the flags of `sluice payout create`.
type createFlags struct {
	chain, asset, to, amount string
	externalID, idemKey      string
	priority                 string
	baseUnits                bool
	metadata                 map[string]string
}

func payoutCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := newFlagSet("create", stderr)
	cf := registerCreateFlags(fs)
	if _, err := parseFlags(fs, args, 0, ""); err != nil {
		return helpOr(err)
	}
	if err := cf.check(); err != nil {
		return err
	}
	if _, err := payout.ParsePriority(cf.priority); err != nil {
		return fmt.Errorf("%w: --priority: %v", errUsage, err)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	chains, err := c.ListChains(ctx)
	if err != nil {
		return fmt.Errorf("read the server's chains: %w", err)
	}
	ch, asset, err := findAsset(chains, cf.chain, cf.asset)
	if err != nil {
		return err
	}
	amount, err := convertAmount(cf.amount, asset, cf.baseUnits)
	if err != nil {
		return err
	}
	if cf.idemKey == "" {
		cf.idemKey = client.NewIdempotencyKey()
	}
	p, err := c.CreatePayout(ctx, client.CreatePayoutParams{Chain: ch.Name, Asset: asset.Symbol, To: cf.to,
		Amount: amount, ExternalID: cf.externalID, Metadata: cf.metadata, Priority: cf.priority}, cf.idemKey)
	if err != nil {
		return createError(err, cf.idemKey)
	}
	return printPayout(stdout, af.json, p, chains)
}

func registerCreateFlags(fs *flag.FlagSet) *createFlags {
	cf := &createFlags{}
	fs.StringVar(&cf.chain, "chain", "", "the chain's name, e.g. sandbox (required)")
	fs.StringVar(&cf.asset, "asset", "", "the asset's symbol, e.g. SUSD (required)")
	fs.StringVar(&cf.to, "to", "", "the recipient's address (required)")
	fs.StringVar(&cf.amount, "amount", "", "the amount in the asset's units, e.g. 1.5 (required)")
	fs.StringVar(&cf.externalID, "external-id", "", "your permanent business key for this payout")
	fs.StringVar(&cf.priority, "priority", "", "low, standard (default) or high: what the payout bids for gas")
	fs.StringVar(&cf.idemKey, "idempotency-key", "", "makes the command safe to repeat (default: random)")
	fs.BoolVar(&cf.baseUnits, "base-units", false, "--amount is in base units (wei, token units)")
	fs.Func("metadata", "KEY=VALUE to attach (repeatable)", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return fmt.Errorf("metadata %q must be KEY=VALUE", s)
		}
		if cf.metadata == nil {
			cf.metadata = map[string]string{}
		}
		cf.metadata[k] = v
		return nil
	})
	return cf
}

// check names every required flag that is missing.
func (cf *createFlags) check() error {
	var missing []string
	for _, f := range []struct{ name, value string }{{"--chain", cf.chain}, {"--asset", cf.asset}, {"--to", cf.to}, {"--amount", cf.amount}} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: sluice payout create needs %s", errUsage, strings.Join(missing, ", "))
	}
	return nil
}

// createError adds the idempotency key to a failure whose outcome may be
// unknown, so that the user can retry without paying twice.
func createError(err error, key string) error {
	var apiErr *client.Error
	if errors.As(err, &apiErr) && apiErr.Status < 500 {
		return err
	}
	return fmt.Errorf("%w\nthe payout may or may not have been created: repeat the command with --idempotency-key %s to find out without paying twice", err, key)
}

// findAsset finds a chain and an asset on it, with errors naming the value.
func findAsset(chains []client.Chain, chain, symbol string) (client.Chain, client.Asset, error) {
	var names []string
	for _, ch := range chains {
		if ch.Name != chain {
			names = append(names, ch.Name)
			continue
		}
		if a, ok := ch.Asset(symbol); ok {
			return ch, a, nil
		}
		var symbols []string
		for _, a := range ch.Assets {
			symbols = append(symbols, a.Symbol)
		}
		return ch, client.Asset{}, fmt.Errorf("asset %q is not configured on chain %q (known: %s)", symbol, chain, strings.Join(symbols, ", "))
	}
	sort.Strings(names)
	return client.Chain{}, client.Asset{}, fmt.Errorf("chain %q is not configured on the server (known: %s)", chain, strings.Join(names, ", "))
}

// convertAmount turns the --amount value into base units, exactly.
func convertAmount(value string, asset client.Asset, baseUnits bool) (*big.Int, error) {
	if baseUnits {
		v, err := payout.ParseAmount(value)
		if err != nil {
			return nil, amountError(value, err)
		}
		return v, nil
	}
	if _, frac, ok := strings.Cut(value, "."); ok && len(frac) > int(asset.Decimals) {
		return nil, fmt.Errorf("amount %q: has %d decimal places; %s has %d", value, len(frac), asset.Symbol, asset.Decimals)
	}
	v, err := payout.ParseDecimal(value, asset.Decimals)
	if err != nil {
		return nil, amountError(value, err)
	}
	return v, nil
}

// amountError words a parse error as `amount "VALUE": reason`.
func amountError(value string, err error) error {
	msg := err.Error()
	var fe *payout.FieldError
	if errors.As(err, &fe) {
		msg = fe.Message
	}
	msg = strings.TrimPrefix(msg, fmt.Sprintf("amount %q ", value))
	msg = strings.TrimPrefix(msg, "amount ")
	return fmt.Errorf("amount %q: %s", value, msg)
}

func payoutGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return payoutByID(ctx, "get", args, stdout, stderr, (*client.Client).GetPayout)
}

func payoutCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return payoutByID(ctx, "cancel", args, stdout, stderr, (*client.Client).CancelPayout)
}

// payoutSpeedUp runs `sluice payout speed-up ID --fee-cap AMOUNT`.
func payoutSpeedUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := newFlagSet("speed-up", stderr)
	feeCap := fs.String("fee-cap", "", "the most the payout's transaction may cost, in the chain's coin, e.g. 0.01 (required)")
	baseUnits := fs.Bool("base-units", false, "--fee-cap is in wei")
	pos, err := parseFlags(fs, args, 1, "one payout id")
	if err != nil {
		return helpOr(err)
	}
	if *feeCap == "" {
		return fmt.Errorf("%w: sluice payout speed-up needs --fee-cap", errUsage)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	p, err := c.GetPayout(ctx, pos[0])
	if err != nil {
		return err
	}
	chains, err := c.ListChains(ctx)
	if err != nil {
		return fmt.Errorf("read the server's chains: %w", err)
	}
	native, ok := nativeAsset(chains, p.Chain)
	if !ok && !*baseUnits {
		return fmt.Errorf("chain %q has no native coin configured; give --fee-cap in wei with --base-units", p.Chain)
	}
	wei, err := convertAmount(*feeCap, native, *baseUnits)
	if err != nil {
		return fmt.Errorf("fee cap: %w", err)
	}
	if p, err = c.SpeedUp(ctx, p.ID, wei); err != nil {
		return err
	}
	return printPayout(stdout, af.json, p, chains)
}

// nativeAsset finds the native coin of a chain (the asset without address).
func nativeAsset(chains []client.Chain, chain string) (client.Asset, bool) {
	for _, ch := range chains {
		for _, a := range ch.Assets {
			if ch.Name == chain && a.Address == "" {
				return a, true
			}
		}
	}
	return client.Asset{}, false
}

// payoutByID runs a subcommand that takes one payout id and prints it.
func payoutByID(ctx context.Context, name string, args []string, stdout, stderr io.Writer,
	call func(*client.Client, context.Context, string) (*client.Payout, error)) error {
	fs, af := newFlagSet(name, stderr)
	pos, err := parseFlags(fs, args, 1, "one payout id")
	if err != nil {
		return helpOr(err)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	p, err := call(c, ctx, pos[0])
	if err != nil {
		return err
	}
	return printPayout(stdout, af.json, p, chainsForDisplay(ctx, c, af.json))
}

func payoutList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := newFlagSet("list", stderr)
	var lp client.ListPayoutsParams
	fs.Func("status", "only payouts in this status", func(s string) error { lp.Status = client.Status(s); return nil })
	fs.StringVar(&lp.ExternalID, "external-id", "", "only the payout with this external id")
	fs.StringVar(&lp.BatchID, "batch", "", "only the payouts of this batch")
	fs.IntVar(&lp.Limit, "limit", 10, "how many payouts, 1 to 100")
	fs.StringVar(&lp.StartingAfter, "starting-after", "", "list payouts older than this payout id")
	if _, err := parseFlags(fs, args, 0, ""); err != nil {
		return helpOr(err)
	}
	if lp.Limit < 1 || lp.Limit > 100 {
		return fmt.Errorf("%w: --limit %d must be from 1 to 100", errUsage, lp.Limit)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	page, err := c.ListPayouts(ctx, lp)
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, page)
	}
	return printTable(stdout, page, chainsForDisplay(ctx, c, false))
}

// chainsForDisplay reads the chains to show human amounts; without them
// amounts are shown in base units only.
func chainsForDisplay(ctx context.Context, c *client.Client, jsonOut bool) []client.Chain {
	if jsonOut {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	chains, _ := c.ListChains(ctx)
	return chains
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printPayout writes one payout as JSON or as aligned key: value lines.
func printPayout(w io.Writer, jsonOut bool, p *client.Payout, chains []client.Chain) error {
	if jsonOut {
		return writeJSONOut(w, p)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	line("id", p.ID)
	line("status", string(p.Status))
	if p.StatusReason != "" {
		line("reason", p.StatusReason+": "+p.StatusDetail)
	}
	if p.CancelRequested {
		line("cancel", "requested: a zero-value self-transfer races the payout for its nonce")
	}
	line("chain", fmt.Sprintf("%s (chain id %d)", p.Chain, p.ChainID))
	line("to", p.To)
	if human, ok := humanAmount(p.Amount, p.Chain, p.Asset, chains); ok {
		line("amount", fmt.Sprintf("%s (%s base units)", human, p.Amount))
	} else {
		line("amount", fmt.Sprintf("%s base units of %s", p.Amount, p.Asset))
	}
	line("external_id", orDash(p.ExternalID))
	line("from", p.From)
	if p.Priority != "" {
		line("priority", p.Priority)
	}
	if p.FeeCap != nil {
		line("fee_cap", feeText(p.FeeCap, p.Chain, chains))
	}
	line("tx_hash", orDash(p.TxHash))
	if p.BlockNumber != 0 {
		line("block", fmt.Sprint(p.BlockNumber))
	}
	if p.Fee != nil {
		line("fee", feeText(p.Fee, p.Chain, chains))
	}
	if p.FailureCode != "" {
		line("failure", p.FailureCode+": "+p.FailureMessage)
	}
	for _, k := range sortedKeys(p.Metadata) {
		line("metadata."+k, p.Metadata[k])
	}
	line("created_at", p.CreatedAt.Format(time.RFC3339))
	line("updated_at", p.UpdatedAt.Format(time.RFC3339))
	return tw.Flush()
}

// printTable writes a page of payouts as an aligned table.
func printTable(w io.Writer, page *client.PayoutList, chains []client.Chain) error {
	if len(page.Data) == 0 {
		_, err := fmt.Fprintln(w, "no payouts")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tCHAIN\tAMOUNT\tTO\tEXTERNAL ID\tCREATED")
	for _, p := range page.Data {
		amount, _ := humanAmount(p.Amount, p.Chain, p.Asset, chains)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Status, p.Chain,
			amount, p.To, orDash(p.ExternalID), p.CreatedAt.Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.HasMore {
		_, err := fmt.Fprintf(w, "more: sluice payout list --starting-after %s\n", page.Data[len(page.Data)-1].ID)
		return err
	}
	return nil
}

// humanAmount shows base units in the asset's units when its decimals are
// known (1500000 SUSD base units is "1.5 SUSD"), else as base units.
func humanAmount(v *big.Int, chain, symbol string, chains []client.Chain) (string, bool) {
	for _, ch := range chains {
		if a, ok := ch.Asset(symbol); ok && ch.Name == chain {
			return payout.FormatDecimal(v, a.Decimals) + " " + symbol, true
		}
	}
	return v.String() + " base units of " + symbol, false
}

// feeText shows a fee in wei and, when the native coin is known, in it.
func feeText(fee *big.Int, chain string, chains []client.Chain) string {
	if a, ok := nativeAsset(chains, chain); ok {
		return fmt.Sprintf("%s wei (%s %s)", fee, payout.FormatDecimal(fee, a.Decimals), a.Symbol)
	}
	return fee.String() + " wei"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
