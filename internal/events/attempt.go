package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// maxErrorLen bounds the error text kept per attempt.
const maxErrorLen = 200

// attempt sends one delivery and decides what follows from the answer.
func (d *Dispatcher) attempt(ctx context.Context, j job) payout.WebhookResult {
	at := d.cfg.Now()
	r := payout.WebhookResult{WebhookAttempt: payout.WebhookAttempt{DeliveryID: j.d.ID, Attempt: j.d.Attempts + 1, At: at},
		EndpointID: j.ep.ID}
	if r.Attempt == 1 && j.d.LastAttemptAt.IsZero() {
		d.m.lag.Observe(time.Since(j.ev.CreatedAt).Seconds())
	}
	start := time.Now()
	code, err := d.send(ctx, j, at)
	r.Duration = time.Since(start)
	d.m.duration.Observe(r.Duration.Seconds())
	r.StatusCode = code
	if err != nil {
		r.Error = truncate(err.Error(), maxErrorLen)
	}
	outcome := d.decide(&r, j)
	d.m.attempts.WithLabelValues(outcome).Inc()
	if outcome != outcomeSucceeded {
		d.log.Debug("webhook attempt failed", "delivery_id", j.d.ID, "endpoint_id", j.ep.ID, "event_id", j.ev.ID,
			"attempt", r.Attempt, "status_code", code, "err", r.Error, "outcome", outcome)
	}
	return r
}

// decide sets the delivery's status, its next attempt and whether the
// endpoint is disabled, and returns the outcome for the metrics.
func (d *Dispatcher) decide(r *payout.WebhookResult, j job) string {
	switch {
	case r.StatusCode >= 200 && r.StatusCode < 300:
		r.Status = payout.DeliverySucceeded
		return outcomeSucceeded
	case r.StatusCode == http.StatusGone:
		r.Status, r.Disable = payout.DeliveryFailed, payout.DisabledGone
		return outcomeGone
	}
	if r.Error == "" {
		r.Error = "HTTP " + strconv.Itoa(r.StatusCode)
	}
	if since := j.ep.FailingSince; !since.IsZero() && r.At.Sub(since) >= d.cfg.DisableAfter {
		// Pending deliveries wait for the endpoint to be enabled again.
		r.Disable = payout.DisabledFailing
	}
	if i := r.Attempt - 1; i < len(d.cfg.Schedule) {
		r.Status, r.NextAttemptAt = payout.DeliveryPending, r.At.Add(jitter(d.cfg.Schedule[i]))
		return outcomeRetry
	}
	r.Status = payout.DeliveryFailed
	return outcomeFailed
}

// send makes one signed POST and returns the status code, or the error
// that kept an answer from coming (code 0).
func (d *Dispatcher) send(ctx context.Context, j job, at time.Time) (int, error) {
	body := j.body
	if body == nil {
		var err error
		if body, err = j.ev.MarshalJSON(); err != nil {
			return 0, fmt.Errorf("encode event: %w", err)
		}
	}
	ts := at.Unix()
	sig, err := Signature(j.ep.Secrets(at), j.ev.ID, ts, body)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.ep.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Sluice-Webhooks/1")
	h.Set(HeaderID, j.ev.ID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, sig)
	resp, err := d.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("timed out after %s", d.cfg.Timeout)
		}
		if errors.Is(err, errRefusedTarget) {
			return 0, fmt.Errorf("refused: %w", unwrapRefused(err))
		}
		return 0, err
	}
	// Read a little so the connection can be reused; the body is not kept.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// unwrapRefused finds the dial refusal inside a transport error.
func unwrapRefused(err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if errors.Is(e, errRefusedTarget) && errors.Unwrap(e) == errRefusedTarget {
			return e
		}
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
