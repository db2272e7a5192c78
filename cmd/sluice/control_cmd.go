package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

const pauseUsage = `Usage:
  sluice pause [--chain C] [--asset A] [--wallet W] --reason TEXT [--cancel-in-flight]
  sluice pause list
  sluice resume ID

pause stops payments at once, on every instance: with no flag everything;
--chain C one chain; --chain C --asset A one asset on it; --wallet W (with
--chain C optionally) one hot wallet. Payouts it matches wait queued with
reason "paused"; transactions already broadcast go on (fee bumps, cancels,
confirmations), unless --cancel-in-flight also asks a cancel of each of them
(a zero-value self-transfer races it for its nonce; through the API only). resume ends a pause by its id (pse_…); list shows those in
force. The calling key needs the admin scope; every pause and resume is in
the audit log. With --config FILE all three work straight on the database of
a config file instead (when the API is down); the audit log names the actor
"cli" then.

Flags of all three:
  --api-url URL   the API (default $SLUICE_API_URL, else http://127.0.0.1:8080)
  --api-key KEY   the API key (default $SLUICE_API_KEY; prefer the variable)
  --json          print JSON instead of text
`

const auditUsage = `Usage:
  sluice audit verify [--head SEQ:HASH] [--config FILE]
  sluice audit export [--since TIME] [--config FILE]

verify recomputes the hash chain of the audit log and names the first
changed, removed or reordered entry by its seq (exit 1); export writes the
log as JSON lines, oldest first (--since: entries at or after an RFC 3339
time). verify prints the last entry as SEQ:HASH: keep it elsewhere and
pass it as --head next time, so that entries removed from the end, or a log
rewritten from scratch, are found too. Both read through the API (--api-url, --api-key, admin scope), or
straight from the database of a config file with --config (read-only).
`

// runPause runs `sluice pause [list]`.
func runPause(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "list" {
		return pauseList(ctx, args[1:], stdout, stderr)
	}
	fs, af := newControlFlagSet("pause", pauseUsage, stderr)
	var p client.CreatePauseParams
	fs.StringVar(&p.Chain, "chain", "", "pause one chain (by name)")
	fs.StringVar(&p.Asset, "asset", "", "pause one asset of --chain (by symbol)")
	fs.StringVar(&p.Wallet, "wallet", "", "pause one hot wallet (address)")
	fs.StringVar(&p.Reason, "reason", "", "why payments stop (required)")
	fs.BoolVar(&p.CancelInFlight, "cancel-in-flight", false, "also cancel the payouts in the pause's scope already broadcast and not yet mined")
	cfgPath := fs.String("config", "", "write the pause straight into the database of this config file (when the API is down)")
	if _, err := parseFlags(fs, args, 0, ""); err != nil {
		return helpOr(err)
	}
	switch {
	case strings.TrimSpace(p.Reason) == "":
		return fmt.Errorf("%w: sluice pause needs --reason", errUsage)
	case p.CancelInFlight && *cfgPath != "":
		return fmt.Errorf("%w: sluice pause --cancel-in-flight works through the API only, not with --config", errUsage)
	case p.Wallet != "":
		p.Scope = client.PauseWallet
	case p.Asset != "":
		p.Scope = client.PauseAsset
	case p.Chain != "":
		p.Scope = client.PauseChain
	default:
		p.Scope = client.PauseGlobal
	}
	ps, closePS, err := pauseBackend(ctx, *cfgPath, af)
	if err != nil {
		return err
	}
	defer closePS()
	pa, err := ps.create(ctx, p)
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, pa)
	}
	_, err = fmt.Fprintf(stdout, "Paused (%s): %s\nPayouts it matches wait until: sluice resume %s\n", describePause(pa), pa.ID, pa.ID)
	if err == nil && pa.CancelsRequested != nil {
		_, err = fmt.Fprintf(stdout, "Cancels asked of %d payout(s) already broadcast; each ends cancelled only if its cancel is mined first\n", *pa.CancelsRequested)
	}
	return err
}

func describePause(p *client.Pause) string {
	switch p.Scope {
	case client.PauseChain:
		return "chain " + p.Chain
	case client.PauseAsset:
		return p.Asset + " on " + p.Chain
	case client.PauseWallet:
		return "wallet " + p.Wallet
	}
	return "everything"
}

func newControlFlagSet(name, usage string, stderr io.Writer) (*flag.FlagSet, *apiFlags) {
	return apiFlagSet(name, usage, stderr)
}

