package breaker

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// maxEvents bounds how many events one check reads; past it the figures
// are those of the newest events (and a warning says so).
const maxEvents = 200_000

// seen is a payout event the figures count.
type seen struct {
	at time.Time
	p  *payout.Payout
}

// window is the payout events of the longest window, deduplicated: the
// first time each payout reached submitted, and how each ended. It is kept
// between checks, which read only the events written since (after cursor).
type window struct {
	submitted map[string]seen
	ended     map[string]seen // Status says completed or failed
	cursor    string          // the newest event read; "" before any
}

func newWindow() *window { return &window{submitted: map[string]seen{}, ended: map[string]seen{}} }

// add counts one event, in any order.
func (w *window) add(e payout.Event) error {
	var p payout.Payout
	if err := p.UnmarshalJSON(e.Data); err != nil {
		return fmt.Errorf("breaker: event %s: %w", e.ID, err)
	}
	s := seen{e.CreatedAt, &p}
	if e.Type == payout.StatusSubmitted.EventType() {
		if old, ok := w.submitted[e.ObjectID]; !ok || s.at.Before(old.at) {
			w.submitted[e.ObjectID] = s // a payout counts once, when it was first submitted
		}
	} else if old, ok := w.ended[e.ObjectID]; !ok || !s.at.Before(old.at) {
		w.ended[e.ObjectID] = s
	}
	return nil
}

// prune forgets what happened before since.
func (w *window) prune(since time.Time) {
	for _, m := range []map[string]seen{w.submitted, w.ended} {
		for id, s := range m {
			if s.at.Before(since) {
				delete(m, id)
			}
		}
	}
}

var windowTypes = []string{payout.StatusSubmitted.EventType(), payout.StatusCompleted.EventType(), payout.StatusFailed.EventType()}

// Check evaluates every rule once and trips those past a threshold.
func (m *Monitor) Check(ctx context.Context) ([]Trip, error) {
	if len(m.rules) == 0 {
		return nil, nil
	}
	now := m.now()
	active, err := m.store.ActivePauses(ctx)
	if err != nil {
		return nil, fmt.Errorf("breaker: read pauses: %w", err)
	}
	holding := map[string]bool{}
	for _, p := range active {
		holding[p.CreatedBy] = true
	}
	// Read from the store, not remembered: a resume seen by another
	// instance, or before this one started, counts too.
	resumed, err := m.store.LastResumes(ctx, actorPrefix)
	if err != nil {
		return nil, fmt.Errorf("breaker: read resumes: %w", err)
	}
	var longest time.Duration
	for i := range m.rules {
		r := &m.rules[i]
		switch on := holding[r.actor()]; {
		case on:
			m.tripped[r.Name] = true
		case m.tripped[r.Name]:
			// An operator resumed it: what came before does not trip it again.
			m.tripped[r.Name], m.floor[r.Name] = false, now
		}
		if at := resumed[r.actor()]; at.After(m.floor[r.Name]) {
			m.floor[r.Name] = at
		}
		longest = max(longest, r.Window)
	}
	w, err := m.read(ctx, now.Add(-longest))
	if err != nil {
		return nil, err
	}
	var trips []Trip
	for i := range m.rules {
		r := &m.rules[i]
		if m.tripped[r.Name] {
			continue
		}
		t, over := m.figures(r, w, now)
		if !over {
			continue
		}
		if err := m.trip(ctx, r, &t, now); err != nil {
			return trips, err
		}
		trips = append(trips, t)
	}
	return trips, nil
}

// read brings m.win up to date: the events since the last check (all
// those since since, the first time), then drops those older than since.
func (m *Monitor) read(ctx context.Context, since time.Time) (*window, error) {
	if m.win == nil || m.win.cursor == "" {
		m.win = newWindow()
		if err := m.readBack(ctx, since); err != nil {
			m.win = nil
			return nil, err
		}
	} else if err := m.readNew(ctx); err != nil {
		return nil, err
	}
	m.win.prune(since)
	return m.win, nil
}

