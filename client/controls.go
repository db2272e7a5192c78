package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Pause scopes.
const (
	PauseGlobal = "global"
	PauseChain  = "chain"
	PauseAsset  = "asset"
	PauseWallet = "wallet"
)

// Pause is an emergency pause: while ResumedAt is nil no new payout it
// matches is signed.
type Pause struct {
	ID        string     `json:"id"`
	Scope     string     `json:"scope"`
	Chain     string     `json:"chain,omitempty"`
	Asset     string     `json:"asset,omitempty"`
	Wallet    string     `json:"wallet,omitempty"`
	Reason    string     `json:"reason"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ResumedBy string     `json:"resumed_by,omitempty"`
	ResumedAt *time.Time `json:"resumed_at"`
	// CancelsRequested is set in the answer to a pause made with
	// CancelInFlight: how many payouts already broadcast it asked to cancel.
	CancelsRequested *int `json:"cancels_requested,omitempty"`
}

// CreatePauseParams describes a pause: Scope is PauseGlobal, PauseChain
// (Chain), PauseAsset (Chain and Asset) or PauseWallet (Wallet, optionally
// Chain). Reason is required.
type CreatePauseParams struct {
	Scope  string `json:"scope"`
	Chain  string `json:"chain,omitempty"`
	Asset  string `json:"asset,omitempty"`
	Wallet string `json:"wallet,omitempty"`
	Reason string `json:"reason"`
	// CancelInFlight also asks a cancel of every payout in the scope whose
	// transaction is broadcast and not yet mined.
	CancelInFlight bool `json:"cancel_in_flight,omitempty"`
}

// PauseList holds the pauses in force, oldest first.
type PauseList struct {
	Data    []*Pause `json:"data"`
	HasMore bool     `json:"has_more"`
}

// CreatePause pauses payments; senders see it within 100 ms.
func (c *Client) CreatePause(ctx context.Context, p CreatePauseParams) (*Pause, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("sluice: encode pause: %w", err)
	}
	var out Pause
	if _, err := c.do(ctx, http.MethodPost, "/v1/pauses", body, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListPauses returns the pauses in force.
func (c *Client) ListPauses(ctx context.Context) (*PauseList, error) {
	var out PauseList
	if _, err := c.do(ctx, http.MethodGet, "/v1/pauses", nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ResumePause ends a pause (error code pause_already_resumed when it had
// ended).
func (c *Client) ResumePause(ctx context.Context, id string) (*Pause, error) {
	var out Pause
	if _, err := c.do(ctx, http.MethodPost, "/v1/pauses/"+url.PathEscape(id)+"/resume", nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeletePause is ResumePause through DELETE /v1/pauses/{id}.
func (c *Client) DeletePause(ctx context.Context, id string) (*Pause, error) {
	var out Pause
	if _, err := c.do(ctx, http.MethodDelete, "/v1/pauses/"+url.PathEscape(id), nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AuditEntry is one entry of the hash-chained audit log. Details are kept
// as the exact bytes the server hashed.
type AuditEntry struct {
	Seq      int64           `json:"seq"`
	Time     time.Time       `json:"time"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Object   string          `json:"object"`
	Details  json.RawMessage `json:"details"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// AuditList is one page of the audit log, in seq order.
type AuditList struct {
	Data    []*AuditEntry `json:"data"`
	HasMore bool          `json:"has_more"`
}

// ListAuditParams pages the audit log: entries after After (a seq; 0 for
// the start), at most Limit (1-1000; 0 for the server's default).
type ListAuditParams struct {
	After int64
	Limit int
}

// ListAudit returns one page of the audit log.
func (c *Client) ListAudit(ctx context.Context, p ListAuditParams) (*AuditList, error) {
	q := url.Values{}
	if p.After > 0 {
		q.Set("after", fmt.Sprint(p.After))
	}
	if p.Limit > 0 {
		q.Set("limit", fmt.Sprint(p.Limit))
	}
	path := "/v1/audit"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out AuditList
	if _, err := c.do(ctx, http.MethodGet, path, nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}
