package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// UpstreamView is one upstream node as GET /v1/status shows it. The
// engine fills it from its upstream pool; the URL is already redacted.
type UpstreamView struct {
	Name          string     `json:"name"`
	URL           string     `json:"url"`
	Role          string     `json:"role"`
	Healthy       bool       `json:"healthy"`
	Breaker       string     `json:"breaker"`
	WrongChain    bool       `json:"wrong_chain"`
	Syncing       bool       `json:"syncing"`
	Head          uint64     `json:"head"`
	Lag           uint64     `json:"lag"`
	P50MS         float64    `json:"p50_ms"`
	P90MS         float64    `json:"p90_ms"`
	ErrorRate     float64    `json:"error_rate"`
	RateLimitedTo *time.Time `json:"rate_limited_until"`
	LastError     string     `json:"last_error,omitempty"`
}

// chainStatus is a chain in GET /v1/status.
type chainStatus struct {
	Name      string         `json:"name"`
	ChainID   uint64         `json:"chain_id"`
	Usable    int            `json:"usable_upstreams"`
	Upstreams []UpstreamView `json:"upstreams"`
}

type oldestView struct {
	ID         string        `json:"id"`
	Status     payout.Status `json:"status"`
	CreatedAt  time.Time     `json:"created_at"`
	AgeSeconds float64       `json:"age_seconds"`
	Chain      string        `json:"chain"`
}

type statusView struct {
	Object  string                  `json:"object"`
	Status  string                  `json:"status"` // "ok", or "degraded" when a check fails or a chain has no usable upstream
	Version string                  `json:"version"`
	Chains  []chainStatus           `json:"chains"`
	Checks  map[string]checkResult  `json:"checks"`
	Payouts map[payout.Status]int64 `json:"payouts"`
	Oldest  *oldestView             `json:"oldest_unfinished_payout"`
	// Pauses are the emergency pauses in force: payouts in their scope
	// wait on purpose.
	Pauses []*payout.Pause `json:"pauses"`
}

// status handles GET /v1/status: what an operator looks at first when
// payouts stop. It needs a key, since it names the infrastructure.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	out := statusView{Object: "status", Status: "ok", Version: s.version, Chains: []chainStatus{},
		Checks: make(map[string]checkResult, len(s.ready))}
	for name, check := range s.ready {
		res := s.runCheck(ctx, name, check)
		out.Checks[name] = res
		if res.Status != "ok" {
			out.Status = "degraded"
		}
	}
	for _, ch := range s.chainStatuses() {
		if ch.Usable == 0 {
			out.Status = "degraded"
		}
		out.Chains = append(out.Chains, ch)
	}
	counts, err := s.store.CountByStatus(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out.Payouts = counts
	oldest, err := s.store.OldestUnfinished(ctx)
	switch {
	case errors.Is(err, payout.ErrNotFound):
	case err != nil:
		s.fail(w, r, err)
		return
	default:
		out.Oldest = &oldestView{ID: oldest.ID, Status: oldest.Status, CreatedAt: oldest.CreatedAt.UTC(),
			AgeSeconds: s.now().Sub(oldest.CreatedAt).Seconds(), Chain: oldest.Chain}
	}
	out.Pauses = []*payout.Pause{}
	if s.controls.pauses != nil {
		if out.Pauses, err = s.controls.pauses.ActivePauses(ctx); err != nil {
			s.fail(w, r, err)
			return
		}
		if out.Pauses == nil {
			out.Pauses = []*payout.Pause{}
		}
	}
	writeJSON(w, "application/json", http.StatusOK, out)
}

// chainStatuses lists every configured chain with its upstreams, sorted
// like GET /v1/chains.
func (s *Server) chainStatuses() []chainStatus {
	var out []chainStatus
	for _, name := range s.catalog.Names() {
		ch := s.catalog.Chains[name]
		cs := chainStatus{Name: name, ChainID: ch.ChainID, Upstreams: []UpstreamView{}}
		if s.upstreams != nil {
			cs.Upstreams = append(cs.Upstreams, s.upstreams(name)...)
		}
		for _, u := range cs.Upstreams {
			if u.Healthy && !u.WrongChain {
				cs.Usable++
			}
		}
		out = append(out, cs)
	}
	return out
}
