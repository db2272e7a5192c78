package events_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/events"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

func TestDeliversSignedEvents(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, nil)
	all, completed := newReceiver(t), newReceiver(t)
	epAll := addEndpoint(t, db, all.srv.URL+"/hook")
	epCompleted := addEndpoint(t, db, completed.srv.URL, payout.StatusCompleted.EventType())
	all.setSecrets(epAll.Secret)
	completed.setSecrets(epCompleted.Secret)
	reg := prometheus.NewRegistry()
	start(t, events.Config{Store: db, Committed: db.Committed, Registerer: reg})

	appendEvents(t, db, payout.StatusSubmitted.EventType(), 3)
	appendEvents(t, db, payout.StatusCompleted.EventType(), 2)
	evs := allEvents(t, db)
	eventually(t, "5 deliveries to * and 2 to payout.completed", func() bool {
		return len(all.accepted()) == 5 && len(completed.accepted()) == 2
	})
	byID := map[string]payout.Event{}
	for _, e := range evs {
		byID[e.ID] = e
	}
	for _, r := range []*receiver{all, completed} {
		for _, d := range r.accepted() {
			e, ok := byID[d.id]
			if !ok || !d.verified || string(d.body) != wire(t, e) {
				t.Errorf("delivery %s: verified %v, body %s, want %s", d.id, d.verified, d.body, wire(t, e))
			}
		}
	}
	for _, d := range completed.accepted() {
		if byID[d.id].Type != payout.StatusCompleted.EventType() {
			t.Errorf("filtered endpoint got %s", byID[d.id].Type)
		}
	}
	eventually(t, "deliveries recorded succeeded", func() bool {
		ds, _, err := db.ListWebhookDeliveries(context.Background(), epAll.ID, payout.Page{Limit: 100})
		if err != nil || len(ds) != 5 {
			return false
		}
		for _, d := range ds {
			if d.Status != payout.DeliverySucceeded || d.Attempts != 1 || d.LastStatusCode != 200 {
				return false
			}
		}
		return true
	})
	want := map[string]float64{
		`sluice_webhook_attempts_total{outcome="succeeded"}`: 7, `sluice_webhook_attempts_total{outcome="retry"}`: 0,
		"sluice_webhook_attempt_duration_seconds_count": 7, "sluice_webhook_first_attempt_lag_seconds_count": 7,
		"sluice_webhook_queue_depth": 0,
	}
	eventually(t, "metrics", func() bool { return cmp.Equal(metricValues(t, reg, want), want) })
}

// metricValues reads the series named in want ("name" or
// `name{label="value"}`) from reg.
func metricValues(t *testing.T, reg *prometheus.Registry, want map[string]float64) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += fmt.Sprintf(`{%s=%q}`, l.GetName(), l.GetValue())
			}
			var v float64
			switch {
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				name, v = name+"_count", float64(m.GetHistogram().GetSampleCount())
			}
			if _, ok := want[name]; ok {
				got[name] = v
			}
		}
	}
	return got
}

