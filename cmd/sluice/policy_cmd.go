package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/policy"
)

const policyUsage = `Usage:
  sluice policy check FILE
  sluice policy apply FILE
  sluice policy approve VERSION [--reason TEXT]
  sluice policy reject VERSION --reason TEXT
  sluice policy get
  sluice policy versions
  sluice policy test FILE --payout JSON

check parses and type-checks a policy document (YAML) and names every
problem by its rule (exit 1). apply checks it, then stores it through the
API as a new version and makes it active on every instance (admin scope;
audited). When the server requires approvals of policy changes (config
approvals.policy_changes: N), apply stores the version pending instead, and
it becomes active once N approvers other than its proposer run approve
VERSION (keys with the approver scope and a name); reject VERSION discards
it. get prints the active version; versions lists every version ever
stored, newest first, with its status (applied, pending, rejected,
superseded). test decides one payout locally,
with no API, and shows what each rule evaluated to up to the one that
matched. Its --payout is a JSON object (or @FILE holding one):

  {"chain": "sandbox", "asset": "ETH", "decimals": 18, "to": "0x…",
   "amount": "1500000000000000000", "metadata": {"k": "v"},
   "api_key_id": "key_…", "api_key_name": "backoffice",
   "api_key_labels": {"team": "payroll"},
   "destination_age_seconds": 86400, "balance_share": 0.1,
   "lists": [{"name": "ofac", "kind": "deny", "sanctions": true}],
   "velocity": {"destination/24h": {"sum": "5000000000000000000", "count": 3}}}

Facts not given take their defaults: never paid (-1), balance unknown (-1),
on no list, velocity zero.

Flags:
  --api-url URL   the API (default $SLUICE_API_URL, else http://127.0.0.1:8080)
  --api-key KEY   the API key (default $SLUICE_API_KEY; prefer the variable)
  --json          print JSON instead of text
`

// runPolicy runs `sluice policy …`.
func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return fmt.Errorf("%w: sluice policy needs check, apply, approve, reject, get, versions or test", errUsage)
	}
	switch args[0] {
	case "check":
		return policyCheck(args[1:], stdout, stderr)
	case "apply":
		return policyApply(ctx, args[1:], stdout, stderr)
	case "approve", "reject":
		return policyDecide(ctx, args[0], args[1:], stdout, stderr)
	case "get":
		return policyGet(ctx, args[1:], stdout, stderr)
	case "versions":
		return policyVersions(ctx, args[1:], stdout, stderr)
	case "test":
		return policyTest(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, policyUsage)
		return err
	}
	return fmt.Errorf("%w: unknown policy command %q (check, apply, approve, reject, get, versions, test)", errUsage, args[0])
}

// loadPolicy reads and compiles FILE; a policy error lists its problems.
func loadPolicy(path string) ([]byte, *policy.Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	p, err := policy.Parse(b)
	var pe *policy.Error
	if errors.As(err, &pe) {
		var sb strings.Builder
		fmt.Fprintf(&sb, "%s: %d problem(s):", path, len(pe.Issues))
		for _, is := range pe.Issues {
			sb.WriteString("\n  " + is.String())
		}
		return nil, nil, errors.New(sb.String())
	}
	return b, p, err
}

func policyCheck(args []string, stdout, stderr io.Writer) error {
	fs, af := apiFlagSet("policy check", policyUsage, stderr)
	pos, err := parseFlags(fs, args, 1, "a policy FILE")
	if err != nil {
		return helpOr(err)
	}
	_, p, err := loadPolicy(pos[0])
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, map[string]any{"ok": true, "rules": len(p.Doc.Rules), "velocity_windows": p.Windows()})
	}
	_, err = fmt.Fprintf(stdout, "%s: ok, %d rule(s); velocity read: %s\n", pos[0], len(p.Doc.Rules), orNone(p.Windows()))
	return err
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func policyApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := apiFlagSet("policy apply", policyUsage, stderr)
	pos, err := parseFlags(fs, args, 1, "a policy FILE")
	if err != nil {
		return helpOr(err)
	}
	doc, _, err := loadPolicy(pos[0])
	if err != nil {
		return err
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	v, err := c.PutPolicy(ctx, string(doc))
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, v)
	}
	if v.Status == "pending" {
		_, err = fmt.Fprintf(stdout, "Policy version %d waits for %d approval(s) before it is active (sha256 %s):\n  sluice policy approve %d\n",
			v.Version, v.Quorum, v.SHA256, v.Version)
		return err
	}
	_, err = fmt.Fprintf(stdout, "Policy version %d is active (sha256 %s).\n", v.Version, v.SHA256)
	return err
}

