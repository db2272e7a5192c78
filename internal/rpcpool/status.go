package rpcpool

import (
	"time"
)

// UpstreamStatus is what the pool knows of one upstream, for a status page
// and `sluice doctor`. It holds no credential.
type UpstreamStatus struct {
	Name        string        `json:"name"`
	URL         string        `json:"url"` // redacted
	Role        Role          `json:"role"`
	Healthy     bool          `json:"healthy"` // fit for reads of the latest state (a rate limit aside)
	Breaker     BreakerState  `json:"breaker"`
	ChainID     uint64        `json:"chain_id,omitempty"` // as answered, when it is the wrong one
	WrongChain  bool          `json:"wrong_chain"`
	Syncing     bool          `json:"syncing"`
	Head        uint64        `json:"head"`
	Lag         uint64        `json:"lag"`
	P50         time.Duration `json:"p50_ns"`
	P90         time.Duration `json:"p90_ns"`
	ErrorRate   float64       `json:"error_rate"`
	Score       float64       `json:"score"`
	RateLimited time.Time     `json:"rate_limited_until,omitzero"`
	LastSeen    time.Time     `json:"last_seen,omitzero"` // last good health check
	LastError   string        `json:"last_error,omitempty"`
}

// Status reports every upstream in config order.
func (p *Pool) Status() []UpstreamStatus {
	now := time.Now()
	out := make([]UpstreamStatus, len(p.ups))
	for i, u := range p.ups {
		s := u.win.fresh() // a report, not the hot path: never the cached snapshot
		u.mu.Lock()
		st := UpstreamStatus{
			Name: u.name, URL: u.url, Role: u.role, Breaker: u.brk.current(),
			ChainID: u.wrongChain, WrongChain: u.wrongChain != 0, Syncing: u.syncing,
			Head: u.head.Load(), Lag: p.lag(u), P50: s.p50, P90: s.p90, ErrorRate: s.errorRate,
			LastError: u.lastErr,
		}
		u.mu.Unlock()
		st.Healthy = p.fit(u, now, true)
		st.Score = p.score(u, now)
		if until := u.rlUntil.Load(); until > now.UnixNano() {
			st.RateLimited = time.Unix(0, until)
		}
		if seen := u.lastSeen.Load(); seen > 0 {
			st.LastSeen = time.Unix(0, seen)
		}
		out[i] = st
	}
	return out
}