// TestReceiverDownForAnHour: a receiver that answers 503 for an hour (on
// the injected clock) gets every event once it is back.
func TestReceiverDownForAnHour(t *testing.T) {
	t.Parallel()
	clk := newClock()
	db := openSQLite(t, clk)
	r := newReceiver(t)
	var down atomic.Bool
	down.Store(true)
	var refused atomic.Int64
	r.setStatus(func(string) int {
		if down.Load() {
			refused.Add(1)
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	ep := addEndpoint(t, db, r.srv.URL)
	r.setSecrets(ep.Secret)
	start(t, events.Config{Store: db, Committed: db.Committed, Now: clk.Now})
	appendEvents(t, db, payout.StatusCompleted.EventType(), 50)
	eventually(t, "every first attempt refused", func() bool { return refused.Load() >= 50 })
	for elapsed := time.Duration(0); elapsed < time.Hour; elapsed += time.Minute {
		clk.Advance(time.Minute)
		time.Sleep(15 * time.Millisecond) // a poll or two
	}
	before := refused.Load()
	if before < 100 {
		t.Errorf("%d refused attempts in the hour, want the 5 s and 5 min retries too", before)
	}
	down.Store(false)
	for i := 0; len(r.accepted()) < 50 && i < 6*60; i++ { // up to 6 hours more
		clk.Advance(time.Minute)
		time.Sleep(10 * time.Millisecond)
	}
	got := ids(r.accepted())
	for _, e := range allEvents(t, db) {
		if got[e.ID] != 1 {
			t.Errorf("event %s arrived %d times, want 1", e.ID, got[e.ID])
		}
	}
	if e, _ := db.GetWebhookEndpoint(context.Background(), ep.ID); !e.Enabled || !e.FailingSince.IsZero() {
		t.Errorf("endpoint after recovery: enabled %v failing since %v", e.Enabled, e.FailingSince)
	}
}

// TestRetrySchedule: a receiver that always fails gets attempts on the
// documented schedule (within jitter), is disabled after 3 days without a
// success, and a webhook_endpoint.disabled event is written.
func TestRetryScheduleAndDisable(t *testing.T) {
	t.Parallel()
	clk := newClock()
	db := openSQLite(t, clk)
	r := newReceiver(t)
	var tries atomic.Int64
	r.setStatus(func(string) int { tries.Add(1); return http.StatusInternalServerError })
	ep := addEndpoint(t, db, r.srv.URL, payout.StatusFailed.EventType())
	start(t, events.Config{Store: db, Committed: db.Committed, Now: clk.Now})
	appendEvents(t, db, payout.StatusFailed.EventType(), 1)
	// Each time the delivery is recorded, move the clock to its next attempt.
	delivery := func() *payout.WebhookDelivery {
		ds, _, err := db.ListWebhookDeliveries(context.Background(), ep.ID, payout.Page{})
		if err != nil || len(ds) > 1 {
			t.Fatalf("deliveries %v, %v", ds, err)
		}
		if len(ds) == 0 {
			return &payout.WebhookDelivery{} // not fanned out yet
		}
		return ds[0]
	}
	for n := 1; n <= 10; n++ {
		eventually(t, fmt.Sprintf("attempt %d recorded", n), func() bool { return delivery().Attempts == n })
		if d := delivery(); d.Status == payout.DeliveryPending {
			clk.Set(d.NextAttemptAt)
		}
	}
	ds := []*payout.WebhookDelivery{delivery()}
	attempts, err := db.ListWebhookAttempts(context.Background(), ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	// The endpoint is disabled by the attempt at or after 72 h: attempt 10
	// (at about 75 h 35 min) is the first past it.
	if len(attempts) != 10 {
		t.Fatalf("%d attempts, want 10", len(attempts))
	}
	for i := 1; i < len(attempts); i++ {
		gap := attempts[i].At.Sub(attempts[i-1].At)
		want := events.DefaultSchedule[i-1]
		lo, hi := want, time.Duration(float64(want)*1.2)
		if gap < lo || gap > hi {
			t.Errorf("wait before attempt %d = %s, want %s ±10%%", i+1, gap, want)
		}
		if attempts[i].StatusCode != 500 || attempts[i].Error != "HTTP 500" {
			t.Errorf("attempt %d: %+v", i+1, attempts[i])
		}
	}
	e, _ := db.GetWebhookEndpoint(context.Background(), ep.ID)
	if e.Enabled || e.DisabledReason != payout.DisabledFailing {
		t.Errorf("endpoint: enabled %v reason %q, want disabled %q", e.Enabled, e.DisabledReason, payout.DisabledFailing)
	}
	if ds[0].Status != payout.DeliveryFailed {
		t.Errorf("delivery status %s after the last attempt, want failed", ds[0].Status)
	}
	var disabled int
	for _, ev := range allEvents(t, db) {
		if ev.Type == payout.EventWebhookEndpointDisabled && ev.ObjectID == ep.ID {
			disabled++
		}
	}
	if disabled != 1 {
		t.Errorf("%d %s events, want 1", disabled, payout.EventWebhookEndpointDisabled)
	}
}

func TestGoneDisablesAtOnce(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, nil)
	r := newReceiver(t)
	var tries atomic.Int64
	r.setStatus(func(string) int { tries.Add(1); return http.StatusGone })
	ep := addEndpoint(t, db, r.srv.URL, payout.StatusCompleted.EventType())
	start(t, events.Config{Store: db, Committed: db.Committed})
	appendEvents(t, db, payout.StatusCompleted.EventType(), 1)
	eventually(t, "endpoint disabled", func() bool {
		e, _ := db.GetWebhookEndpoint(context.Background(), ep.ID)
		return !e.Enabled && e.DisabledReason == payout.DisabledGone
	})
	appendEvents(t, db, payout.StatusCompleted.EventType(), 3)
	time.Sleep(100 * time.Millisecond)
	if n := tries.Load(); n != 1 {
		t.Errorf("%d attempts, want 1: a disabled endpoint gets nothing", n)
	}
	ds, _, _ := db.ListWebhookDeliveries(context.Background(), ep.ID, payout.Page{})
	if len(ds) != 1 || ds[0].Status != payout.DeliveryFailed || ds[0].LastStatusCode != 410 {
		t.Errorf("deliveries: %+v", ds)
	}
}

// failRecording is a store whose RecordWebhookResults fails, as if the
// process died between sending and recording.
type failRecording struct {
	*store.DB
	calls atomic.Int64
}

func (f *failRecording) RecordWebhookResults(context.Context, []payout.WebhookResult) error {
	f.calls.Add(1)
	return errors.New("killed before recording")
}

func (f *failRecording) ReleaseWebhookLease(context.Context, string) error { return nil } // a crash releases nothing

func TestCrashBetweenSendAndRecordResends(t *testing.T) {
	t.Parallel()
	clk := newClock()
	db := openSQLite(t, clk)
	r := newReceiver(t)
	ep := addEndpoint(t, db, r.srv.URL)
	r.setSecrets(ep.Secret)
	crashing := &failRecording{DB: db}
	first, err := events.New(events.Config{Store: crashing, Committed: db.Committed, Now: clk.Now, Owner: "first",
		Logger: quiet, Poll: 10 * time.Millisecond, AllowPrivateTargets: true})
	if err != nil {
		t.Fatal(err)
	}
	first.Start(context.Background())
	appendEvents(t, db, payout.StatusCompleted.EventType(), 3)
	eventually(t, "3 sent, none recorded", func() bool { return len(r.accepted()) == 3 && crashing.calls.Load() > 0 })
	first.Stop()

	start(t, events.Config{Store: db, Committed: db.Committed, Now: clk.Now, Owner: "second", LeaseTTL: time.Minute})
	time.Sleep(50 * time.Millisecond)
	if n := len(r.accepted()); n != 3 {
		t.Fatalf("%d deliveries before the first owner's lease and claims ran out, want 3", n)
	}
	clk.Advance(2 * time.Minute) // past the lease (15 s) and the claim (90 s)
	eventually(t, "the 3 events sent again", func() bool { return len(r.accepted()) == 6 })
	for id, n := range ids(r.accepted()) {
		if n != 2 {
			t.Errorf("event %s arrived %d times, want 2 (once before the crash, once after)", id, n)
		}
	}
	eventually(t, "recorded", func() bool {
		ds, _, _ := db.ListWebhookDeliveries(context.Background(), ep.ID, payout.Page{})
		return len(ds) == 3 && !slices.ContainsFunc(ds, func(d *payout.WebhookDelivery) bool { return d.Status != payout.DeliverySucceeded })
	})
}

// TestOneDispatcherAtATime runs two dispatchers on one PostgreSQL
// database: every event is delivered once, and when the holder dies
// without releasing its lease the other takes over.
func TestOneDispatcherAtATime(t *testing.T) {
	t.Parallel()
	db := openPostgres(t, nil)
	r := newReceiver(t)
	ep := addEndpoint(t, db, r.srv.URL)
	r.setSecrets(ep.Secret)
	first, err := events.New(events.Config{Store: noRelease{db}, Committed: db.Committed, Owner: "a", Logger: quiet,
		Poll: 10 * time.Millisecond, LeaseTTL: 300 * time.Millisecond, AllowPrivateTargets: true})
	if err != nil {
		t.Fatal(err)
	}
	first.Start(context.Background())
	time.Sleep(50 * time.Millisecond) // a takes the lease
	start(t, events.Config{Store: db, Committed: db.Committed, Owner: "b", LeaseTTL: 300 * time.Millisecond})
	appendEvents(t, db, payout.StatusCompleted.EventType(), 100)
	eventually(t, "100 deliveries", func() bool { return len(r.accepted()) >= 100 })
	time.Sleep(100 * time.Millisecond)
	for id, n := range ids(r.accepted()) {
		if n != 1 {
			t.Errorf("event %s arrived %d times with two dispatchers, want once", id, n)
		}
	}
	first.Stop() // a "crashes": its lease is not released
	appendEvents(t, db, payout.StatusCompleted.EventType(), 20)
	eventually(t, "b takes over and delivers 20 more", func() bool { return len(r.accepted()) >= 120 })
	if got := ids(r.accepted()); len(got) != 120 {
		t.Errorf("%d distinct events delivered, want 120", len(got))
	}
}

// noRelease keeps a dispatcher's lease when it stops, as a crash would.
type noRelease struct{ *store.DB }

func (noRelease) ReleaseWebhookLease(context.Context, string) error { return nil }

func TestRotationSignsWithBothSecrets(t *testing.T) {
	t.Parallel()
	clk := newClock()
	db := openSQLite(t, clk)
	r := newReceiver(t)
	ep := addEndpoint(t, db, r.srv.URL)
	old := ep.Secret
	rotated, err := db.UpdateWebhookEndpoint(context.Background(), ep.ID, func(e *payout.WebhookEndpoint) error {
		e.Rotate(clk.Now())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, events.Config{Store: db, Committed: db.Committed, Now: clk.Now})
	appendEvents(t, db, payout.StatusCompleted.EventType(), 1)
	eventually(t, "delivery", func() bool { return len(r.accepted()) == 1 })
	d := r.accepted()[0]
	sigs := strings.Fields(d.signature)
	if len(sigs) != 2 {
		t.Fatalf("signature %q: want two during rotation", d.signature)
	}
	for i, secret := range []string{rotated.Secret, old} {
		one := d
		one.signature = sigs[i]
		if !verifyOne(secret, one) {
			t.Errorf("signature %d does not verify with the %s secret", i, []string{"new", "old"}[i])
		}
	}
	clk.Advance(payout.PreviousSecretTTL + time.Second)
	appendEvents(t, db, payout.StatusCompleted.EventType(), 1)
	eventually(t, "second delivery", func() bool { return len(r.accepted()) == 2 })
	d = r.accepted()[1]
	if sigs := strings.Fields(d.signature); len(sigs) != 1 || !verifyOne(rotated.Secret, d) {
		t.Errorf("after 24 h: signature %q, want only the new secret's", d.signature)
	}
}

func verifyOne(secret string, d delivery) bool { return verify([]string{secret}, d) }

func TestTimeoutAndRedirectAreFailures(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, nil)
	target := newReceiver(t)
	redirect := http.NewServeMux()
	redirect.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.srv.URL, http.StatusFound)
	})
	redir := newReceiver(t)
	redir.srv.Config.Handler = redirect
	slow := newReceiver(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	epRedirect := addEndpoint(t, db, redir.srv.URL)
	epSlow := addEndpoint(t, db, slow.srv.URL)
	start(t, events.Config{Store: db, Committed: db.Committed, Timeout: time.Second})
	appendEvents(t, db, payout.StatusCompleted.EventType(), 1)
	want := map[string]func(d *payout.WebhookDelivery) bool{
		epRedirect.ID: func(d *payout.WebhookDelivery) bool { return d.LastStatusCode == 302 && d.LastError == "HTTP 302" },
		epSlow.ID: func(d *payout.WebhookDelivery) bool {
			return d.LastStatusCode == 0 && strings.Contains(d.LastError, "timed out")
		},
	}
	for id, ok := range want {
		eventually(t, "failed attempt of "+id, func() bool {
			ds, _, _ := db.ListWebhookDeliveries(context.Background(), id, payout.Page{})
			return len(ds) == 1 && ds[0].Status == payout.DeliveryPending && ds[0].Attempts >= 1 && ok(ds[0])
		})
	}
	if n := len(target.accepted()); n != 0 {
		t.Errorf("the redirect was followed: target got %d", n)
	}
}

// countingStore counts the dispatcher's claims and event reads.
type countingStore struct {
	*store.DB
	claims atomic.Int64
	lists  atomic.Int64
}

func (c *countingStore) ListEvents(ctx context.Context, afterSeq int64, limit int) ([]payout.Event, error) {
	c.lists.Add(1)
	return c.DB.ListEvents(ctx, afterSeq, limit)
}

func (c *countingStore) ClaimDueDeliveries(ctx context.Context, now, until time.Time, limit int, inFlight map[string]struct{}) ([]payout.DueDelivery, error) {
	c.claims.Add(1)
	return c.DB.ClaimDueDeliveries(ctx, now, until, limit, inFlight)
}

// TestIdleDispatcherDoesNotSpin: the dispatcher is woken by every commit,
// so none of its idle rounds may commit (that once made it spin thousands
// of times a second), also with due deliveries of a disabled endpoint.
func TestIdleDispatcherDoesNotSpin(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, nil)
	ep := addEndpoint(t, db, "http://127.0.0.1:9/")
	appendEvents(t, db, payout.StatusCompleted.EventType(), 1)
	if _, err := db.RedeliverEvent(context.Background(), allEvents(t, db)[0].ID, ep.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateWebhookEndpoint(context.Background(), ep.ID, func(e *payout.WebhookEndpoint) error {
		e.Enabled, e.DisabledReason = false, payout.DisabledByUser
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{DB: db}
	start(t, events.Config{Store: cs, Committed: db.Committed, Poll: 100 * time.Millisecond})
	time.Sleep(200 * time.Millisecond) // the first rounds: lease, fan-out of the event
	var commits atomic.Int64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-db.Committed():
				commits.Add(1)
			case <-stop:
				return
			}
		}
	}()
	before := cs.claims.Load()
	time.Sleep(time.Second)
	close(stop)
	if n, c := commits.Load(), cs.claims.Load()-before; n > 2 || c > 15 {
		t.Errorf("idle for 1 s: %d commits and %d claims, want at most 2 (lease renewals) and about 10 (polls)", n, c)
	}
}

