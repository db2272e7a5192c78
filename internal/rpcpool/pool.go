package rpcpool

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoUpstream means no upstream could take the request: all are broken,
// rate-limited, lagging, syncing or on the wrong chain.
var ErrNoUpstream = errors.New("no usable upstream")

// Pool is a chain's set of upstreams behind one JSON-RPC interface. It is
// safe for concurrent use.
type Pool struct {
	cfg Config
	log *slog.Logger
	ups []*upstream
	met *metrics

	bestHead atomic.Uint64
	hedges   hedgeBudget
	workers  *workers

	// mu guards the lifecycle.
	mu      sync.Mutex
	cancel  context.CancelFunc
	running bool
	stopped bool // connections closed: no restart

	wg sync.WaitGroup // health loops, on-demand checks and detached broadcasts

	rechecks rechecker
}

// New builds a pool from cfg. It sends no request; Start checks the
// upstreams and starts the health checks.
func New(cfg Config) (*Pool, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	base := cfg.HTTPClient
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		base = &http.Client{Transport: t}
	}
	p := &Pool{cfg: cfg, log: cfg.Logger.With("component", "rpcpool", "chain", cfg.Chain), met: newMetrics(cfg.Registerer)}
	p.workers = newWorkers(10 * time.Second)
	p.hedges = hedgeBudget{ratio: cfg.HedgeRatio, burst: cfg.HedgeBurst, tokens: cfg.HedgeBurst}
	taken := map[string]bool{}
	for i, uc := range cfg.Upstreams {
		uc.Name = upstreamName(uc, i, taken)
		u, err := dialUpstream(i, uc, &p.cfg, base)
		if err != nil {
			p.closeClients()
			return nil, err
		}
		u.m = p.met.forUpstream(cfg.Chain, u.name)
		p.ups = append(p.ups, u)
	}
	return p, nil
}

// Start checks every upstream once, waiting for the answers, then keeps
// checking them every HealthInterval until Stop. Upstreams on the wrong
// chain are refused and reported. ctx bounds the first check only.
func (p *Pool) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running || p.stopped {
		return errors.New("rpcpool: already started, or stopped")
	}
	p.checkAll(ctx)
	loopCtx, cancel := context.WithCancel(context.Background())
	p.cancel, p.running = cancel, true
	for _, u := range p.ups {
		p.wg.Add(1)
		go p.healthLoop(loopCtx, u)
	}
	return nil
}

// Stop ends the health checks and waits for them and for broadcasts still
// reaching slow upstreams, then closes the connections. A stopped pool
// cannot start again.
func (p *Pool) Stop() {
	p.mu.Lock()
	if p.running {
		p.cancel()
		p.running = false
	}
	p.stopped = true
	p.mu.Unlock()
	p.wg.Wait()
	p.workers.stop()
	p.closeClients()
}

func (p *Pool) closeClients() {
	for _, u := range p.ups {
		if u.client != nil {
			u.client.Close()
		}
	}
}

// usable reports whether u may take a request now: fit, and not backing
// off after a rate limit.
func (p *Pool) usable(u *upstream, now time.Time, fresh bool) bool {
	return !u.rateLimited(now) && p.fit(u, now, fresh)
}

// fit reports whether u is sound: on our chain and its breaker letting
// requests through. fresh also asks for an upstream fit to answer about
// the latest state: not lagging, not syncing. A rate limit is capacity,
// not unfitness.
func (p *Pool) fit(u *upstream, now time.Time, fresh bool) bool {
	return p.sound(u, fresh) && u.brk.usable(now)
}

// sound reports whether u is on our chain and, when fresh is asked, not
// lagging or syncing: what no breaker or back-off changes.
func (p *Pool) sound(u *upstream, fresh bool) bool {
	u.mu.Lock()
	ok := u.chainKnown && u.wrongChain == 0 && !(fresh && u.syncing)
	u.mu.Unlock()
	return ok && (!fresh || p.lag(u) <= p.cfg.MaxLag)
}

func (p *Pool) lag(u *upstream) uint64 {
	best, head := p.bestHead.Load(), u.head.Load()
	if head >= best {
		return 0
	}
	return best - head
}

// score ranks an upstream in milliseconds of expected cost; lower is
// better: its median latency, plus its error rate times an attempt's
// deadline (what a failure may cost before the failover), plus 10 per
// block of lag. A fast but failing node loses to a slower sound one.
func (p *Pool) score(u *upstream, now time.Time) float64 {
	s := u.win.stats(now)
	ms := float64(s.p50.Microseconds()) / 1000
	penalty := s.errorRate * float64(p.cfg.AttemptTimeout.Milliseconds())
	return ms + penalty + float64(p.lag(u))*10
}

// candidates returns the usable upstreams in the order to try them:
// primaries by score, then fallbacks by score.
func (p *Pool) candidates(now time.Time, fresh bool) []*upstream {
	type ranked struct {
		u     *upstream
		score float64
	}
	rs := make([]ranked, 0, len(p.ups))
	for _, u := range p.ups {
		if p.usable(u, now, fresh) {
			rs = append(rs, ranked{u, p.score(u, now)})
		}
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		if a.u.role != b.u.role {
			if a.u.role == RolePrimary {
				return -1
			}
			return 1
		}
		switch {
		case a.score < b.score:
			return -1
		case a.score > b.score:
			return 1
		}
		return a.u.index - b.u.index
	})
	out := make([]*upstream, len(rs))
	for i, r := range rs {
		out[i] = r.u
	}
	return out
}

// hedgeBudget lets hedges through at ratio per request, with a burst: a
// token bucket filled by requests, drained by hedges.
type hedgeBudget struct {
	ratio, burst float64

	mu     sync.Mutex
	tokens float64
}

func (h *hedgeBudget) request() {
	h.mu.Lock()
	h.tokens = min(h.burst, h.tokens+h.ratio)
	h.mu.Unlock()
}

func (h *hedgeBudget) take() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tokens < 1 {
		return false
	}
	h.tokens--
	return true
}

// lastResort returns the upstreams that are sound but for their open
// breaker (on our chain, fresh if asked, not rate-limited), best first.
func (p *Pool) lastResort(fresh bool) []*upstream {
	now := time.Now()
	var out []*upstream
	for _, u := range p.ups {
		if p.sound(u, fresh) && !u.rateLimited(now) {
			out = append(out, u)
		}
	}
	slices.SortStableFunc(out, func(a, b *upstream) int {
		return cmp.Compare(p.score(a, now), p.score(b, now))
	})
	return out
}
