package client

import (
	"context"
	"net/http"
	"time"
)

// ServerStatus is GET /v1/status: what an operator looks at first when
// payouts stop moving.
type ServerStatus struct {
	Object  string                 `json:"object"`
	Status  string                 `json:"status"` // "ok", or "degraded" when a check fails or a chain has no usable upstream
	Version string                 `json:"version"`
	Chains  []ChainStatus          `json:"chains"`
	Checks  map[string]CheckResult `json:"checks"`
	// Payouts counts payouts per status.
	Payouts map[Status]int64 `json:"payouts"`
	// Oldest is the oldest payout not yet finished, nil when all are.
	Oldest *OldestPayout `json:"oldest_unfinished_payout"`
	// Pauses are the emergency pauses in force.
	Pauses []Pause `json:"pauses"`
}

// ChainStatus is one chain's upstream nodes as the engine sees them.
type ChainStatus struct {
	Name      string     `json:"name"`
	ChainID   uint64     `json:"chain_id"`
	Usable    int        `json:"usable_upstreams"`
	Upstreams []Upstream `json:"upstreams"`
}

// Upstream is one node of a chain's pool.
type Upstream struct {
	Name             string     `json:"name"`
	URL              string     `json:"url"` // credentials removed
	Role             string     `json:"role"`
	Healthy          bool       `json:"healthy"`
	Breaker          string     `json:"breaker"`
	WrongChain       bool       `json:"wrong_chain"`
	Syncing          bool       `json:"syncing"`
	Head             uint64     `json:"head"`
	Lag              uint64     `json:"lag"`
	P50MS            float64    `json:"p50_ms"`
	P90MS            float64    `json:"p90_ms"`
	ErrorRate        float64    `json:"error_rate"`
	RateLimitedUntil *time.Time `json:"rate_limited_until"`
	LastError        string     `json:"last_error,omitempty"`
}

// CheckResult is the outcome of one readiness check (database, signers…).
type CheckResult struct {
	Status     string  `json:"status"` // "ok" or "fail"
	Error      string  `json:"error,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

// OldestPayout names the oldest unfinished payout and its age.
type OldestPayout struct {
	ID         string    `json:"id"`
	Status     Status    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
	AgeSeconds float64   `json:"age_seconds"`
	Chain      string    `json:"chain"`
}

// GetStatus reads the engine's status: checks, upstreams per chain, payout
// counts and the oldest unfinished payout.
func (c *Client) GetStatus(ctx context.Context) (*ServerStatus, error) {
	var s ServerStatus
	if _, err := c.do(ctx, http.MethodGet, "/v1/status", nil, "", &s); err != nil {
		return nil, err
	}
	return &s, nil
}