// readBack reads newest first down to since.
func (m *Monitor) readBack(ctx context.Context, since time.Time) error {
	f := payout.EventFilter{Types: windowTypes, Limit: 100}
	for n := 0; n < maxEvents; {
		evs, more, err := m.store.ListEventPage(ctx, f)
		if err != nil {
			return fmt.Errorf("breaker: read events: %w", err)
		}
		if m.win.cursor == "" && len(evs) > 0 {
			m.win.cursor = evs[0].ID
		}
		for _, e := range evs {
			if e.CreatedAt.Before(since) {
				return nil
			}
			if err := m.win.add(e); err != nil {
				return err
			}
		}
		n += len(evs)
		if !more || len(evs) == 0 {
			return nil
		}
		f.StartingAfter = evs[len(evs)-1].ID
	}
	m.log.WarnContext(ctx, "breaker window holds more events than one check reads; figures cover the newest", "events", maxEvents)
	return nil
}

// readNew reads the events written after the cursor, oldest pages first.
func (m *Monitor) readNew(ctx context.Context) error {
	for n := 0; n < maxEvents; {
		evs, more, err := m.store.ListEventPage(ctx, payout.EventFilter{Types: windowTypes, EndingBefore: m.win.cursor, Limit: 100})
		if err != nil {
			return fmt.Errorf("breaker: read events: %w", err)
		}
		if len(evs) == 0 {
			return nil
		}
		for _, e := range evs {
			if err := m.win.add(e); err != nil {
				return err
			}
		}
		m.win.cursor = evs[0].ID // pages come newest first
		n += len(evs)
		if !more {
			return nil
		}
	}
	return nil
}

// figures computes a rule's outflow and failure rate and says whether
// either passes its threshold.
func (m *Monitor) figures(r *Rule, w *window, now time.Time) (Trip, bool) {
	since := now.Add(-r.Window)
	if f := m.floor[r.Name]; f.After(since) {
		since = f
	}
	t := Trip{Breaker: r.Name, Scope: r.Scope, Chain: r.Chain, Asset: r.Asset, Window: r.Window.String()}
	if r.Scope == payout.PauseWallet {
		t.Wallet = r.Wallet.Hex()
	}
	outflow := new(big.Int)
	for _, s := range w.submitted {
		if !s.at.Before(since) && r.watches(s.p) {
			outflow.Add(outflow, s.p.Amount)
		}
	}
	for _, s := range w.ended {
		if !s.at.Before(since) && r.watches(s.p) {
			t.Ended++
			if s.p.Status == payout.StatusFailed {
				t.Failed++
			}
		}
	}
	if t.Ended > 0 {
		t.FailureRate = float64(t.Failed) / float64(t.Ended)
	}
	var over bool
	if r.MaxOutflow != nil {
		t.Outflow, t.MaxOutflow = outflow.String(), r.MaxOutflow.String()
		if outflow.Cmp(r.MaxOutflow) > 0 {
			over = true
			t.Reason = fmt.Sprintf("breaker %s: outflow %s %s in %s is over %s", r.Name, outflow, r.Asset, r.Window, r.MaxOutflow)
		}
	}
	if !over && r.MaxFailureRate > 0 && t.Ended >= r.MinCount && t.FailureRate > r.MaxFailureRate {
		over = true
		t.Reason = fmt.Sprintf("breaker %s: %d of %d payouts failed in %s (%.0f%%, over %.0f%%)", r.Name, t.Failed, t.Ended,
			r.Window, 100*t.FailureRate, 100*r.MaxFailureRate)
	}
	return t, over
}

// trip pauses the rule's scope and writes the alert, in one transaction.
func (m *Monitor) trip(ctx context.Context, r *Rule, t *Trip, now time.Time) error {
	p := &payout.Pause{ID: payout.DefaultIDs.New("pse_", now), Scope: r.Scope, Chain: r.Chain, Reason: t.Reason, CreatedBy: r.actor()}
	switch r.Scope {
	case payout.PauseAsset:
		p.Asset = r.Asset
	case payout.PauseWallet:
		p.Wallet = r.Wallet
	}
	t.PauseID = p.ID
	if err := m.store.TripBreaker(ctx, p, payout.EventBreakerTripped, t); err != nil {
		t.PauseID = ""
		return fmt.Errorf("breaker %s: pause: %w", r.Name, err)
	}
	m.tripped[r.Name] = true
	m.trips.WithLabelValues(r.Name).Inc()
	m.log.WarnContext(ctx, "circuit breaker tripped; scope paused until an operator resumes it", "breaker", r.Name,
		"pause_id", p.ID, "scope", r.Scope, "chain", r.Chain, "asset", r.Asset, "reason", t.Reason)
	return nil
}