// TestSlowReceiverDoesNotHoldFanOut: with every sender stuck on a receiver
// that does not answer, new events are still fanned out (stored as due
// deliveries) and the lease keeps being renewed, so the cursor is current
// and no other instance takes over.
func TestSlowReceiverDoesNotHoldFanOut(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, nil)
	slow := newReceiver(t)
	release := make(chan struct{})
	slow.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	fast := newReceiver(t)
	addEndpoint(t, db, slow.srv.URL)
	epFast := addEndpoint(t, db, fast.srv.URL)
	start(t, events.Config{Store: db, Committed: db.Committed, Workers: 1, Timeout: time.Minute, LeaseTTL: 300 * time.Millisecond})
	appendEvents(t, db, payout.StatusCompleted.EventType(), 50)
	eventually(t, "50 deliveries fanned out to the fast endpoint", func() bool {
		ds, _, _ := db.ListWebhookDeliveries(context.Background(), epFast.ID, payout.Page{Limit: 100})
		return len(ds) == 50
	})
	time.Sleep(500 * time.Millisecond) // longer than the lease
	if _, err := db.AcquireWebhookLease(context.Background(), "intruder", time.Minute); !errors.Is(err, payout.ErrLeaseHeld) {
		t.Errorf("another instance took the lease while the senders were stuck: %v", err)
	}
}