// policyDecide runs `sluice policy approve|reject VERSION [--reason TEXT]`
// with an approver key.
func policyDecide(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs, af := apiFlagSet("policy "+verb, policyUsage, stderr)
	reason := fs.String("reason", "", "why (required to reject; written to the audit log)")
	pos, err := parseFlags(fs, args, 1, "a policy VERSION")
	if err != nil {
		return helpOr(err)
	}
	version, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || version < 1 {
		return fmt.Errorf("%w: policy version %q is not a version number (1, 2, 3, …; see sluice policy versions)", errUsage, pos[0])
	}
	if verb == "reject" && strings.TrimSpace(*reason) == "" {
		return fmt.Errorf("%w: sluice policy reject needs --reason", errUsage)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	call := (*client.Client).ApprovePolicy
	if verb == "reject" {
		call = (*client.Client).RejectPolicy
	}
	v, err := call(c, ctx, version, *reason)
	if err != nil {
		switch client.ErrorCode(err) {
		case "not_found", "not_pending_approval", "self_approval", "already_decided":
			return fmt.Errorf("policy version %d: %w", version, err)
		}
		return err
	}
	if af.json {
		return writeJSONOut(stdout, v)
	}
	switch v.Status {
	case "applied":
		_, err = fmt.Fprintf(stdout, "Policy version %d is active (%d of %d approvals).\n", v.Version, approvedCount(v), v.Quorum)
	case "rejected":
		_, err = fmt.Fprintf(stdout, "Policy version %d is rejected: it will not become active.\n", v.Version)
	default:
		_, err = fmt.Fprintf(stdout, "Policy version %d: %d of %d approvals; it is not active yet.\n", v.Version, approvedCount(v), v.Quorum)
	}
	return err
}

func approvedCount(v *client.Policy) int {
	n := 0
	for _, a := range v.Approvals {
		if a.Decision == "approve" {
			n++
		}
	}
	return n
}

func policyGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := apiFlagSet("policy get", policyUsage, stderr)
	if _, err := parseFlags(fs, args, 0, ""); err != nil {
		return helpOr(err)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	v, err := c.GetPolicy(ctx)
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, v)
	}
	_, err = fmt.Fprintf(stdout, "# version %d, applied by %s at %s, sha256 %s\n%s", v.Version, v.CreatedBy,
		v.CreatedAt.Format("2006-01-02 15:04:05Z07:00"), v.SHA256, v.Document)
	return err
}

func policyVersions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := apiFlagSet("policy versions", policyUsage, stderr)
	if _, err := parseFlags(fs, args, 0, ""); err != nil {
		return helpOr(err)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	vs, err := c.ListPolicyVersions(ctx)
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, vs)
	}
	if len(vs.Data) == 0 {
		_, err := fmt.Fprintln(stdout, "No policy was ever applied: every payout is allowed.")
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tACTIVE\tSTATUS\tAPPROVALS\tBY\tAT\tSHA256")
	for _, v := range vs.Data {
		approvals := "-"
		if v.Quorum > 0 {
			approvals = fmt.Sprintf("%d/%d", approvedCount(v), v.Quorum)
		}
		fmt.Fprintf(tw, "%d\t%v\t%s\t%s\t%s\t%s\t%s\n", v.Version, v.Active, v.Status, approvals, v.CreatedBy,
			v.CreatedAt.Format("2006-01-02 15:04:05Z07:00"), v.SHA256[:16])
	}
	return tw.Flush()
}

