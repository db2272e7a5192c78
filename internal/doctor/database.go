package doctor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/rpcpool"
	"github.com/sluicepay/sluice/internal/store"
)

// checkDatabase opens the configured database and reports its migration
// version. It returns the open store (nil when it failed) for later checks.
func checkDatabase(ctx context.Context, cfg *config.Config) (*store.DB, []Result) {
	shown := rpcpool.RedactURL(cfg.Database)
	if path, ok := strings.CutPrefix(cfg.Database, "sqlite:"); ok {
		shown = cfg.Database
		if _, err := os.Stat(path); err != nil {
			return nil, []Result{{Check: "database", Status: Fail, Detail: fmt.Sprintf("%s: %v", shown, errors.Unwrap(err)),
				Advice: fmt.Sprintf("no database at %s: fix the database field or run 'sluice serve' once to create it", path)}}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// Doctor looks and changes nothing: no migration is applied here.
	db, err := store.Open(ctx, cfg.Database, store.Options{Logger: slog.New(slog.DiscardHandler), NoMigrate: true})
	if err != nil {
		return nil, []Result{{Check: "database", Status: Fail, Detail: fmt.Sprintf("%s: %v", shown, err),
			Advice: "the database does not open: check the database field, the server and its credentials"}}
	}
	pending, err := db.PendingMigrations(ctx)
	if err != nil {
		_ = db.Close()
		return nil, []Result{{Check: "database", Status: Fail, Detail: err.Error(),
			Advice: "the schema cannot be read: check the database user's rights"}}
	}
	if len(pending) > 0 {
		_ = db.Close()
		return nil, []Result{{Check: "database", Status: Fail,
			Detail: fmt.Sprintf("%s is behind this binary: %d migration(s) not applied (%s)", shown, len(pending), strings.Join(pending, ", ")),
			Advice: "start 'sluice serve' with this binary once (it applies them), or run the older binary that matches this database"}}
	}
	v, err := db.MigrationVersion(ctx)
	if err != nil {
		_ = db.Close()
		return nil, []Result{{Check: "database", Status: Fail, Detail: err.Error(),
			Advice: "the schema cannot be read: check the database user's rights"}}
	}
	return db, []Result{{Check: "database", Status: OK,
		Detail: fmt.Sprintf("%s, migration version %d (up to date with this binary)", shown, v)}}
}

// checkOldest grades the age of the oldest payout not yet completed.
func checkOldest(ctx context.Context, db *store.DB, now time.Time) Result {
	r := Result{Check: "oldest unfinished payout", Status: OK}
	p, err := db.OldestUnfinished(ctx)
	if errors.Is(err, payout.ErrNotFound) {
		r.Detail = "none"
		return r
	}
	if err != nil {
		return fail(r, err.Error(), "the payouts cannot be read: check the database")
	}
	age := now.Sub(p.CreatedAt).Round(time.Second)
	r.Detail = fmt.Sprintf("%s (%s, %s from %s) is %s old", p.ID, p.Status, p.Chain, p.Sender.Hex(), age)
	advice := fmt.Sprintf("payout %s has been %s for %s: check its sender's upstreams, balance and the engine's logs", p.ID, p.Status, age)
	switch {
	case age > OldestFail:
		r.Status, r.Advice = Fail, advice
	case age > OldestWarn:
		r.Status, r.Advice = Warn, advice
	}
	return r
}

// attentionPage bounds how many payouts of a status the attention check
// reads; the counts say "at least" beyond it.
const attentionPage = 100

// checkAttention lists what waits for an operator: stuck payouts (FAIL:
// nothing moves them but a speed-up or a cancel) and queued payouts that
// wait with a reason (WARN: they go on their own once funds or fees allow).
func checkAttention(ctx context.Context, db *store.DB) Result {
	r := Result{Check: "payouts needing attention", Status: OK, Detail: "none stuck or waiting"}
	stuck, moreStuck, err := db.ListPayouts(ctx, payout.ListFilter{Status: payout.StatusStuck, Limit: attentionPage})
	if err != nil {
		return fail(r, err.Error(), "the payouts cannot be read: check the database")
	}
	queued, moreQueued, err := db.ListPayouts(ctx, payout.ListFilter{Status: payout.StatusQueued, Limit: attentionPage})
	if err != nil {
		return fail(r, err.Error(), "the payouts cannot be read: check the database")
	}
	waiting := map[payout.Code]int{}
	var firstWaiting *payout.Payout
	for _, p := range queued {
		if p.Reason != "" {
			waiting[p.Reason]++
			firstWaiting = p
		}
	}
	atLeast := func(more bool) string {
		if more {
			return "at least "
		}
		return ""
	}
	switch {
	case len(stuck) > 0:
		p := stuck[len(stuck)-1] // the oldest of the page
		r.Status = Fail
		r.Detail = fmt.Sprintf("%s%d stuck, e.g. %s: %s: %s", atLeast(moreStuck), len(stuck), p.ID, p.Reason, p.ReasonDetail)
		r.Advice = fmt.Sprintf("raise its fee cap (sluice payout speed-up %s --fee-cap AMOUNT) or cancel it (sluice payout cancel %s)", p.ID, p.ID)
		switch p.Reason {
		case payout.ReasonForeignNonce:
			r.Advice = fmt.Sprintf("someone else signs with hot wallet %s: secure the key, then cancel %s so its sender resumes", p.Sender.Hex(), p.ID)
		case payout.ReasonBroadcastRefused:
			r.Advice = fmt.Sprintf("the nodes refuse its transaction (the detail quotes them): fix that cause and it goes on by itself, or cancel it (sluice payout cancel %s) to fill its nonce so the payouts behind it move", p.ID)
		}
	case firstWaiting != nil:
		r.Status = Warn
		parts := make([]string, 0, len(waiting))
		for reason, n := range waiting {
			parts = append(parts, fmt.Sprintf("%d %s", n, reason))
		}
		sort.Strings(parts)
		r.Detail = fmt.Sprintf("%squeued payouts wait: %s; e.g. %s: %s", atLeast(moreQueued), strings.Join(parts, ", "), firstWaiting.ID, firstWaiting.ReasonDetail)
		r.Advice = "insufficient_funds: top up the hot wallet; a fee over its cap: wait for fees to fall or speed the payout up"
	}
	return r
}
