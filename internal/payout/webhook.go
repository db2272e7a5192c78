package payout

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CodeInvalidWebhookURL refuses a webhook URL that is not http(s), has
// userinfo, or resolves to an address the config does not allow.
const CodeInvalidWebhookURL Code = "invalid_webhook_url"

// AllEventTypes, as a webhook endpoint's only enabled event type, selects
// every event.
const AllEventTypes = "*"

// WebhookSecretPrefix starts every webhook signing secret (Standard
// Webhooks); the rest is the base64 of the key bytes.
const WebhookSecretPrefix = "whsec_"

// PreviousSecretTTL is how long a rotated-out secret keeps signing
// deliveries next to the new one, so receivers can switch without a gap.
const PreviousSecretTTL = 24 * time.Hour

// Why a webhook endpoint is disabled.
const (
	DisabledByUser    = "disabled_by_user" // POST .../{id} with enabled false
	DisabledGone      = "gone"             // it answered 410 Gone
	DisabledFailing   = "failing"          // no success for the disable window
	webhookEndpointID = "we_"
)

// WebhookEndpoint is a URL that receives events whose type it enabled.
type WebhookEndpoint struct {
	ID            string
	URL           string
	Description   string
	EnabledEvents []string // event types, or just AllEventTypes
	// Enabled endpoints receive deliveries; a disabled one keeps its
	// pending deliveries until it is enabled again.
	Enabled        bool
	DisabledReason string // one of the Disabled… reasons when !Enabled
	Secret         string // whsec_…
	// PreviousSecret also signs deliveries until PreviousSecretExpiresAt.
	PreviousSecret          string
	PreviousSecretExpiresAt time.Time
	// FailingSince is the first failed attempt since the last success;
	// zero while the endpoint is healthy.
	FailingSince time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// NewWebhookEndpointID returns a new endpoint id (we_…).
func NewWebhookEndpointID(now time.Time) string { return DefaultIDs.New(webhookEndpointID, now) }

// Matches reports whether the endpoint wants events of type t.
func (e *WebhookEndpoint) Matches(t string) bool {
	for _, et := range e.EnabledEvents {
		if et == AllEventTypes || et == t {
			return true
		}
	}
	return false
}

// Secrets returns the secrets that sign a delivery made at now: the
// current one, then the previous one while it is kept.
func (e *WebhookEndpoint) Secrets(now time.Time) []string {
	if e.PreviousSecret != "" && now.Before(e.PreviousSecretExpiresAt) {
		return []string{e.Secret, e.PreviousSecret}
	}
	return []string{e.Secret}
}

// Rotate replaces the secret with a new one; the old one keeps signing for
// PreviousSecretTTL.
func (e *WebhookEndpoint) Rotate(now time.Time) {
	e.PreviousSecret, e.PreviousSecretExpiresAt = e.Secret, now.Add(PreviousSecretTTL)
	e.Secret = NewWebhookSecret()
	e.UpdatedAt = now
}

// wireEndpoint is an endpoint as the API and the webhook_endpoint.disabled
// event show it: never with its secret.
type wireEndpoint struct {
	ID             string    `json:"id"`
	Object         string    `json:"object"`
	URL            string    `json:"url"`
	Description    string    `json:"description"`
	EnabledEvents  []string  `json:"enabled_events"`
	Status         string    `json:"status"`
	DisabledReason *string   `json:"disabled_reason"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// MarshalJSON writes the endpoint without its secrets; status is "enabled"
// or "disabled" (with disabled_reason).
func (e *WebhookEndpoint) MarshalJSON() ([]byte, error) {
	w := wireEndpoint{ID: e.ID, Object: "webhook_endpoint", URL: e.URL, Description: e.Description,
		EnabledEvents: e.EnabledEvents, Status: "enabled", CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC()}
	if w.EnabledEvents == nil {
		w.EnabledEvents = []string{}
	}
	if !e.Enabled {
		w.Status, w.DisabledReason = "disabled", &e.DisabledReason
	}
	return json.Marshal(w)
}

// NewWebhookSecret returns a new signing secret: whsec_ and the base64 of
// 32 random bytes.
func NewWebhookSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return WebhookSecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// WebhookSecretKey returns the key bytes of a whsec_ secret.
func WebhookSecretKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, WebhookSecretPrefix))
	if err != nil || len(key) == 0 {
		return nil, errors.New("webhook secret must be whsec_ followed by base64")
	}
	return key, nil
}

// CheckEnabledEvents returns a *FieldError (CodeUnknownEventType) naming
// the first type that is neither an event type nor "*", and one
// (CodeInvalidRequest) when the list is empty or mixes "*" with types.
func CheckEnabledEvents(types []string) error {
	if len(types) == 0 {
		return &FieldError{Field: "enabled_events", Code: CodeInvalidRequest,
			Message: `enabled_events needs at least one event type, or "*" for all`}
	}
	for i, t := range types {
		if t == AllEventTypes {
			if len(types) > 1 {
				return &FieldError{Field: "enabled_events", Code: CodeInvalidRequest,
					Message: `"*" selects every event type; list it alone`}
			}
			continue
		}
		if !KnownEventType(t) {
			return &FieldError{Field: fmt.Sprintf("enabled_events/%d", i), Code: CodeUnknownEventType,
				Message: fmt.Sprintf("unknown event type %q; event types are %s, or \"*\"", truncateValue(t), strings.Join(EventTypes(), ", "))}
		}
	}
	return nil
}

func truncateValue(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// DeliveryStatus is where a webhook delivery stands.
type DeliveryStatus string

// Delivery statuses: pending (waiting for its next attempt), succeeded (a
// 2xx came back), failed (every scheduled attempt failed, or the endpoint
// answered 410).
const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliverySucceeded DeliveryStatus = "succeeded"
	DeliveryFailed    DeliveryStatus = "failed"
)

// WebhookDelivery is one event sent to one endpoint, however many attempts
// it takes.
type WebhookDelivery struct {
	ID             string // wd_…
	EndpointID     string
	EventID        string
	EventType      string
	EventSeq       int64 // the event's position in the outbox
	Status         DeliveryStatus
	Attempts       int
	NextAttemptAt  time.Time // zero once it is no longer pending
	LastAttemptAt  time.Time // zero before the first attempt
	LastStatusCode int       // 0 when the last attempt got no answer
	LastError      string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// NewWebhookDeliveryID returns a new delivery id (wd_…).
func NewWebhookDeliveryID(now time.Time) string { return DefaultIDs.New("wd_", now) }

type wireAttempt struct {
	Object      string    `json:"object"`
	DeliveryID  string    `json:"delivery_id"`
	Attempt     int       `json:"attempt"`
	AttemptedAt time.Time `json:"attempted_at"`
	StatusCode  *int      `json:"status_code"`
	Error       *string   `json:"error"`
	DurationMS  float64   `json:"duration_ms"`
}

// MarshalJSON writes the attempt as the API shows it: no status code
// (null) when no answer came, no error (null) on success.
func (a WebhookAttempt) MarshalJSON() ([]byte, error) {
	w := wireAttempt{Object: "webhook_attempt", DeliveryID: a.DeliveryID, Attempt: a.Attempt, AttemptedAt: a.At.UTC(),
		DurationMS: float64(a.Duration.Microseconds()) / 1000}
	if a.StatusCode != 0 {
		w.StatusCode = &a.StatusCode
	}
	if a.Error != "" {
		w.Error = &a.Error
	}
	return json.Marshal(w)
}

type wireDelivery struct {
	ID             string     `json:"id"`
	Object         string     `json:"object"`
	EndpointID     string     `json:"endpoint_id"`
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	LastStatusCode *int       `json:"last_status_code"`
	LastError      *string    `json:"last_error"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// MarshalJSON writes the delivery as the API shows it; absent times, codes
// and errors are null.
func (d *WebhookDelivery) MarshalJSON() ([]byte, error) {
	w := wireDelivery{ID: d.ID, Object: "webhook_delivery", EndpointID: d.EndpointID, EventID: d.EventID,
		EventType: d.EventType, Status: string(d.Status), Attempts: d.Attempts,
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}
	if d.Status == DeliveryPending && !d.NextAttemptAt.IsZero() {
		t := d.NextAttemptAt.UTC()
		w.NextAttemptAt = &t
	}
	if !d.LastAttemptAt.IsZero() {
		t := d.LastAttemptAt.UTC()
		w.LastAttemptAt = &t
		if d.LastStatusCode != 0 {
			w.LastStatusCode = &d.LastStatusCode
		}
		if d.LastError != "" {
			w.LastError = &d.LastError
		}
	}
	return json.Marshal(w)
}

// WebhookAttempt is one try of a delivery, as the attempt log keeps it.
type WebhookAttempt struct {
	DeliveryID string
	Attempt    int // 1 for the first
	At         time.Time
	StatusCode int    // 0 when no answer came
	Error      string // why it failed; "" on success
	Duration   time.Duration
}

// WebhookResult is the outcome of one attempt, with what it decides for
// the delivery and its endpoint.
type WebhookResult struct {
	WebhookAttempt
	EndpointID string
	// Status is the delivery's new status; NextAttemptAt is when a pending
	// one is tried again.
	Status        DeliveryStatus
	NextAttemptAt time.Time
	// Disable, when not "", disables the endpoint for that reason (and
	// writes EventWebhookEndpointDisabled once).
	Disable string
}

// DueDelivery is a delivery to attempt now, with its event and endpoint.
type DueDelivery struct {
	Delivery *WebhookDelivery
	Event    Event
	Endpoint *WebhookEndpoint
}

// Page selects a page of a list, newest first: Limit items after the
// StartingAfter id (older) or before the EndingBefore id (newer).
type Page struct {
	StartingAfter string
	EndingBefore  string
	Limit         int
}

// WebhookStore persists webhook endpoints, their deliveries and attempt
// log, and the dispatcher's cursor and lease. Every method is atomic.
type WebhookStore interface {
	// CreateWebhookEndpoint stores a new endpoint.
	CreateWebhookEndpoint(ctx context.Context, e *WebhookEndpoint) error
	// GetWebhookEndpoint returns ErrNotFound when there is no such endpoint.
	GetWebhookEndpoint(ctx context.Context, id string) (*WebhookEndpoint, error)
	// ListWebhookEndpoints returns endpoints newest first and whether more
	// exist beyond the page.
	ListWebhookEndpoints(ctx context.Context, p Page) ([]*WebhookEndpoint, bool, error)
	// UpdateWebhookEndpoint reads the endpoint, lets fn change it and
	// writes it back, in one transaction. ErrNotFound when it is absent;
	// an error from fn is returned as it is and nothing is written.
	UpdateWebhookEndpoint(ctx context.Context, id string, fn func(*WebhookEndpoint) error) (*WebhookEndpoint, error)
	// DeleteWebhookEndpoint removes an endpoint with its deliveries and
	// their attempt log. ErrNotFound when it is absent.
	DeleteWebhookEndpoint(ctx context.Context, id string) error
	// ListWebhookDeliveries returns an endpoint's deliveries newest first.
	// ErrNotFound when the endpoint is absent.
	ListWebhookDeliveries(ctx context.Context, endpointID string, p Page) ([]*WebhookDelivery, bool, error)
	// ListWebhookAttempts returns a delivery's attempts, oldest first.
	// ErrNotFound when the delivery is absent.
	ListWebhookAttempts(ctx context.Context, deliveryID string) ([]WebhookAttempt, error)
	// RedeliverEvent makes the event's delivery to endpointID, or to every
	// endpoint whose filter matches when endpointID is "", pending and due
	// at now (creating deliveries that do not exist). ErrNotFound when the
	// event or the named endpoint is absent.
	RedeliverEvent(ctx context.Context, eventID, endpointID string, now time.Time) ([]*WebhookDelivery, error)

	// EnabledWebhookEndpoints returns every enabled endpoint.
	EnabledWebhookEndpoints(ctx context.Context) ([]*WebhookEndpoint, error)
	// AcquireWebhookLease makes owner the only dispatcher until now+ttl
	// and returns the outbox position fan-out has reached. ErrLeaseHeld
	// when another owner holds an unexpired lease.
	AcquireWebhookLease(ctx context.Context, owner string, ttl time.Duration) (int64, error)
	// ReleaseWebhookLease gives the lease up if owner holds it.
	ReleaseWebhookLease(ctx context.Context, owner string) error
	// FanOutEvents stores deliveries (new, pending) and moves the cursor
	// from `from` to `to` in one transaction. ErrLeaseHeld, writing
	// nothing, when owner no longer holds the lease or the cursor moved.
	FanOutEvents(ctx context.Context, owner string, from, to int64, ds []*WebhookDelivery) error
	// ClaimDueDeliveries returns up to limit pending deliveries of enabled
	// endpoints due at now, oldest due first, leaving out the ids in
	// inFlight (the caller's own, being sent), and sets their next attempt
	// to until, so a dispatcher that dies while sending retries them then.
	ClaimDueDeliveries(ctx context.Context, now, until time.Time, limit int, inFlight map[string]struct{}) ([]DueDelivery, error)
	// RecordWebhookResults stores attempts: the attempt log, each
	// delivery's new state, each endpoint's health (FailingSince), and
	// disables endpoints a result says to disable, writing
	// EventWebhookEndpointDisabled for each one it disabled.
	RecordWebhookResults(ctx context.Context, rs []WebhookResult) error
}
