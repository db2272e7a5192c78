// Package breaker owns the automatic circuit breakers: rules that watch a
// chain's, an asset's or a hot wallet's outflow and failure rate over a
// window and, past a threshold, pause that scope with an emergency pause
// (the same pauses an operator makes) and an alert event, until an
// operator resumes it.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/payout"
)

// Rule is one breaker.
type Rule struct {
	Name   string
	Scope  payout.PauseScope // PauseChain, PauseAsset or PauseWallet
	Chain  string
	Asset  string         // the asset watched; required for PauseAsset and MaxOutflow
	Wallet common.Address // PauseWallet only
	Window time.Duration
	// MaxOutflow, when not nil, trips the rule when the payouts of Asset
	// that reached submitted in the window add up to more (base units).
	MaxOutflow *big.Int
	// MaxFailureRate, when above 0, trips it when more than this share
	// of the payouts that ended (completed or failed) in the window
	// failed, once at least MinCount ended.
	MaxFailureRate float64
	MinCount       int
}

// actor is the audit actor and pause creator of a rule's pauses.
func (r *Rule) actor() string { return actorPrefix + r.Name }

// actorPrefix begins the creator of every breaker's pauses.
const actorPrefix = "breaker:"

// watches reports whether a payout of the event counts for the rule.
func (r *Rule) watches(p *payout.Payout) bool {
	return p.Chain == r.Chain && (r.Asset == "" || p.Asset == r.Asset) &&
		(r.Scope != payout.PauseWallet || p.Sender == r.Wallet)
}

// Store is what the breakers read and write: payout events, and pauses.
type Store interface {
	ListEventPage(ctx context.Context, f payout.EventFilter) ([]payout.Event, bool, error)
	ActivePauses(ctx context.Context) ([]*payout.Pause, error)
	// TripBreaker stores an active pause (with its audit entry and
	// pause.created event) and the alert event about it, data as JSON, in
	// one transaction.
	TripBreaker(ctx context.Context, p *payout.Pause, alertType string, data any) error
	// LastResumes returns, by creator, when the last pause of each creator
	// whose name starts with prefix was resumed: what a breaker counted
	// before its operator resumed it does not trip it again, also after a
	// restart.
	LastResumes(ctx context.Context, prefix string) (map[string]time.Time, error)
}

// Config is what a Monitor needs; Store and Rules are required.
type Config struct {
	Store Store
	Rules []Rule
	// Every is how often the rules are checked. Default 5s.
	Every time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger default: slog.Default().
	Logger *slog.Logger
	// Registerer receives sluice_breaker_trips_total. Default: none.
	Registerer prometheus.Registerer
}

// Trip is a rule that paused its scope.
type Trip struct {
	Breaker     string            `json:"breaker"`
	PauseID     string            `json:"pause_id"`
	Scope       payout.PauseScope `json:"scope"`
	Chain       string            `json:"chain"`
	Asset       string            `json:"asset,omitempty"`
	Wallet      string            `json:"wallet,omitempty"`
	Window      string            `json:"window"`
	Outflow     string            `json:"outflow,omitempty"`
	MaxOutflow  string            `json:"max_outflow,omitempty"`
	Ended       int               `json:"ended"`
	Failed      int               `json:"failed"`
	FailureRate float64           `json:"failure_rate"`
	Reason      string            `json:"reason"`
}

// Monitor checks the rules periodically.
type Monitor struct {
	store Store
	rules []Rule
	every time.Duration
	now   func() time.Time
	log   *slog.Logger
	trips *prometheus.CounterVec

	// Only the check loop (or a test calling Check) touches these.
	tripped map[string]bool      // rules whose pause is active, as last seen
	floor   map[string]time.Time // figures of a rule start here: when its last pause was resumed
	win     *window              // the events of the longest window, kept between checks

	mu     sync.Mutex
	cancel context.CancelFunc // nil while stopped
	done   chan struct{}
}

// New checks cfg and builds a Monitor.
func New(cfg Config) (*Monitor, error) {
	if cfg.Store == nil {
		return nil, errors.New("breaker: Config.Store is required")
	}
	seen := map[string]bool{}
	for i, r := range cfg.Rules {
		switch {
		case r.Name == "" || seen[r.Name]:
			return nil, fmt.Errorf("breaker: rule %d: needs a unique name", i)
		case r.Scope != payout.PauseChain && r.Scope != payout.PauseAsset && r.Scope != payout.PauseWallet:
			return nil, fmt.Errorf("breaker %s: scope %q is not chain, asset or wallet", r.Name, r.Scope)
		case r.Window <= 0 || (r.MaxOutflow == nil && r.MaxFailureRate <= 0):
			return nil, fmt.Errorf("breaker %s: needs a window and a threshold", r.Name)
		case r.MaxOutflow != nil && r.Asset == "":
			return nil, fmt.Errorf("breaker %s: an outflow threshold needs an asset", r.Name)
		}
		seen[r.Name] = true
	}
	m := &Monitor{store: cfg.Store, rules: cfg.Rules, every: cfg.Every, now: cfg.Now, log: cfg.Logger,
		tripped: map[string]bool{}, floor: map[string]time.Time{}}
	if m.every <= 0 {
		m.every = 5 * time.Second
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.log = m.log.With("component", "breaker")
	m.trips = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_breaker_trips_total",
		Help: "Circuit breakers tripped (each paused its scope), by breaker."}, []string{"breaker"})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(m.trips); err != nil {
			return nil, fmt.Errorf("breaker: metrics: %w", err)
		}
	}
	return m, nil
}

// Start checks the rules every Every until Stop. Without rules it does
// nothing.
func (m *Monitor) Start(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel != nil || len(m.rules) == 0 {
		return
	}
	ctx, m.cancel = context.WithCancel(ctx)
	m.done = make(chan struct{})
	go m.run(ctx, m.done)
}

// Stop ends the checks and waits for the loop to exit.
func (m *Monitor) Stop() {
	m.mu.Lock()
	cancel, done := m.cancel, m.done
	m.cancel = nil
	m.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (m *Monitor) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(m.every)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, max(m.every, 30*time.Second))
		_, err := m.Check(cctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			m.log.WarnContext(ctx, "breaker check failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