// testPayout is `policy test --payout`'s JSON.
type testPayout struct {
	Chain        string            `json:"chain"`
	Asset        string            `json:"asset"`
	Decimals     uint8             `json:"decimals"`
	From         string            `json:"from"`
	To           string            `json:"to"`
	Amount       string            `json:"amount"`
	Metadata     map[string]string `json:"metadata"`
	APIKeyID     string            `json:"api_key_id"`
	APIKeyName   string            `json:"api_key_name"`
	APIKeyLabels map[string]string `json:"api_key_labels"`
	Age          *int64            `json:"destination_age_seconds"`
	BalanceShare *float64          `json:"balance_share"`
	Lists        []struct {
		Name      string `json:"name"`
		Kind      string `json:"kind"`
		Sanctions bool   `json:"sanctions"`
	} `json:"lists"`
	Velocity map[string]struct {
		Sum   string `json:"sum"`
		Count int64  `json:"count"`
	} `json:"velocity"`
}

// facts turns the test payout into facts.
func (tp *testPayout) facts() (*policy.Facts, error) {
	amt, ok := new(big.Int).SetString(tp.Amount, 10)
	if !ok || amt.Sign() <= 0 {
		return nil, fmt.Errorf("--payout: amount %q must be base units, a positive whole number", tp.Amount)
	}
	if !common.IsHexAddress(tp.To) {
		return nil, fmt.Errorf("--payout: to %q is not an address", tp.To)
	}
	f := policy.NewFacts(policy.Input{Chain: tp.Chain, Asset: tp.Asset, Decimals: tp.Decimals, Sender: common.HexToAddress(tp.From),
		To: common.HexToAddress(tp.To), Amount: amt, Metadata: tp.Metadata, APIKeyID: tp.APIKeyID, APIKeyName: tp.APIKeyName,
		APIKeyLabels: tp.APIKeyLabels})
	if tp.Age != nil {
		f.DestinationAgeSeconds = *tp.Age
	}
	if tp.BalanceShare != nil {
		f.BalanceShare = *tp.BalanceShare
	}
	for _, l := range tp.Lists {
		if l.Kind != string(payout.ListDeny) && l.Kind != string(payout.ListAllow) {
			return nil, fmt.Errorf("--payout: list %q: kind must be deny or allow", l.Name)
		}
		f.AddList(payout.ListHit{Name: l.Name, Kind: payout.ListKind(l.Kind), Sanctions: l.Sanctions})
	}
	for k, v := range tp.Velocity {
		sum, ok := new(big.Int).SetString(v.Sum, 10)
		if !ok {
			return nil, fmt.Errorf("--payout: velocity %q: sum %q is not base units", k, v.Sum)
		}
		if err := f.SetVelocity(k, sum, v.Count); err != nil {
			return nil, fmt.Errorf("--payout: %w", err)
		}
	}
	return f, nil
}

func policyTest(args []string, stdout, stderr io.Writer) error {
	fs, af := apiFlagSet("policy test", policyUsage, stderr)
	payoutJSON := fs.String("payout", "", "the payout and its facts, as JSON or @FILE (required)")
	pos, err := parseFlags(fs, args, 1, "a policy FILE")
	if err != nil {
		return helpOr(err)
	}
	if *payoutJSON == "" {
		return fmt.Errorf("%w: sluice policy test needs --payout JSON", errUsage)
	}
	_, p, err := loadPolicy(pos[0])
	if err != nil {
		return err
	}
	raw := []byte(*payoutJSON)
	if name, ok := strings.CutPrefix(*payoutJSON, "@"); ok {
		if raw, err = os.ReadFile(name); err != nil {
			return err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var tp testPayout
	if err := dec.Decode(&tp); err != nil {
		return fmt.Errorf("%w: --payout: %v", errUsage, err)
	}
	f, err := tp.facts()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	d, steps := p.Explain(0, f)
	if af.json {
		return writeJSONOut(stdout, map[string]any{"decision": d, "steps": steps})
	}
	return printExplanation(stdout, d, steps)
}

func printExplanation(w io.Writer, d policy.Decision, steps []policy.Step) error {
	for i, s := range steps {
		fmt.Fprintf(w, "%2d. %-24s %-6s  %s\n", i+1, s.Rule, s.Result, s.When)
	}
	rule := d.Rule
	if rule == "" {
		rule = "(none)"
	}
	fmt.Fprintf(w, "\nDecision: %s", d.Action)
	if d.Code != "" {
		fmt.Fprintf(w, " (%s)", d.Code)
	}
	fmt.Fprintf(w, "\nRule:     %s\nReason:   %s\n", rule, d.Reason)
	facts, err := json.MarshalIndent(d.Facts, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "Facts:    %s\n", facts)
	return err
}
