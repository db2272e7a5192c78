package policy

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// refreshLookback is how long before the newest payout it has a refresh
// reads from: a payout's created_at is taken before its transaction
// commits, and another instance's may commit this much later.
const refreshLookback = 3 * time.Second

// Engine computes facts and decides with a compiled policy. It is safe for
// concurrent use.
type Engine struct {
	src     Sources
	balance BalanceFunc // nil: balance_share is -1
	// RefreshEvery bounds how stale velocity may be about payouts other
	// instances created; this instance's own are recorded at once.
	refreshEvery time.Duration

	decideMu sync.Mutex // serialises Decide

	mu          sync.Mutex
	ledger      *Ledger
	loaded      bool
	lastRefresh time.Time

	firstPaid sync.Map // common.Address → time.Time; a first payment never changes
}

// NewEngine builds an engine over src; balance may be nil.
func NewEngine(src Sources, balance BalanceFunc) *Engine {
	return &Engine{src: src, balance: balance, refreshEvery: time.Second, ledger: NewLedger(0)}
}

// Record tells velocity about a payout stored here.
func (e *Engine) Record(h payout.HistoryItem) {
	e.mu.Lock()
	l := e.ledger
	e.mu.Unlock()
	l.Record(h)
}

// prepare loads the ledger for p's longest window the first time, again
// when p needs a longer one, and tops it up every refreshEvery.
func (e *Engine) prepare(ctx context.Context, p *Policy, now time.Time) (*Ledger, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(p.windows) == 0 {
		return e.ledger, nil
	}
	if !e.loaded || p.Longest() > e.ledger.Keep() {
		l := NewLedger(max(p.Longest(), e.ledger.Keep()))
		hs, err := e.src.PayoutHistory(ctx, now.Add(-l.Keep()))
		if err != nil {
			return nil, fmt.Errorf("policy: load velocity: %w", err)
		}
		l.Record(hs...)
		e.ledger, e.loaded, e.lastRefresh = l, true, now
		return l, nil
	}
	if now.Sub(e.lastRefresh) >= e.refreshEvery {
		// Payouts commit a little after their created_at: look back a
		// while (each refresh re-reads that much; the ledger skips those
		// it has).
		since := e.ledger.Latest().Add(-refreshLookback)
		if cut := now.Add(-e.ledger.Keep()); since.Before(cut) {
			since = cut
		}
		hs, err := e.src.PayoutHistory(ctx, since)
		if err != nil {
			return nil, fmt.Errorf("policy: refresh velocity: %w", err)
		}
		e.ledger.Record(hs...)
		e.lastRefresh = now
	}
	return e.ledger, nil
}

// Facts computes what p's conditions see about in.
func (e *Engine) Facts(ctx context.Context, p *Policy, in Input) (*Facts, error) {
	l, err := e.prepare(ctx, p, in.Now)
	if err != nil {
		return nil, err
	}
	f := NewFacts(in)
	hits, err := e.src.ListsHolding(ctx, in.To)
	if err != nil {
		return nil, fmt.Errorf("policy: lists: %w", err)
	}
	for _, h := range hits {
		f.AddList(h)
	}
	if f.DestinationAgeSeconds, err = e.age(ctx, in.To, in.Now); err != nil {
		return nil, err
	}
	if e.balance != nil {
		if b, ok := e.balance(ctx, in.Chain, in.Sender, in.Asset); ok && b.Sign() > 0 {
			f.BalanceShare, _ = new(big.Rat).SetFrac(in.Amount, b).Float64()
		}
	}
	if len(p.windows) > 0 {
		h := payout.HistoryItem{Chain: in.Chain, Asset: in.Asset, Sender: in.Sender, To: in.To, APIKeyID: in.APIKeyID}
		f.vel = make(map[string]Window, len(p.windows))
		f.Velocity = make(map[string]VelocityFact, len(p.windows))
		selfAt, self := l.recorded(in.PayoutID)
		for _, w := range p.windows {
			win := l.window(scopeKey(w.scope, in.Chain, in.Asset, &h), in.Now, w.d)
			if self && selfAt.After(in.Now.Add(-w.d)) && !selfAt.After(in.Now) && (w.scope != ScopeAPIKey || in.APIKeyID != "") {
				// Decided again (before signing): the payout does not
				// count against itself.
				win = Window{Sum: new(big.Int).Sub(win.Sum, in.Amount), Count: win.Count - 1}
			}
			f.vel[w.scope+"/"+w.window] = win
			f.Velocity[w.scope+"/"+w.window] = VelocityFact{Sum: win.Sum.String(), Count: win.Count}
		}
	}
	return f, nil
}

// age returns the seconds since the destination was first paid, or -1.
func (e *Engine) age(ctx context.Context, to common.Address, now time.Time) (int64, error) {
	if t, ok := e.firstPaid.Load(to); ok {
		return int64(now.Sub(t.(time.Time)) / time.Second), nil
	}
	t, ok, err := e.src.FirstPaid(ctx, to)
	if err != nil {
		return 0, fmt.Errorf("policy: first paid: %w", err)
	}
	if !ok {
		return -1, nil
	}
	e.firstPaid.Store(to, t)
	return int64(now.Sub(t) / time.Second), nil
}

// Evaluate computes the facts and decides.
func (e *Engine) Evaluate(ctx context.Context, p *Policy, version int64, in Input) (Decision, error) {
	f, err := e.Facts(ctx, p, in)
	if err != nil {
		return Decision{}, err
	}
	return p.Decide(version, f), nil
}

// Recheck decides a stored payout again, e.g. just before it is signed:
// lists, destination age and velocity may have changed since it was
// created. in.PayoutID names it, so that it does not count against its own
// velocity windows; nothing is recorded.
func (e *Engine) Recheck(ctx context.Context, p *Policy, version int64, in Input) (Decision, error) {
	if in.PayoutID == "" {
		return Decision{}, fmt.Errorf("policy: recheck needs the payout's id")
	}
	return e.Evaluate(ctx, p, version, in)
}

// Decide evaluates in and, when the payout is allowed, records it in
// velocity at once, so that the next payout's windows include it. One
// decision at a time per engine: two payouts decided together cannot both
// slip under a limit that only one of them fits (on one instance; other
// instances are seen within RefreshEvery).
func (e *Engine) Decide(ctx context.Context, p *Policy, version int64, in Input, payoutID string) (Decision, error) {
	e.decideMu.Lock()
	defer e.decideMu.Unlock()
	d, err := e.Evaluate(ctx, p, version, in)
	if err == nil && d.Action == Allow {
		e.Record(payout.HistoryItem{ID: payoutID, Chain: in.Chain, Asset: in.Asset, Sender: in.Sender, To: in.To,
			Amount: in.Amount, APIKeyID: in.APIKeyID, CreatedAt: in.Now})
	}
	return d, err
}