func pauseList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := newControlFlagSet("pause list", pauseUsage, stderr)
	cfgPath := fs.String("config", "", "read the database of this config file instead of the API")
	if _, err := parseFlags(fs, args, 0, ""); err != nil {
		return helpOr(err)
	}
	ps, closePS, err := pauseBackend(ctx, *cfgPath, af)
	if err != nil {
		return err
	}
	defer closePS()
	l, err := ps.list(ctx)
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, l)
	}
	if len(l.Data) == 0 {
		_, err := fmt.Fprintln(stdout, "No pause in force.")
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPAUSES\tREASON\tBY\tSINCE")
	for _, p := range l.Data {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.ID, describePause(p), p.Reason, p.CreatedBy, p.CreatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

// runResume runs `sluice resume ID`.
func runResume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := newControlFlagSet("resume", pauseUsage, stderr)
	cfgPath := fs.String("config", "", "resume straight in the database of this config file (when the API is down)")
	pos, err := parseFlags(fs, args, 1, "the pause's id: sluice resume pse_…")
	if err != nil {
		return helpOr(err)
	}
	ps, closePS, err := pauseBackend(ctx, *cfgPath, af)
	if err != nil {
		return err
	}
	defer closePS()
	p, err := ps.resume(ctx, pos[0])
	if err != nil {
		if code := client.ErrorCode(err); code == "not_found" || code == "pause_already_resumed" ||
			errors.Is(err, payout.ErrNotFound) || errors.Is(err, payout.ErrPauseResumed) {
			return fmt.Errorf("pause %q: %w", pos[0], err)
		}
		return err
	}
	if af.json {
		return writeJSONOut(stdout, p)
	}
	_, err = fmt.Fprintf(stdout, "Resumed %s (%s); its payouts go in the senders' next rounds.\n", p.ID, describePause(p))
	return err
}

// runAudit runs `sluice audit verify|export`.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: sluice audit needs a subcommand: verify or export\n\n%s", errUsage, auditUsage)
	}
	sub := args[0]
	switch sub {
	case "verify", "export":
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, auditUsage)
		return err
	default:
		return fmt.Errorf("%w: unknown subcommand %q of sluice audit\n\n%s", errUsage, sub, auditUsage)
	}
	fs, af := newControlFlagSet("audit "+sub, auditUsage, stderr)
	cfgPath := fs.String("config", "", "read the database of this config file instead of the API")
	since := fs.String("since", "", "export: entries at or after this RFC 3339 time")
	head := fs.String("head", "", "verify: SEQ:HASH of an entry printed by an earlier verify")
	if _, err := parseFlags(fs, args[1:], 0, ""); err != nil {
		return helpOr(err)
	}
	var from time.Time
	if *since != "" {
		t, err := time.Parse(time.RFC3339, *since)
		if err != nil {
			return fmt.Errorf("%w: --since %q must be an RFC 3339 time, e.g. 2026-11-24T00:00:00Z", errUsage, *since)
		}
		from = t
	}
	src, closeSrc, err := auditSource(ctx, *cfgPath, af)
	if err != nil {
		return err
	}
	defer closeSrc()
	if sub == "export" {
		return auditExport(ctx, src, from, stdout)
	}
	v := payout.NewAuditVerifier()
	if *head != "" {
		seq, hash, ok := strings.Cut(*head, ":")
		if _, err := fmt.Sscan(seq, &v.Anchor.Seq); err != nil || !ok || v.Anchor.Seq < 1 || len(hash) != 64 {
			return fmt.Errorf("%w: --head %q must be SEQ:HASH as verify printed it", errUsage, *head)
		}
		v.Anchor.Hash = hash
	}
	err = v.VerifyAll(ctx, src)
	var br *payout.AuditBreak
	if errors.As(err, &br) {
		return fmt.Errorf("audit log broken after %d good entries: %w", v.Checked, br)
	}
	if err != nil {
		return err
	}
	last := "none"
	if v.Head != nil {
		last = fmt.Sprintf("%d:%s", v.Head.Seq, v.Head.Hash)
	}
	_, err = fmt.Fprintf(stdout, "Audit log intact: %d entries, hash chain verified. Last entry (keep it for --head): %s\n", v.Checked, last)
	return err
}

