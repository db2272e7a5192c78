package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/httpapi"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/policy"
)

const apikeyUsage = `Usage:
  sluice apikey create --name NAME --scope SCOPE [--scope SCOPE ...] [--label NAME=VALUE ...] [--require-signing] [--api-version DATE]
  sluice apikey list [--limit N] [--starting-after ID]
  sluice apikey revoke ID
  sluice apikey hash < key-file

create makes a random key through the API (the calling key needs the admin
scope) and prints its secret once: only its SHA-256 is stored. Scopes are
payouts:read, payouts:write (includes payouts:read), batches:write,
webhooks:manage, admin, and approver (approves or rejects payouts a policy
holds; includes payouts:read; give the key a --name, which the audit log
records). A key made with --require-signing must sign every
request (Sluice-Signature; the Go client's WithSigning does it). Labels
(--label team=payroll --label region=eu) are fixed when the key is made;
policy rules read them as api_key_labels, e.g.
  when: '"team" in api_key_labels && api_key_labels["team"] == "payroll"'.

list shows the keys made through the API (never a secret); revoke stops a
key at once on the answering server and within 5 seconds on the others.

hash prints the SHA-256 of a key read from stdin, for api_keys in the config.

create, list and revoke take:
  --api-url URL   the API (default $SLUICE_API_URL, else http://127.0.0.1:8080)
  --api-key KEY   the API key (default $SLUICE_API_KEY; prefer the variable)
  --sign          sign requests, for a calling key that requires signing
  --json          print JSON instead of text
`

// runAPIKey runs `sluice apikey create|list|revoke|hash`.
func runAPIKey(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: sluice apikey needs a subcommand: create, list, revoke or hash\n\n%s", errUsage, apikeyUsage)
	}
	switch args[0] {
	case "create":
		return apikeyCreate(ctx, args[1:], stdout, stderr)
	case "list":
		return apikeyList(ctx, args[1:], stdout, stderr)
	case "revoke":
		return apikeyRevoke(ctx, args[1:], stdout, stderr)
	case "hash":
		return apikeyHash(args[1:], stdin, stdout)
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, apikeyUsage)
		return err
	default:
		return fmt.Errorf("%w: unknown subcommand %q of sluice apikey\n\n%s", errUsage, args[0], apikeyUsage)
	}
}

// apikeyHash prints the SHA-256 of a key read from stdin, for api_keys.
func apikeyHash(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) != 0 {
		return fmt.Errorf("%w: sluice apikey hash < key-file (takes no arguments, got %q)", errUsage, args)
	}
	b, err := io.ReadAll(io.LimitReader(stdin, 4096))
	if err != nil {
		return err
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return fmt.Errorf("%w: no key on stdin", errUsage)
	}
	fmt.Fprintf(stdout, "%x\n", httpapi.HashAPIKey(key))
	return nil
}

// keyFlags are the API flags of create, list and revoke.
type keyFlags struct {
	*apiFlags
	sign bool
}

func newKeyFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *keyFlags) {
	fs, af := apiFlagSet("apikey "+name, apikeyUsage, stderr)
	f := &keyFlags{apiFlags: af}
	fs.BoolVar(&f.sign, "sign", false, "sign requests (for a key that requires signing)")
	return fs, f
}

func (f *keyFlags) client() (*client.Client, error) {
	c, err := f.apiFlags.client()
	if err != nil || !f.sign {
		return c, err
	}
	return client.New(f.url, f.key, client.WithSigning()), nil
}

// scopeFlags collects repeated --scope flags, each checked as it is given.
type scopeFlags []string

func (s *scopeFlags) String() string { return strings.Join(*s, ",") }

func (s *scopeFlags) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		sc, err := payout.ParseScope(strings.TrimSpace(part))
		if err != nil {
			return err
		}
		*s = append(*s, string(sc))
	}
	return nil
}

// labelFlags collects repeated --label NAME=VALUE flags, each checked as
// it is given.
type labelFlags map[string]string

func (l labelFlags) String() string {
	parts := make([]string, 0, len(l))
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func (l labelFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("%q is not NAME=VALUE", v)
	}
	if _, dup := l[name]; dup {
		return fmt.Errorf("label %s is given twice", name)
	}
	if err := policy.ValidateLabel(name, value); err != nil {
		return err
	}
	if len(l) >= policy.MaxLabels {
		return fmt.Errorf("at most %d labels", policy.MaxLabels)
	}
	l[name] = value
	return nil
}

func apikeyCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, kf := newKeyFlagSet("create", stderr)
	var (
		p      client.CreateAPIKeyParams
		scopes scopeFlags
		labels = labelFlags{}
	)
	fs.Var(labels, "label", "a label NAME=VALUE that policy rules read as api_key_labels (repeat)")
	fs.StringVar(&p.Name, "name", "", "a label for the key, e.g. backoffice")
	fs.Var(&scopes, "scope", "a scope the key holds (repeat, or separate with commas)")
	fs.BoolVar(&p.RequireSigning, "require-signing", false, "every request of the key must be signed")
	fs.StringVar(&p.APIVersion, "api-version", "", "the API version to pin (default: the server's current)")
	if _, err := parseFlags(fs, args, 0, ""); err != nil {
		return helpOr(err)
	}
	switch {
	case strings.TrimSpace(p.Name) == "":
		return fmt.Errorf("%w: sluice apikey create needs --name", errUsage)
	case len(scopes) == 0:
		return fmt.Errorf("%w: sluice apikey create needs at least one --scope (payouts:read, payouts:write, batches:write, webhooks:manage, admin, approver)", errUsage)
	}
	p.Scopes = scopes
	if len(labels) > 0 {
		p.Labels = labels
	}
	c, err := kf.client()
	if err != nil {
		return err
	}
	k, err := c.CreateAPIKey(ctx, p)
	if err != nil {
		return keyError(err, p)
	}
	if kf.json {
		return writeJSONOut(stdout, k)
	}
	signing := ""
	if k.RequireSigning {
		signing = "; every request must be signed"
	}
	if len(k.Labels) > 0 {
		signing += "; labels " + labelFlags(k.Labels).String()
	}
	_, err = fmt.Fprintf(stdout, "Created API key %s %q (%s; version %s%s).\nIts secret, shown only now (store it safely):\n  %s\n",
		k.ID, k.Name, strings.Join(k.Scopes, ", "), k.APIVersion, signing, k.Secret)
	return err
}

// keyError names the flag behind an error the server answered.
func keyError(err error, p client.CreateAPIKeyParams) error {
	switch client.ErrorCode(err) {
	case "invalid_api_version":
		return fmt.Errorf("--api-version %q: %w", p.APIVersion, err)
	case "invalid_scope":
		return fmt.Errorf("--scope %q: %w", strings.Join(p.Scopes, ","), err)
	case "invalid_request":
		if len(p.Labels) > 0 {
			return fmt.Errorf("--label %s: %w", labelFlags(p.Labels), err)
		}
	}
	return err
}

func apikeyList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, kf := newKeyFlagSet("list", stderr)
	limit := fs.Int("limit", 100, "keys to show, 1-100")
	after := fs.String("starting-after", "", "show keys older than this key id")
	if _, err := parseFlags(fs, args, 0, ""); err != nil {
		return helpOr(err)
	}
	if *limit < 1 || *limit > 100 {
		return fmt.Errorf("%w: --limit %d must be from 1 to 100", errUsage, *limit)
	}
	c, err := kf.client()
	if err != nil {
		return err
	}
	l, err := c.ListAPIKeys(ctx, *limit, *after)
	if err != nil {
		if client.ErrorCode(err) == "invalid_cursor" {
			return fmt.Errorf("--starting-after %q: %w", *after, err)
		}
		return err
	}
	if kf.json {
		return writeJSONOut(stdout, l)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSCOPES\tLABELS\tVERSION\tSIGNED\tCREATED\tLAST USED\tREVOKED")
	for _, k := range l.Data {
		labels := labelFlags(k.Labels).String()
		if labels == "" {
			labels = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s…\t%s\t%s\t%s\t%v\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, strings.Join(k.Scopes, ","),
			labels, k.APIVersion, k.RequireSigning, k.CreatedAt.Format(time.RFC3339), timeOrDash(k.LastUsedAt), timeOrDash(k.RevokedAt))
	}
	if l.HasMore && len(l.Data) > 0 {
		fmt.Fprintf(tw, "(more: --starting-after %s)\n", l.Data[len(l.Data)-1].ID)
	}
	return tw.Flush()
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func apikeyRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, kf := newKeyFlagSet("revoke", stderr)
	pos, err := parseFlags(fs, args, 1, "the key's id: sluice apikey revoke key_…")
	if err != nil {
		return helpOr(err)
	}
	c, err := kf.client()
	if err != nil {
		return err
	}
	k, err := c.RevokeAPIKey(ctx, pos[0])
	if err != nil {
		if client.ErrorCode(err) == "not_found" {
			return fmt.Errorf("API key %q: %w", pos[0], err)
		}
		return err
	}
	if kf.json {
		return writeJSONOut(stdout, k)
	}
	_, err = fmt.Fprintf(stdout, "Revoked API key %s %q at %s.\n", k.ID, k.Name, timeOrDash(k.RevokedAt))
	return err
}
