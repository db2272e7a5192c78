package client_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/events"
	"github.com/sluicepay/sluice/internal/payout"
)

func TestWebhookEndpointsRoundTrip(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil, nil)
	c := client.New(s.url, apiKey, fast()...)
	ctx := context.Background()
	ep, err := c.CreateWebhookEndpoint(ctx, client.CreateWebhookEndpointParams{URL: "http://127.0.0.1:9/hook",
		EnabledEvents: []string{"payout.created", "payout.completed"}, Description: "books"})
	if err != nil {
		t.Fatal(err)
	}
	if ep.Secret == "" || ep.Status != "enabled" || ep.DisabledReason != "" || len(ep.EnabledEvents) != 2 {
		t.Errorf("created: %+v", ep)
	}
	got, err := c.GetWebhookEndpoint(ctx, ep.ID)
	if err != nil || got.Secret != "" || got.URL != ep.URL || got.Description != "books" {
		t.Errorf("get: %+v, %v", got, err)
	}
	off := false
	upd, err := c.UpdateWebhookEndpoint(ctx, ep.ID, client.UpdateWebhookEndpointParams{Enabled: &off, EnabledEvents: []string{"*"}})
	if err != nil || upd.Status != "disabled" || upd.DisabledReason != "disabled_by_user" || upd.EnabledEvents[0] != "*" {
		t.Errorf("update: %+v, %v", upd, err)
	}
	rot, err := c.RotateWebhookSecret(ctx, ep.ID)
	if err != nil || rot.Secret == "" || rot.Secret == ep.Secret {
		t.Errorf("rotate: %+v, %v", rot, err)
	}
	list, err := c.ListWebhookEndpoints(ctx, client.PageParams{Limit: 10})
	if err != nil || len(list.Data) != 1 || list.Data[0].ID != ep.ID || list.HasMore {
		t.Errorf("list: %+v, %v", list, err)
	}
	if _, err := c.CreatePayout(ctx, params(1500), ""); err != nil {
		t.Fatal(err)
	}
	evs, err := c.ListEvents(ctx, client.ListEventsParams{})
	if err != nil || len(evs.Data) != 1 {
		t.Fatalf("events: %+v, %v", evs, err)
	}
	ds, err := c.RedeliverEvent(ctx, evs.Data[0].ID, ep.ID)
	if err != nil || len(ds) != 1 || ds[0].EventID != evs.Data[0].ID || ds[0].Status != "pending" {
		t.Errorf("redeliver: %+v, %v", ds, err)
	}
	log, err := c.ListWebhookDeliveries(ctx, ep.ID, client.PageParams{})
	if err != nil || len(log.Data) != 1 || log.Data[0].EventType != "payout.created" || log.Data[0].NextAttemptAt == nil {
		t.Errorf("deliveries: %+v, %v", log, err)
	}
	if as, err := c.ListWebhookAttempts(ctx, log.Data[0].ID); err != nil || len(as) != 0 {
		t.Errorf("attempts of a delivery not yet tried: %+v, %v", as, err)
	}
	if _, err := c.ListWebhookAttempts(ctx, "wd_missing"); client.ErrorCode(err) != "not_found" {
		t.Errorf("attempts of a missing delivery: %v", err)
	}
	if err := c.DeleteWebhookEndpoint(ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetWebhookEndpoint(ctx, ep.ID); client.ErrorCode(err) != "not_found" {
		t.Errorf("get after delete: %v", err)
	}
	_, err = c.CreateWebhookEndpoint(ctx, client.CreateWebhookEndpointParams{URL: "http://127.0.0.1:9/", EnabledEvents: []string{"payout.nope"}})
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Code != "unknown_event_type" || apiErr.Status != 422 {
		t.Errorf("unknown type: %v", err)
	}
}

func TestVerifyWebhook(t *testing.T) {
	t.Parallel()
	oldSecret, newSecret := payout.NewWebhookSecret(), payout.NewWebhookSecret()
	body := []byte(`{"id":"evt_1","object":"event","type":"payout.completed"}`)
	now := time.Now().Unix()
	header := func(secrets []string, ts int64, b []byte) http.Header {
		sig, err := events.Signature(secrets, "evt_1", ts, b) // the dispatcher's signing
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		h.Set("webhook-id", "evt_1")
		h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		h.Set("webhook-signature", sig)
		return h
	}
	noID := header([]string{oldSecret}, now, body)
	noID.Del("webhook-id")
	tests := []struct {
		name   string
		secret string
		h      http.Header
		body   []byte
		want   error
	}{
		{"valid", oldSecret, header([]string{oldSecret}, now, body), body, nil},
		{"rotation, new secret", newSecret, header([]string{newSecret, oldSecret}, now, body), body, nil},
		{"rotation, old secret", oldSecret, header([]string{newSecret, oldSecret}, now, body), body, nil},
		{"other secret", newSecret, header([]string{oldSecret}, now, body), body, client.ErrWebhookSignature},
		{"body changed", oldSecret, header([]string{oldSecret}, now, body), append([]byte(" "), body...), client.ErrWebhookSignature},
		{"too old", oldSecret, header([]string{oldSecret}, now-301, body), body, client.ErrWebhookTimestamp},
		{"from the future", oldSecret, header([]string{oldSecret}, now+301, body), body, client.ErrWebhookTimestamp},
		{"no id", oldSecret, noID, body, client.ErrWebhookHeaders},
		{"bad secret", "whsec_!!", header([]string{oldSecret}, now, body), body, client.ErrWebhookSecret},
	}
	for _, tc := range tests {
		if err := client.VerifyWebhook(tc.secret, tc.h, tc.body, 0); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