// TestFailingEndpointDoesNotHoldTheOthers: an endpoint whose receiver
// hangs gets one attempt at a time once one stalled, so the senders keep
// serving a healthy endpoint instead of waiting out a timeout per delivery.
func TestFailingEndpointDoesNotHoldTheOthers(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, nil)
	var hung atomic.Int64
	hanging := newReceiver(t)
	release := make(chan struct{})
	hanging.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	healthy := newReceiver(t)
	addEndpoint(t, db, hanging.srv.URL)
	addEndpoint(t, db, healthy.srv.URL)
	start(t, events.Config{Store: db, Committed: db.Committed, Workers: 4, Timeout: time.Second})
	const n = 60
	appendEvents(t, db, payout.StatusCompleted.EventType(), n)
	// Without the gate the 4 senders would spend a 1 s timeout on each of
	// the hanging endpoint's 60 deliveries, interleaved: about 15 s.
	began := time.Now()
	for len(healthy.accepted()) < n {
		if time.Since(began) > 6*time.Second {
			t.Fatalf("the healthy endpoint got %d of %d deliveries in 6 s while the other hangs", len(healthy.accepted()), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := hung.Load(); got > 8 {
		t.Errorf("the hanging endpoint got %d attempts in %s; want it probed one at a time once it stalled", got, time.Since(began).Round(time.Millisecond))
	}
}

// TestNoEndpointSkipsEventsUnread: with no endpoint enabled the dispatcher
// moves its cursor past new events without reading them (a busy engine
// writes hundreds a second that nobody wants), and the first endpoint
// created afterwards still gets every event after its creation.
func TestNoEndpointSkipsEventsUnread(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, nil)
	cs := &countingStore{DB: db}
	start(t, events.Config{Store: cs, Committed: db.Committed})
	appendEvents(t, db, payout.StatusCompleted.EventType(), 200)
	last, err := db.LastEventSeq(context.Background())
	if err != nil || last != 200 {
		t.Fatalf("LastEventSeq = %d, %v; want 200", last, err)
	}
	eventually(t, "the cursor past the 200 events", func() bool {
		return cs.claims.Load() == 0 && cursorOf(t, db) == last
	})
	if n := cs.lists.Load(); n != 0 {
		t.Errorf("the events were read %d times with no endpoint to deliver them to", n)
	}
	rcv := newReceiver(t)
	ep := addEndpoint(t, db, rcv.srv.URL)
	rcv.setSecrets(ep.Secret)
	time.Sleep(20 * time.Millisecond) // events created after the endpoint
	appendEvents(t, db, payout.StatusSubmitted.EventType(), 3)
	eventually(t, "the 3 events after the endpoint delivered", func() bool { return len(rcv.accepted()) == 3 })
	old := map[string]bool{}
	for _, e := range allEvents(t, db)[:200] {
		old[e.ID] = true
	}
	for _, d := range rcv.accepted() {
		if old[d.id] || !d.verified {
			t.Errorf("delivery %s: an event from before the endpoint (%v), or unverified", d.id, old[d.id])
		}
	}
}

// cursorOf reads the dispatcher's cursor by renewing its lease as its
// owner ("test", see start).
func cursorOf(t testing.TB, db *store.DB) int64 {
	t.Helper()
	c, err := db.AcquireWebhookLease(context.Background(), "test", 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
