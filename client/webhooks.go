package client

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// WebhookEndpoint is a URL that receives the events whose types it
// enables, signed with its own secret (Standard Webhooks v1).
type WebhookEndpoint struct {
	ID            string   `json:"id"` // we_…
	Object        string   `json:"object"`
	URL           string   `json:"url"`
	Description   string   `json:"description"`
	EnabledEvents []string `json:"enabled_events"` // event types, or ["*"]
	Status        string   `json:"status"`         // "enabled" or "disabled"
	// DisabledReason is "" while enabled, else disabled_by_user, gone (it
	// answered 410) or failing (no success for 3 days).
	DisabledReason string    `json:"disabled_reason"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	// Secret (whsec_…) is set only by CreateWebhookEndpoint and
	// RotateWebhookSecret: the server shows it at no other time.
	Secret string `json:"secret,omitempty"`
}

// CreateWebhookEndpointParams describe a new endpoint.
type CreateWebhookEndpointParams struct {
	URL           string   `json:"url"`
	EnabledEvents []string `json:"enabled_events"` // e.g. payout.completed, or "*" alone
	Description   string   `json:"description,omitempty"`
}

// UpdateWebhookEndpointParams change the fields that are set.
type UpdateWebhookEndpointParams struct {
	URL           *string  `json:"url,omitempty"`
	EnabledEvents []string `json:"enabled_events,omitempty"`
	Description   *string  `json:"description,omitempty"`
	// Enabled false disables the endpoint; true enables it again and its
	// pending deliveries go out.
	Enabled *bool `json:"enabled,omitempty"`
}

// PageParams select a page of a list, newest first.
type PageParams struct {
	StartingAfter string // an id: older items
	EndingBefore  string // an id: newer items
	Limit         int    // 1..100; 0 for the server's default (10)
}

func (p PageParams) query() string {
	q := url.Values{}
	if p.StartingAfter != "" {
		q.Set("starting_after", p.StartingAfter)
	}
	if p.EndingBefore != "" {
		q.Set("ending_before", p.EndingBefore)
	}
	if p.Limit != 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// WebhookEndpointList is one page of endpoints.
type WebhookEndpointList struct {
	Data    []WebhookEndpoint `json:"data"`
	HasMore bool              `json:"has_more"`
}

// WebhookDelivery is one event sent to one endpoint, however many
// attempts it takes.
type WebhookDelivery struct {
	ID         string `json:"id"` // wd_…
	EndpointID string `json:"endpoint_id"`
	EventID    string `json:"event_id"`
	EventType  string `json:"event_type"`
	// Status is pending (its next attempt is NextAttemptAt), succeeded or
	// failed.
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	LastStatusCode int        `json:"last_status_code"` // 0: no answer came
	LastError      string     `json:"last_error"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// WebhookDeliveryList is one page of deliveries.
type WebhookDeliveryList struct {
	Data    []WebhookDelivery `json:"data"`
	HasMore bool              `json:"has_more"`
}

// CreateWebhookEndpoint registers an endpoint; the answer carries its
// Secret, shown only now. Not idempotent: a retry after a lost answer may
// make a second endpoint (list and delete it).
func (c *Client) CreateWebhookEndpoint(ctx context.Context, params CreateWebhookEndpointParams) (*WebhookEndpoint, error) {
	body, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("sluice client: encode endpoint: %w", err)
	}
	var e WebhookEndpoint
	if _, err := c.do(ctx, http.MethodPost, "/v1/webhook_endpoints", body, "", &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// GetWebhookEndpoint reads one endpoint (without its secret).
func (c *Client) GetWebhookEndpoint(ctx context.Context, id string) (*WebhookEndpoint, error) {
	var e WebhookEndpoint
	if _, err := c.do(ctx, http.MethodGet, "/v1/webhook_endpoints/"+url.PathEscape(id), nil, "", &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// ListWebhookEndpoints reads one page of endpoints, newest first.
func (c *Client) ListWebhookEndpoints(ctx context.Context, params PageParams) (*WebhookEndpointList, error) {
	var l WebhookEndpointList
	if _, err := c.do(ctx, http.MethodGet, "/v1/webhook_endpoints"+params.query(), nil, "", &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// UpdateWebhookEndpoint changes the fields params set.
func (c *Client) UpdateWebhookEndpoint(ctx context.Context, id string, params UpdateWebhookEndpointParams) (*WebhookEndpoint, error) {
	body, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("sluice client: encode endpoint: %w", err)
	}
	var e WebhookEndpoint
	if _, err := c.do(ctx, http.MethodPost, "/v1/webhook_endpoints/"+url.PathEscape(id), body, "", &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// DeleteWebhookEndpoint removes an endpoint with its delivery log. When a
// retry finds it gone (the first try deleted it), that is success.
func (c *Client) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	var out struct{}
	retried, err := c.do(ctx, http.MethodDelete, "/v1/webhook_endpoints/"+url.PathEscape(id), nil, "", &out)
	if retried && ErrorCode(err) == "not_found" {
		return nil
	}
	return err
}

// RotateWebhookSecret gives the endpoint a new secret, returned in
// Secret; for 24 hours deliveries are signed with both.
func (c *Client) RotateWebhookSecret(ctx context.Context, id string) (*WebhookEndpoint, error) {
	var e WebhookEndpoint
	if _, err := c.do(ctx, http.MethodPost, "/v1/webhook_endpoints/"+url.PathEscape(id)+"/rotate_secret", nil, "", &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// ListWebhookDeliveries reads one page of an endpoint's delivery log,
// newest first.
func (c *Client) ListWebhookDeliveries(ctx context.Context, endpointID string, params PageParams) (*WebhookDeliveryList, error) {
	var l WebhookDeliveryList
	path := "/v1/webhook_endpoints/" + url.PathEscape(endpointID) + "/deliveries" + params.query()
	if _, err := c.do(ctx, http.MethodGet, path, nil, "", &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// RedeliverEvent sends an event again: to endpointID, or to every enabled
// endpoint whose filter matches when endpointID is "". It returns the
// deliveries made pending.
func (c *Client) RedeliverEvent(ctx context.Context, eventID, endpointID string) ([]WebhookDelivery, error) {
	var body []byte
	if endpointID != "" {
		body, _ = json.Marshal(map[string]string{"endpoint_id": endpointID})
	}
	var l WebhookDeliveryList
	if _, err := c.do(ctx, http.MethodPost, "/v1/events/"+url.PathEscape(eventID)+"/redeliver", body, "", &l); err != nil {
		return nil, err
	}
	return l.Data, nil
}

// Errors of VerifyWebhook.
var (
	ErrWebhookHeaders   = errors.New("sluice webhook: webhook-id, webhook-timestamp or webhook-signature is missing or malformed")
	ErrWebhookTimestamp = errors.New("sluice webhook: webhook-timestamp is outside the tolerance")
	ErrWebhookSignature = errors.New("sluice webhook: no signature matches")
	ErrWebhookSecret    = errors.New("sluice webhook: the secret must be whsec_ followed by base64")
)

// DefaultWebhookTolerance is how far webhook-timestamp may be from now.
const DefaultWebhookTolerance = 5 * time.Minute

// VerifyWebhook checks a delivery the Standard Webhooks v1 way: the
// webhook-timestamp is within tolerance of now (DefaultWebhookTolerance
// when 0), and one of the space-separated webhook-signature entries is
// "v1," and the base64 HMAC-SHA256, keyed with the secret's base64-decoded
// part after whsec_, of "webhook-id.webhook-timestamp.body". Pass the body
// exactly as received. Decode it into an Event after it verified, and drop
// repeats by webhook-id: delivery is at least once.
func VerifyWebhook(secret string, header http.Header, body []byte, tolerance time.Duration) error {
	return verifyWebhook(secret, header, body, tolerance, time.Now())
}

func verifyWebhook(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return ErrWebhookSecret
	}
	id, ts, sigs := header.Get("webhook-id"), header.Get("webhook-timestamp"), header.Get("webhook-signature")
	unix, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || sigs == "" || err != nil {
		return ErrWebhookHeaders
	}
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return ErrWebhookTimestamp
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	for _, entry := range strings.Fields(sigs) {
		if sig, ok := strings.CutPrefix(entry, "v1,"); ok && hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	return ErrWebhookSignature
}

// WebhookAttempt is one try of a delivery.
type WebhookAttempt struct {
	DeliveryID  string    `json:"delivery_id"`
	Attempt     int       `json:"attempt"` // 1 for the first
	AttemptedAt time.Time `json:"attempted_at"`
	StatusCode  int       `json:"status_code"` // 0: no answer came
	Error       string    `json:"error"`       // "" on success
	DurationMS  float64   `json:"duration_ms"`
}

// ListWebhookAttempts returns every attempt of a delivery, oldest first.
func (c *Client) ListWebhookAttempts(ctx context.Context, deliveryID string) ([]WebhookAttempt, error) {
	var l struct {
		Data []WebhookAttempt `json:"data"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/webhook_deliveries/"+url.PathEscape(deliveryID)+"/attempts", nil, "", &l); err != nil {
		return nil, err
	}
	return l.Data, nil
}
