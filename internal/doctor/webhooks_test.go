package doctor

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

func TestWebhookEndpointsCheck(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t, f.rpcURL)
	if r := find(t, Run(t.Context(), cfg, Options{}), "webhook endpoints"); r.Status != OK || r.Detail != "none configured" {
		t.Fatalf("no endpoints: %+v", r)
	}
	db := f.openStore(t)
	defer db.Close()
	add := func(url string, change func(*payout.WebhookEndpoint)) *payout.WebhookEndpoint {
		e := &payout.WebhookEndpoint{ID: payout.NewWebhookEndpointID(time.Now()), URL: url, EnabledEvents: []string{"*"},
			Enabled: true, Secret: payout.NewWebhookSecret()}
		if err := db.CreateWebhookEndpoint(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		if change != nil {
			if _, err := db.UpdateWebhookEndpoint(t.Context(), e.ID, func(e *payout.WebhookEndpoint) error { change(e); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		return e
	}
	add("https://ok.example/hook", nil)
	add("https://paused.example/hook", func(e *payout.WebhookEndpoint) { e.Enabled, e.DisabledReason = false, payout.DisabledByUser })
	if r := find(t, Run(t.Context(), cfg, Options{}), "webhook endpoints"); r.Status != OK || !strings.Contains(r.Detail, "2, all delivering") {
		t.Fatalf("healthy and paused by the user: %+v, want OK", r)
	}

	failing := add("https://flaky.example/hook", func(e *payout.WebhookEndpoint) { e.FailingSince = time.Now().Add(-90 * time.Minute) })
	r := find(t, Run(t.Context(), cfg, Options{}), "webhook endpoints")
	if r.Status != Warn || !strings.Contains(r.Detail, failing.ID) || !strings.Contains(r.Detail, "1h30m") || !strings.Contains(r.Advice, "deliveries "+failing.ID) {
		t.Fatalf("a failing endpoint: %+v, want WARN naming it and for how long", r)
	}

	gone := add("https://gone.example/hook", func(e *payout.WebhookEndpoint) { e.Enabled, e.DisabledReason = false, payout.DisabledGone })
	r = find(t, Run(t.Context(), cfg, Options{}), "webhook endpoints")
	if r.Status != Fail || !strings.Contains(r.Detail, gone.ID) || !strings.Contains(r.Detail, payout.DisabledGone) || !strings.Contains(r.Advice, "--enable") {
		t.Fatalf("an endpoint Sluice disabled: %+v, want FAIL naming it and why", r)
	}
}