// auditSource reads the log from the database of a config file, or else
// through the API.
func auditSource(ctx context.Context, cfgPath string, af *apiFlags) (payout.AuditStore, func(), error) {
	if cfgPath != "" {
		cfg, err := config.Load(cfgPath)
		if err != nil {
			return nil, nil, err
		}
		db, err := store.Open(ctx, cfg.Database, store.Options{NoMigrate: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return nil, nil, err
		}
		return db, func() { _ = db.Close() }, nil
	}
	c, err := af.client()
	if err != nil {
		return nil, nil, err
	}
	return apiAudit{c}, func() {}, nil
}

// apiAudit reads the audit log through the API.
type apiAudit struct{ c *client.Client }

func (a apiAudit) AppendAudit(context.Context, *payout.AuditEntry) error {
	return errors.New("the audit log is appended by the server only")
}

func (a apiAudit) ListAudit(ctx context.Context, after int64, limit int) ([]*payout.AuditEntry, bool, error) {
	l, err := a.c.ListAudit(ctx, client.ListAuditParams{After: after, Limit: limit})
	if err != nil {
		return nil, false, err
	}
	es := make([]*payout.AuditEntry, len(l.Data))
	for i, e := range l.Data {
		es[i] = &payout.AuditEntry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Action: e.Action, Object: e.Object,
			Details: e.Details, PrevHash: e.PrevHash, Hash: e.Hash}
	}
	return es, l.HasMore, nil
}

// auditExport writes every entry at or after from as one JSON line.
func auditExport(ctx context.Context, src payout.AuditStore, from time.Time, stdout io.Writer) error {
	enc := json.NewEncoder(stdout)
	var after int64
	for {
		es, more, err := src.ListAudit(ctx, after, 1000)
		if err != nil {
			return err
		}
		for _, e := range es {
			after = e.Seq
			if e.Time.Before(from) {
				continue
			}
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		if !more || len(es) == 0 {
			return nil
		}
	}
}

// pauses is where pause, resume and pause list act: the API or the database.
type pauses struct {
	create func(context.Context, client.CreatePauseParams) (*client.Pause, error)
	list   func(context.Context) (*client.PauseList, error)
	resume func(context.Context, string) (*client.Pause, error)
}

// pauseBackend acts through the API, or on the database of a config file.
func pauseBackend(ctx context.Context, cfgPath string, af *apiFlags) (pauses, func(), error) {
	if cfgPath == "" {
		c, err := af.client()
		if err != nil {
			return pauses{}, nil, err
		}
		return pauses{create: c.CreatePause, list: c.ListPauses, resume: c.ResumePause}, func() {}, nil
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return pauses{}, nil, err
	}
	db, err := store.Open(ctx, cfg.Database, store.Options{NoMigrate: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return pauses{}, nil, err
	}
	return pauses{
		create: func(ctx context.Context, in client.CreatePauseParams) (*client.Pause, error) {
			if err := checkPauseTarget(cfg, in); err != nil {
				return nil, err
			}
			p := &payout.Pause{ID: payout.DefaultIDs.New("pse_", time.Now()), Scope: payout.PauseScope(in.Scope),
				Chain: in.Chain, Asset: in.Asset, Reason: in.Reason, CreatedBy: payout.ActorCLI}
			if in.Wallet != "" {
				if !common.IsHexAddress(in.Wallet) {
					return nil, fmt.Errorf("%w: --wallet %q is not an address", errUsage, in.Wallet)
				}
				p.Wallet = common.HexToAddress(in.Wallet)
			}
			if err := db.CreatePause(ctx, p); err != nil {
				return nil, err
			}
			return asClientPause(p)
		},
		list: func(ctx context.Context) (*client.PauseList, error) {
			ps, err := db.ActivePauses(ctx)
			if err != nil {
				return nil, err
			}
			l := &client.PauseList{}
			for _, p := range ps {
				cp, err := asClientPause(p)
				if err != nil {
					return nil, err
				}
				l.Data = append(l.Data, cp)
			}
			return l, nil
		},
		resume: func(ctx context.Context, id string) (*client.Pause, error) {
			p, err := db.ResumePause(ctx, id, payout.ActorCLI)
			if err != nil {
				return nil, err
			}
			return asClientPause(p)
		},
	}, func() { _ = db.Close() }, nil
}

// checkPauseTarget refuses a chain or asset the config does not name: a
// typo would pause nothing while looking in force.
func checkPauseTarget(cfg *config.Config, in client.CreatePauseParams) error {
	if in.Chain == "" {
		return nil
	}
	for _, ch := range cfg.Chains {
		if ch.Name != in.Chain {
			continue
		}
		if in.Asset == "" || in.Asset == ch.NativeSymbol {
			return nil
		}
		for _, t := range ch.Tokens {
			if t.Symbol == in.Asset {
				return nil
			}
		}
		return fmt.Errorf("%w: --asset %q is not an asset of chain %q in the config", errUsage, in.Asset, in.Chain)
	}
	return fmt.Errorf("%w: --chain %q is not a chain of the config", errUsage, in.Chain)
}

// asClientPause shows a stored pause as the API would.
func asClientPause(p *payout.Pause) (*client.Pause, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var cp client.Pause
	return &cp, json.Unmarshal(b, &cp)
}
