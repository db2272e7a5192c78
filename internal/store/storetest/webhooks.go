package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
)

// WebhookStore is what the webhook conformance tests need: the payout
// store (for the outbox) and the webhook store.
type WebhookStore interface {
	payout.Store
	payout.WebhookStore
}

// RunWebhooks runs the webhook conformance suite; open must return a new,
// empty store each time.
func RunWebhooks(t *testing.T, open func(t *testing.T) WebhookStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s WebhookStore)
	}{
		{"EndpointCRUD", testEndpointCRUD},
		{"EndpointPages", testEndpointPages},
		{"WebhookLease", testWebhookLease},
		{"FanOutAndClaim", testFanOutAndClaim},
		{"RecordResults", testRecordResults},
		{"DisableWritesOneEvent", testDisableWritesOneEvent},
		{"Redeliver", testRedeliver},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func newEndpoint(t *testing.T, s WebhookStore, events ...string) *payout.WebhookEndpoint {
	t.Helper()
	if len(events) == 0 {
		events = []string{payout.AllEventTypes}
	}
	e := &payout.WebhookEndpoint{ID: payout.NewWebhookEndpointID(time.Now()), URL: "https://example.com/hook",
		Description: "test", EnabledEvents: events, Enabled: true, Secret: payout.NewWebhookSecret()}
	if err := s.CreateWebhookEndpoint(ctx(t), e); err != nil {
		t.Fatalf("CreateWebhookEndpoint: %v", err)
	}
	return e
}

func testEndpointCRUD(t *testing.T, s WebhookStore) {
	e := newEndpoint(t, s, payout.StatusCompleted.EventType(), payout.StatusFailed.EventType())
	got, err := s.GetWebhookEndpoint(ctx(t), e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e, got); diff != "" {
		t.Errorf("read back (-stored +got):\n%s", diff)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	upd, err := s.UpdateWebhookEndpoint(ctx(t), e.ID, func(e *payout.WebhookEndpoint) error {
		e.URL, e.Enabled, e.DisabledReason = "https://example.org/new", false, payout.DisabledByUser
		e.Rotate(now)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetWebhookEndpoint(ctx(t), e.ID)
	if diff := cmp.Diff(upd, got); diff != "" {
		t.Errorf("update read back (-returned +got):\n%s", diff)
	}
	if got.URL != "https://example.org/new" || got.Enabled || got.PreviousSecret != e.Secret ||
		!got.PreviousSecretExpiresAt.Equal(now.Add(payout.PreviousSecretTTL)) || got.Secret == e.Secret {
		t.Errorf("after update: %+v", got)
	}
	refuse := errors.New("refused")
	if _, err := s.UpdateWebhookEndpoint(ctx(t), e.ID, func(e *payout.WebhookEndpoint) error {
		e.URL = "https://changed.example"
		return refuse
	}); !errors.Is(err, refuse) {
		t.Errorf("update with failing fn: %v", err)
	}
	if got, _ := s.GetWebhookEndpoint(ctx(t), e.ID); got.URL != "https://example.org/new" {
		t.Errorf("a refused update wrote %s", got.URL)
	}
	if _, err := s.UpdateWebhookEndpoint(ctx(t), "we_missing", func(*payout.WebhookEndpoint) error { return nil }); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("update missing: %v", err)
	}
	if err := s.DeleteWebhookEndpoint(ctx(t), e.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetWebhookEndpoint(ctx(t), e.ID); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
	if err := s.DeleteWebhookEndpoint(ctx(t), e.ID); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

func testEndpointPages(t *testing.T, s WebhookStore) {
	var all []string
	for range 5 {
		all = append([]string{newEndpoint(t, s).ID}, all...) // newest first
	}
	page1, more, err := s.ListWebhookEndpoints(ctx(t), payout.Page{Limit: 2})
	if err != nil || !more || len(page1) != 2 || page1[0].ID != all[0] || page1[1].ID != all[1] {
		t.Fatalf("page 1: %v more %v err %v", endpointIDs(page1), more, err)
	}
	page2, more, _ := s.ListWebhookEndpoints(ctx(t), payout.Page{Limit: 3, StartingAfter: page1[1].ID})
	if more || len(page2) != 3 || page2[2].ID != all[4] {
		t.Errorf("page 2: %v more %v", endpointIDs(page2), more)
	}
	back, more, _ := s.ListWebhookEndpoints(ctx(t), payout.Page{Limit: 2, EndingBefore: all[3]})
	if !more || len(back) != 2 || back[0].ID != all[1] || back[1].ID != all[2] {
		t.Errorf("ending_before: %v more %v", endpointIDs(back), more)
	}
}

func endpointIDs(eps []*payout.WebhookEndpoint) []string {
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = e.ID
	}
	return out
}

func testWebhookLease(t *testing.T, s WebhookStore) {
	cur, err := s.AcquireWebhookLease(ctx(t), "a", time.Minute)
	if err != nil || cur != 0 {
		t.Fatalf("first acquire: %d, %v", cur, err)
	}
	if _, err := s.AcquireWebhookLease(ctx(t), "b", time.Minute); !errors.Is(err, payout.ErrLeaseHeld) {
		t.Fatalf("b while a holds: %v", err)
	}
	if err := s.FanOutEvents(ctx(t), "a", 0, 7, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.FanOutEvents(ctx(t), "b", 7, 9, nil); !errors.Is(err, payout.ErrLeaseHeld) {
		t.Errorf("fan-out by a non-holder: %v", err)
	}
	if err := s.FanOutEvents(ctx(t), "a", 3, 9, nil); !errors.Is(err, payout.ErrLeaseHeld) {
		t.Errorf("fan-out from a stale cursor: %v", err)
	}
	if err := s.ReleaseWebhookLease(ctx(t), "a"); err != nil {
		t.Fatal(err)
	}
	if cur, err := s.AcquireWebhookLease(ctx(t), "b", 10*time.Millisecond); err != nil || cur != 7 {
		t.Fatalf("b after release: cursor %d, %v", cur, err)
	}
	time.Sleep(20 * time.Millisecond) // b crashes: its lease runs out
	if err := s.FanOutEvents(ctx(t), "b", 7, 8, nil); !errors.Is(err, payout.ErrLeaseHeld) {
		t.Errorf("fan-out on an expired lease: %v", err)
	}
	if cur, err := s.AcquireWebhookLease(ctx(t), "a", time.Minute); err != nil || cur != 7 {
		t.Fatalf("a takes over an expired lease: cursor %d, %v", cur, err)
	}
}

// appendEvents writes n events and returns them as the outbox holds them.
func appendEvents(t *testing.T, s WebhookStore, typ string, n int) []payout.Event {
	t.Helper()
	obj := payout.WalletObjectID(chainID, sender)
	before, err := s.ListEvents(ctx(t), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := s.AppendEvent(ctx(t), obj, typ, map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.ListEvents(ctx(t), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return evs[len(before):]
}

// fanOut delivers evs to ep, due at due, as the holder of the lease.
func fanOut(t *testing.T, s WebhookStore, ep *payout.WebhookEndpoint, evs []payout.Event, due time.Time) []*payout.WebhookDelivery {
	t.Helper()
	cur, err := s.AcquireWebhookLease(ctx(t), "owner", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var ds []*payout.WebhookDelivery
	for _, e := range evs {
		ds = append(ds, &payout.WebhookDelivery{ID: payout.NewWebhookDeliveryID(time.Now()), EndpointID: ep.ID, EventID: e.ID,
			EventType: e.Type, EventSeq: e.Seq, Status: payout.DeliveryPending, NextAttemptAt: due})
	}
	if err := s.FanOutEvents(ctx(t), "owner", cur, evs[len(evs)-1].Seq, ds); err != nil {
		t.Fatal(err)
	}
	return ds
}

func testFanOutAndClaim(t *testing.T, s WebhookStore) {
	ep, off := newEndpoint(t, s), newEndpoint(t, s)
	evs := appendEvents(t, s, payout.EventWalletLowBalance, 3)
	now := time.Now().UTC().Truncate(time.Microsecond)
	fanOut(t, s, ep, evs[:2], now.Add(-time.Second))
	fanOut(t, s, off, evs[2:], now.Add(-time.Second))
	if _, err := s.UpdateWebhookEndpoint(ctx(t), off.ID, func(e *payout.WebhookEndpoint) error {
		e.Enabled, e.DisabledReason = false, payout.DisabledByUser
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	until := now.Add(time.Minute)
	due, err := s.ClaimDueDeliveries(ctx(t), now, until, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 2 {
		t.Fatalf("claimed %d, want the enabled endpoint's 2", len(due))
	}
	for i, d := range due {
		if d.Endpoint.ID != ep.ID || d.Endpoint.Secret != ep.Secret || d.Event.ID != evs[i].ID ||
			string(d.Event.Data) != string(evs[i].Data) || d.Delivery.EventSeq != evs[i].Seq || d.Delivery.Attempts != 0 {
			t.Errorf("due %d: %+v %+v", i, d.Delivery, d.Event)
		}
	}
	if again, _ := s.ClaimDueDeliveries(ctx(t), now, until, 10, nil); len(again) != 0 {
		t.Errorf("claimed again before until: %d", len(again))
	}
	if later, _ := s.ClaimDueDeliveries(ctx(t), until, until.Add(time.Minute), 1, nil); len(later) != 1 {
		t.Errorf("claim after until (limit 1): %d", len(later))
	}
	// The caller's own deliveries in flight are neither returned nor moved.
	end := until.Add(time.Minute)
	busy := map[string]struct{}{due[0].Delivery.ID: {}, due[1].Delivery.ID: {}}
	if got, err := s.ClaimDueDeliveries(ctx(t), end, end.Add(time.Minute), 1, busy); err != nil || len(got) != 0 {
		t.Errorf("claim with both in flight: %d, %v", len(got), err)
	}
	if got, _ := s.ClaimDueDeliveries(ctx(t), end, end.Add(time.Minute), 2, nil); len(got) != 2 {
		t.Errorf("the in-flight ones stayed due: %d claimed, want 2", len(got))
	}
}

func testRecordResults(t *testing.T, s WebhookStore) {
	ep := newEndpoint(t, s)
	evs := appendEvents(t, s, payout.EventWalletLowBalance, 2)
	now := time.Now().UTC().Truncate(time.Microsecond)
	ds := fanOut(t, s, ep, evs, now)
	next := now.Add(5 * time.Second)
	err := s.RecordWebhookResults(ctx(t), []payout.WebhookResult{
		{WebhookAttempt: payout.WebhookAttempt{DeliveryID: ds[0].ID, Attempt: 1, At: now, StatusCode: 500, Error: "HTTP 500", Duration: 3 * time.Millisecond},
			EndpointID: ep.ID, Status: payout.DeliveryPending, NextAttemptAt: next},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetWebhookEndpoint(ctx(t), ep.ID)
	if !got.FailingSince.Equal(now) {
		t.Errorf("FailingSince = %v, want %v", got.FailingSince, now)
	}
	later := now.Add(10 * time.Second)
	err = s.RecordWebhookResults(ctx(t), []payout.WebhookResult{
		{WebhookAttempt: payout.WebhookAttempt{DeliveryID: ds[0].ID, Attempt: 2, At: later, StatusCode: 204, Duration: time.Millisecond},
			EndpointID: ep.ID, Status: payout.DeliverySucceeded},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetWebhookEndpoint(ctx(t), ep.ID); !got.FailingSince.IsZero() {
		t.Errorf("FailingSince after a success = %v", got.FailingSince)
	}
	list, _, err := s.ListWebhookDeliveries(ctx(t), ep.ID, payout.Page{Limit: 10})
	if err != nil || len(list) != 2 {
		t.Fatalf("deliveries: %d, %v", len(list), err)
	}
	d := list[1] // oldest last
	if d.ID != ds[0].ID || d.Status != payout.DeliverySucceeded || d.Attempts != 2 || d.LastStatusCode != 204 ||
		!d.LastAttemptAt.Equal(later) || !d.NextAttemptAt.IsZero() {
		t.Errorf("delivery after success: %+v", d)
	}
	attempts, err := s.ListWebhookAttempts(ctx(t), ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []payout.WebhookAttempt{
		{DeliveryID: ds[0].ID, Attempt: 1, At: now, StatusCode: 500, Error: "HTTP 500", Duration: 3 * time.Millisecond},
		{DeliveryID: ds[0].ID, Attempt: 2, At: later, StatusCode: 204, Duration: time.Millisecond},
	}
	if diff := cmp.Diff(want, attempts); diff != "" {
		t.Errorf("attempt log (-want +got):\n%s", diff)
	}
	if _, err := s.ListWebhookAttempts(ctx(t), "wd_missing"); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("attempts of a missing delivery: %v", err)
	}
	if as, err := s.ListWebhookAttempts(ctx(t), ds[1].ID); err != nil || len(as) != 0 {
		t.Errorf("attempts of a delivery not yet tried: %v, %v", as, err)
	}
	// An endpoint deleted while its delivery was being sent: that result
	// is skipped and the rest of the batch recorded.
	gone := newEndpoint(t, s)
	goneDs := fanOut(t, s, gone, evs[:1], now)
	if err := s.DeleteWebhookEndpoint(ctx(t), gone.ID); err != nil {
		t.Fatal(err)
	}
	err = s.RecordWebhookResults(ctx(t), []payout.WebhookResult{
		{WebhookAttempt: payout.WebhookAttempt{DeliveryID: goneDs[0].ID, Attempt: 1, At: later, StatusCode: 200}, EndpointID: gone.ID, Status: payout.DeliverySucceeded},
		{WebhookAttempt: payout.WebhookAttempt{DeliveryID: ds[1].ID, Attempt: 1, At: later, StatusCode: 200}, EndpointID: ep.ID, Status: payout.DeliverySucceeded},
	})
	if err != nil {
		t.Fatalf("a batch with a deleted delivery: %v", err)
	}
	if list, _, _ := s.ListWebhookDeliveries(ctx(t), ep.ID, payout.Page{Limit: 10}); list[0].ID != ds[1].ID || list[0].Status != payout.DeliverySucceeded {
		t.Errorf("the other result of that batch: %+v", list[0])
	}
	if _, _, err := s.ListWebhookDeliveries(ctx(t), "we_missing", payout.Page{}); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("deliveries of a missing endpoint: %v", err)
	}
}

func testDisableWritesOneEvent(t *testing.T, s WebhookStore) {
	ep := newEndpoint(t, s)
	evs := appendEvents(t, s, payout.EventWalletLowBalance, 2)
	now := time.Now().UTC().Truncate(time.Microsecond)
	ds := fanOut(t, s, ep, evs, now)
	for i, d := range ds {
		err := s.RecordWebhookResults(ctx(t), []payout.WebhookResult{{
			WebhookAttempt: payout.WebhookAttempt{DeliveryID: d.ID, Attempt: 1, At: now, StatusCode: 410, Error: "HTTP 410"},
			EndpointID:     ep.ID, Status: payout.DeliveryFailed, Disable: payout.DisabledGone}})
		if err != nil {
			t.Fatalf("result %d: %v", i, err)
		}
	}
	got, _ := s.GetWebhookEndpoint(ctx(t), ep.ID)
	if got.Enabled || got.DisabledReason != payout.DisabledGone {
		t.Errorf("endpoint after 410: enabled %v reason %q", got.Enabled, got.DisabledReason)
	}
	all, _ := s.ListEvents(ctx(t), 0, 1000)
	var disabled []payout.Event
	for _, e := range all {
		if e.Type == payout.EventWebhookEndpointDisabled {
			disabled = append(disabled, e)
		}
	}
	if len(disabled) != 1 || disabled[0].ObjectID != ep.ID {
		t.Fatalf("%d disabled events, want 1 about %s: %v", len(disabled), ep.ID, disabled)
	}
	if string(disabled[0].Data) == "" || !strings.Contains(string(disabled[0].Data), `"status":"disabled"`) || strings.Contains(string(disabled[0].Data), "whsec_") {
		t.Errorf("event data %s: want the disabled endpoint without its secret", disabled[0].Data)
	}
}

func testRedeliver(t *testing.T, s WebhookStore) {
	completed := newEndpoint(t, s, payout.StatusCompleted.EventType())
	everything := newEndpoint(t, s)
	evs := appendEvents(t, s, payout.EventWalletLowBalance, 1)
	now := time.Now().UTC().Truncate(time.Microsecond)
	ds, err := s.RedeliverEvent(ctx(t), evs[0].ID, "", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].EndpointID != everything.ID {
		t.Fatalf("redeliver to matching endpoints: %+v", ds)
	}
	// Named: sent even though its filter does not match; twice is one delivery.
	for range 2 {
		if ds, err = s.RedeliverEvent(ctx(t), evs[0].ID, completed.ID, now); err != nil || len(ds) != 1 {
			t.Fatalf("redeliver to one endpoint: %v %v", ds, err)
		}
	}
	if list, _, _ := s.ListWebhookDeliveries(ctx(t), completed.ID, payout.Page{}); len(list) != 1 || list[0].Status != payout.DeliveryPending {
		t.Errorf("deliveries of the named endpoint: %+v", list)
	}
	due, _ := s.ClaimDueDeliveries(ctx(t), now, now.Add(time.Minute), 10, nil)
	if len(due) != 2 {
		t.Errorf("%d due after redelivery, want 2", len(due))
	}
	if _, err := s.RedeliverEvent(ctx(t), "evt_missing", "", now); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("missing event: %v", err)
	}
	if _, err := s.RedeliverEvent(ctx(t), evs[0].ID, "we_missing", now); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("missing endpoint: %v", err)
	}
}
