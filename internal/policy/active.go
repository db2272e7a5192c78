package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// Active reads the active policy version from the store at every call (so
// a policy applied on any instance takes effect on all at once) and keeps
// its compiled form until the document changes.
type Active struct {
	store payout.PolicyStore

	mu       sync.Mutex
	compiled *Policy // of sha
	sha      string
}

// NewActive returns an Active over store.
func NewActive(store payout.PolicyStore) *Active { return &Active{store: store} }

// Get returns the active policy compiled and its version, or nils when no
// policy is active.
func (a *Active) Get(ctx context.Context) (*Policy, *payout.PolicyVersion, error) {
	v, err := a.store.ActivePolicy(ctx)
	if errors.Is(err, payout.ErrNoPolicy) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sha != v.SHA256 {
		p, err := Parse([]byte(v.Document))
		if err != nil {
			return nil, nil, fmt.Errorf("active policy version %d: %w", v.Version, err)
		}
		a.compiled, a.sha = p, v.SHA256
	}
	return a.compiled, v, nil
}

// Rechecker decides a stored payout again just before it is signed: lists
// and velocity may have changed since it was accepted.
type Rechecker struct {
	store  payout.PolicyStore
	active *Active
	engine *Engine

	mu      sync.Mutex
	readAt  time.Time // when the active policy was last read
	pol     *Policy
	version int64
}

// recheckEvery is how long the rechecker keeps the active policy before
// reading it again: a sender rechecks every payout it signs, and a policy
// applied anywhere takes effect on senders within this time.
const recheckEvery = time.Second

// current returns the active policy, read at most every recheckEvery.
func (r *Rechecker) current(ctx context.Context) (*Policy, int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.readAt) < recheckEvery {
		return r.pol, r.version, nil
	}
	pol, v, err := r.active.Get(ctx)
	if err != nil {
		return nil, 0, err
	}
	r.pol, r.version, r.readAt = pol, 0, time.Now()
	if v != nil {
		r.version = v.Version
	}
	return r.pol, r.version, nil
}

// NewRechecker returns a Rechecker over a policy store, with its own
// velocity ledger; balance may be nil.
func NewRechecker(store payout.PolicyStore, balance BalanceFunc) *Rechecker {
	return &Rechecker{store: store, active: NewActive(store), engine: NewEngine(store, balance)}
}

// Recheck returns the code and reason that forbid paying p now ("" when it
// may be paid, or no policy is active). Only a deny forbids it: an
// approval or a hold was already decided when the payout was accepted.
func (r *Rechecker) Recheck(ctx context.Context, p *payout.Payout, decimals uint8) (payout.Code, string, error) {
	pol, version, err := r.current(ctx)
	if err != nil || pol == nil {
		return "", "", err
	}
	in := Input{Chain: p.Chain, Asset: p.Asset, Decimals: decimals,
		Sender: p.Sender, To: p.To, Amount: p.Amount, Metadata: p.Metadata, Now: p.CreatedAt, PayoutID: p.ID}
	if pol.ReadsKey() {
		// The key that created the payout is not on it: its decision
		// recorded it. Without one (no policy was active then) the key
		// facts are empty, as they would have been.
		if err := r.keyFacts(ctx, p.ID, &in); err != nil {
			return "", "", err
		}
	}
	d, err := r.engine.Recheck(ctx, pol, version, in)
	if err != nil || d.Action != Deny {
		return "", "", err
	}
	return payout.Code(d.Code), fmt.Sprintf("policy version %d, just before signing: %s", d.PolicyVersion, d.Reason), nil
}

// keyFacts sets in's API key facts from the payout's recorded decision.
func (r *Rechecker) keyFacts(ctx context.Context, payoutID string, in *Input) error {
	d, err := r.store.PayoutDecision(ctx, payoutID)
	if errors.Is(err, payout.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("policy: recheck: decision of %s: %w", payoutID, err)
	}
	var f struct {
		Name   string            `json:"api_key_name"`
		Labels map[string]string `json:"api_key_labels"`
	}
	if err := json.Unmarshal(d.Facts, &f); err != nil {
		return fmt.Errorf("policy: recheck: facts of %s: %w", payoutID, err)
	}
	in.APIKeyID, in.APIKeyName, in.APIKeyLabels = d.APIKeyID, f.Name, f.Labels
	return nil
}
