// Package client is a Go client for Sluice's REST API: create, read, list
// and cancel payouts, and list the chains and assets the server pays in.
//
// Errors the server answers come back as *Error, carrying the problem's
// status, stable code, detail, request id and field errors. Requests are
// retried with backoff on network errors, 5xx answers, 429 and
// 409 idempotency_key_in_use; a retried CreatePayout sends the same
// Idempotency-Key, so it never creates a second payout.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls one Sluice server with one API key. It is safe for
// concurrent use.
type Client struct {
	baseURL    string
	apiKey     string
	http       *http.Client
	retries    int
	minBackoff time.Duration
	maxBackoff time.Duration
	userAgent  string
	signer     *requestSigner // nil: requests are not signed
	version    string         // Sluice-Version to send; "": the key's
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client. Default: one with a 30 s timeout.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithRetries sets how many times a failed request is retried (default 3;
// 0 disables retries).
func WithRetries(n int) Option { return func(c *Client) { c.retries = max(0, n) } }

// WithBackoff sets the first and the longest wait between retries
// (default 200 ms and 5 s); waits double, with jitter.
func WithBackoff(first, longest time.Duration) Option {
	return func(c *Client) { c.minBackoff, c.maxBackoff = first, max(first, longest) }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for the server at baseURL (e.g.
// "http://127.0.0.1:8080") that authenticates with apiKey.
func New(baseURL, apiKey string, opts ...Option) *Client {
	c := &Client{
		baseURL: strings.TrimRight(baseURL, "/"), apiKey: apiKey,
		http: &http.Client{Timeout: 30 * time.Second}, retries: 3,
		minBackoff: 200 * time.Millisecond, maxBackoff: 5 * time.Second, userAgent: "sluice-go-client",
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// CreatePayout asks for a payout. idempotencyKey makes retries safe: the
// same key and parameters always give the same payout. When it is empty a
// random key is used for this call and its retries.
func (c *Client) CreatePayout(ctx context.Context, params CreatePayoutParams, idempotencyKey string) (*Payout, error) {
	if idempotencyKey == "" {
		idempotencyKey = NewIdempotencyKey()
	}
	body, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("sluice client: encode payout: %w", err)
	}
	var p Payout
	if _, err := c.do(ctx, http.MethodPost, "/v1/payouts", body, idempotencyKey, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// NewIdempotencyKey returns a random key for CreatePayout.
func NewIdempotencyKey() string { return "idk_" + rand.Text() }

// GetPayout reads one payout.
func (c *Client) GetPayout(ctx context.Context, id string) (*Payout, error) {
	var p Payout
	if _, err := c.do(ctx, http.MethodGet, "/v1/payouts/"+url.PathEscape(id), nil, "", &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// CancelPayout cancels a payout. A queued payout is cancelled at once. A
// payout already broadcast comes back with CancelRequested set and its
// status unchanged: Sluice races a zero-value self-transfer for its nonce,
// and the payout ends cancelled if that one is mined, else completed (with
// StatusReason cancel_lost_race). A mined or finished payout gives an
// *Error with code payout_not_cancellable. When a retry finds the payout
// already cancelled (the first try did it), the payout is returned.
func (c *Client) CancelPayout(ctx context.Context, id string) (*Payout, error) {
	var p Payout
	retried, err := c.do(ctx, http.MethodPost, "/v1/payouts/"+url.PathEscape(id)+"/cancel", nil, "", &p)
	if retried && ErrorCode(err) == "payout_not_cancellable" {
		if got, gerr := c.GetPayout(ctx, id); gerr == nil && got.Status == StatusCancelled {
			return got, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// SpeedUp sets a payout's own fee cap: the most its transaction may cost
// (gas limit × max fee per gas), in wei. A stuck payout is replaced at
// once with higher fees. A payout not in flight gives an *Error with code
// payout_not_in_flight. Repeating it is harmless.
func (c *Client) SpeedUp(ctx context.Context, id string, feeCap *big.Int) (*Payout, error) {
	if feeCap == nil || feeCap.Sign() <= 0 {
		return nil, fmt.Errorf("speed up %s: the fee cap must be positive", id)
	}
	body, err := json.Marshal(map[string]string{"fee_cap": feeCap.String()})
	if err != nil {
		return nil, err
	}
	var p Payout
	if _, err := c.do(ctx, http.MethodPost, "/v1/payouts/"+url.PathEscape(id)+"/speed-up", body, "", &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ListPayouts reads one page of payouts, newest first.
func (c *Client) ListPayouts(ctx context.Context, params ListPayoutsParams) (*PayoutList, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("status", string(params.Status))
	set("external_id", params.ExternalID)
	set("batch_id", params.BatchID)
	set("starting_after", params.StartingAfter)
	set("ending_before", params.EndingBefore)
	if params.Limit != 0 {
		q.Set("limit", strconv.Itoa(params.Limit))
	}
	path := "/v1/payouts"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var l PayoutList
	if _, err := c.do(ctx, http.MethodGet, path, nil, "", &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// PayoutPages iterates over pages of payouts from params on: towards older
// payouts, or towards newer ones when params.EndingBefore is set. An error
// is yielded once and ends the iteration.
//
//	for page, err := range c.PayoutPages(ctx, client.ListPayoutsParams{Limit: 100}) { … }
func (c *Client) PayoutPages(ctx context.Context, params ListPayoutsParams) iter.Seq2[*PayoutList, error] {
	return pages(func() (*PayoutList, error) { return c.ListPayouts(ctx, params) },
		func(l *PayoutList) ([]string, bool) {
			return idsOf(l.Data, func(p *Payout) string { return p.ID }), l.HasMore
		},
		&params.StartingAfter, &params.EndingBefore)
}

// pages iterates over the pages read reads, moving its cursor after each:
// *endingBefore to the page's first id when it is set (walking towards
// newer items), else *startingAfter to the last (towards older ones). An
// error is yielded once and ends the iteration.
func pages[L any](read func() (*L, error), ids func(*L) ([]string, bool), startingAfter, endingBefore *string) iter.Seq2[*L, error] {
	return func(yield func(*L, error) bool) {
		for {
			page, err := read()
			if err != nil {
				yield(nil, err)
				return
			}
			got, more := ids(page)
			if !yield(page, nil) || !more || len(got) == 0 {
				return
			}
			if *endingBefore != "" {
				*endingBefore = got[0]
			} else {
				*startingAfter = got[len(got)-1]
			}
		}
	}
}

// idsOf lists the ids of items.
func idsOf[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

// ListChains reads the chains the server pays on, with their assets and
// decimals.
func (c *Client) ListChains(ctx context.Context) ([]Chain, error) {
	var l struct {
		Data []Chain `json:"data"`
	}
	_, err := c.do(ctx, http.MethodGet, "/v1/chains", nil, "", &l)
	return l.Data, err
}

// do sends a request, retrying when that is safe and useful, and decodes
// a 2xx answer into out. It reports whether any retry was made.
func (c *Client) do(ctx context.Context, method, path string, body []byte, idemKey string, out any) (retried bool, err error) {
	return c.doAs(ctx, method, path, "application/json", body, idemKey, out)
}

// doAs is do with the body's content type. An out of type *[]byte gets the
// answer's bytes as they are.
func (c *Client) doAs(ctx context.Context, method, path, contentType string, body []byte, idemKey string, out any) (retried bool, err error) {
	for attempt := 0; ; attempt++ {
		var wait time.Duration
		wait, err = c.once(ctx, method, path, contentType, body, idemKey, out)
		if wait < 0 || attempt >= c.retries || ctx.Err() != nil {
			return attempt > 0, err
		}
		wait = max(wait, c.backoff(attempt))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt > 0, err
		case <-t.C:
		}
	}
}

// backoff is the wait before retry n+1: doubling from minBackoff, capped,
// with half of it random so that clients do not retry in step.
func (c *Client) backoff(n int) time.Duration {
	d := c.minBackoff << min(n, 20)
	if d <= 0 || d > c.maxBackoff {
		d = c.maxBackoff
	}
	return d/2 + mrand.N(d/2+1)
}

// once makes one attempt. It returns a negative wait when the outcome is
// final, else the least time to wait before retrying (0: backoff alone).
func (c *Client) once(ctx context.Context, method, path, contentType string, body []byte, idemKey string, out any) (time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, rd)
	if err != nil {
		return -1, fmt.Errorf("sluice client: %w", err)
	}
	c.authorize(req, body)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	if c.version != "" {
		req.Header.Set("Sluice-Version", c.version)
	}
	if c.signer != nil {
		req.Header.Set("Sluice-Signature", c.signer.sign(time.Now(), method, req.URL.RequestURI(), body))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("sluice client: %s %s: %w", method, stripQuery(path), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, fmt.Errorf("sluice client: %s %s: read answer: %w", method, stripQuery(path), err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if raw, ok := out.(*[]byte); ok {
			*raw = data
			return -1, nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return -1, fmt.Errorf("sluice client: %s %s: decode answer: %w", method, stripQuery(path), err)
		}
		return -1, nil
	}
	apiErr := parseError(resp, data)
	return retryWait(resp, apiErr), apiErr
}

// authorize sets what every request to the server carries: the API key
// and the User-Agent. body is the request's body (nil for none).
func (c *Client) authorize(req *http.Request, body []byte) {
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("User-Agent", c.userAgent)
}

// retryWait says whether an error answer is worth retrying and how long
// the server asked to wait.
func retryWait(resp *http.Response, e *Error) time.Duration {
	retryable := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode == http.StatusConflict && e.Code == "idempotency_key_in_use"
	if !retryable || resp.StatusCode == http.StatusNotImplemented {
		return -1
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		return min(time.Duration(s)*time.Second, time.Minute)
	}
	return 0
}

func stripQuery(path string) string {
	p, _, _ := strings.Cut(path, "?")
	return p
}

// ErrorCode returns the API error code of err ("" when err is not an
// *Error), for branching: ErrorCode(err) == "duplicate_external_id".
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// ListAttempts returns every signed transaction of a payout, oldest first.
func (c *Client) ListAttempts(ctx context.Context, payoutID string) ([]Attempt, error) {
	var out struct {
		Data []Attempt `json:"data"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/payouts/"+url.PathEscape(payoutID)+"/attempts", nil, "", &out); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// Rebroadcast asks the engine to send a submitted payout's stored signed
// transactions again to every usable upstream. Nothing new is signed.
func (c *Client) Rebroadcast(ctx context.Context, payoutID string) ([]BroadcastResult, error) {
	var out struct {
		Data []BroadcastResult `json:"data"`
	}
	if _, err := c.do(ctx, http.MethodPost, "/v1/payouts/"+url.PathEscape(payoutID)+"/rebroadcast", nil, "", &out); err != nil {
		return nil, err
	}
	return out.Data, nil
}
