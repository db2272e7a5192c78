package client

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Scopes an API key may hold. ScopePayoutsWrite includes ScopePayoutsRead;
// ScopeAdmin allows everything.
const (
	ScopePayoutsRead    = "payouts:read"
	ScopePayoutsWrite   = "payouts:write"
	ScopeBatchesWrite   = "batches:write"
	ScopeWebhooksManage = "webhooks:manage"
	ScopeAdmin          = "admin"
)

// APIKey is an API key made through the API. Secret is set only in the
// answer of CreateAPIKey: it cannot be read again.
type APIKey struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	Prefix         string     `json:"prefix"` // the secret's first characters, e.g. "sk_live_3f9a"
	Scopes         []string   `json:"scopes"`
	APIVersion     string     `json:"api_version"`
	RequireSigning bool       `json:"require_signing"`
	RateLimit      *RateLimit `json:"rate_limit"` // nil: the server's default
	// Labels are fixed when the key is made; policy rules read them as
	// api_key_labels.
	Labels     map[string]string `json:"labels"`
	CreatedAt  time.Time         `json:"created_at"`
	LastUsedAt *time.Time        `json:"last_used_at"` // written at most about once a minute
	RevokedAt  *time.Time        `json:"revoked_at"`
	Secret     string            `json:"secret,omitempty"`
}

// RateLimit is a key's token bucket: PerSecond requests a second, bursts
// of Burst.
type RateLimit struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst"`
}

// CreateAPIKeyParams describes a new key. Name and at least one scope are
// required; APIVersion defaults to the server's current version.
type CreateAPIKeyParams struct {
	Name           string     `json:"name"`
	Scopes         []string   `json:"scopes"`
	APIVersion     string     `json:"api_version,omitempty"`
	RequireSigning bool       `json:"require_signing,omitempty"`
	RateLimit      *RateLimit `json:"rate_limit,omitempty"`
	// Labels, e.g. {"team": "payroll"}, which policy rules read as
	// api_key_labels: at most 20, names of a-z, 0-9, _, - and . starting
	// with a letter, values of at most 200 printable characters.
	Labels map[string]string `json:"labels,omitempty"`
}

// APIKeyList is one page of API keys, newest first.
type APIKeyList struct {
	Data    []APIKey `json:"data"`
	HasMore bool     `json:"has_more"`
}

// CreateAPIKey makes a key (the admin scope is needed) and returns it with
// its Secret, shown only now. It is not retried: a retry after a lost
// answer would make a second key.
func (c *Client) CreateAPIKey(ctx context.Context, params CreateAPIKeyParams) (*APIKey, error) {
	body, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("sluice client: encode api key: %w", err)
	}
	var k APIKey
	if _, err := c.once(ctx, http.MethodPost, "/v1/api_keys", "application/json", body, "", &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// ListAPIKeys reads one page of the keys made through the API (limit
// 1-100, 0 for the server's default; startingAfter a key id or "").
func (c *Client) ListAPIKeys(ctx context.Context, limit int, startingAfter string) (*APIKeyList, error) {
	q := url.Values{}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if startingAfter != "" {
		q.Set("starting_after", startingAfter)
	}
	path := "/v1/api_keys"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var l APIKeyList
	if _, err := c.do(ctx, http.MethodGet, path, nil, "", &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// RevokeAPIKey revokes a key; it stops working at once on the server that
// answers and within seconds on the others. Revoking twice is harmless.
func (c *Client) RevokeAPIKey(ctx context.Context, id string) (*APIKey, error) {
	var k APIKey
	if _, err := c.do(ctx, http.MethodPost, "/v1/api_keys/"+url.PathEscape(id)+"/revoke", nil, "", &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// WithSigning signs every request with the client's API key, as keys made
// with RequireSigning must: a Sluice-Signature header over the time, the
// method, the path and query, and the body.
func WithSigning() Option {
	return func(c *Client) { c.signer = &requestSigner{key: SigningKey(c.apiKey), seen: map[string]int64{}} }
}

// WithVersion sends Sluice-Version: v with every request, instead of the
// version the API key is pinned to.
func WithVersion(v string) Option { return func(c *Client) { c.version = v } }

// SigningKey derives the HMAC key of request signatures from an API key's
// secret: HMAC-SHA256(key=secret, message="sluice-request-signing-v1").
func SigningKey(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("sluice-request-signing-v1"))
	return m.Sum(nil)
}

// requestSigner makes Sluice-Signature headers. The server accepts a
// signature once, so two identical requests in the same second (a retry,
// or a poll) would collide: a repeat gets the next second instead, well
// within the server's 5-minute tolerance.
type requestSigner struct {
	key []byte

	mu   sync.Mutex
	seen map[string]int64 // signature message without t → last t used
}

func (s *requestSigner) sign(now time.Time, method, target string, body []byte) string {
	t := now.Unix()
	msg := method + "." + target + "." + string(body)
	s.mu.Lock()
	if last, ok := s.seen[msg]; ok && last >= t {
		t = last + 1
	}
	s.seen[msg] = t
	if len(s.seen) > 10_000 {
		for m, last := range s.seen {
			if last < now.Unix()-1 {
				delete(s.seen, m)
			}
		}
	}
	s.mu.Unlock()
	m := hmac.New(sha256.New, s.key)
	ts := strconv.FormatInt(t, 10)
	m.Write([]byte(ts + "." + msg))
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}
