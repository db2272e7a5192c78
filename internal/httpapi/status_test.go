package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	// Without upstream reports every chain has none usable: degraded.
	r := e.do("GET", "/v1/status", "")
	var got statusView
	if err := json.Unmarshal(r.body, &got); err != nil || r.status != http.StatusOK {
		t.Fatalf("GET /v1/status = %d %s", r.status, r.body)
	}
	if got.Status != "degraded" || got.Oldest != nil || len(got.Chains) != 1 || got.Chains[0].Usable != 0 {
		t.Errorf("empty engine status = %+v", got)
	}

	p := e.mustCreate("k1", validPayload)
	r = e.do("GET", "/v1/status", "")
	got = statusView{}
	_ = json.Unmarshal(r.body, &got)
	if got.Oldest == nil || got.Oldest.ID != p.ID || got.Payouts["queued"] != 1 {
		t.Errorf("status after a create = %+v, want oldest %s and 1 queued", got, p.ID)
	}

	if len(got.Pauses) != 0 {
		t.Errorf("pauses %v with none in force", got.Pauses)
	}
	pr := e.do("POST", "/v1/pauses", `{"scope":"chain","chain":"sandbox","reason":"incident 7"}`)
	var pause struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(pr.body, &pause); err != nil || pr.status != http.StatusCreated {
		t.Fatalf("POST /v1/pauses = %d %s", pr.status, pr.body)
	}
	r = e.do("GET", "/v1/status", "")
	got = statusView{}
	_ = json.Unmarshal(r.body, &got)
	if len(got.Pauses) != 1 || got.Pauses[0].ID != pause.ID || got.Pauses[0].Reason != "incident 7" {
		t.Errorf("status with a pause in force: pauses %+v, want %s", got.Pauses, pause.ID)
	}

	if r := e.do("GET", "/v1/status", "", "Authorization: "); r.status != http.StatusUnauthorized {
		t.Errorf("status without a key = %d, want 401", r.status)
	}
}

func TestStatusReportsUpstreamsAndChecks(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	until := time.Unix(1_900_000_000, 0).UTC()
	api, err := New(Config{
		Store: db, Catalog: testCatalog(), Registry: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler),
		APIKeys: []APIKey{{ID: "key_a", Name: "primary", Hash: HashAPIKey(testKey)}},
		Ready:   map[string]func(context.Context) error{"signer:0xabc": func(context.Context) error { return errors.New("hsm unplugged") }},
		Upstreams: func(chain string) []UpstreamView {
			return []UpstreamView{
				{Name: "a", URL: "https://a.example/REDACTED", Role: "primary", Healthy: true, Breaker: "closed", Head: 100},
				{Name: "b", URL: "https://b.example", Role: "fallback", Breaker: "open", Lag: 12, RateLimitedTo: &until},
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, h: api.Handler()}
	r := e.do("GET", "/v1/status", "")
	var got statusView
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != "degraded" || got.Checks["signer:0xabc"].Status != "fail" {
		t.Errorf("a failing signer check must degrade the status: %+v", got)
	}
	ch := got.Chains[0]
	if ch.Usable != 1 || len(ch.Upstreams) != 2 || ch.Upstreams[1].Breaker != "open" || !ch.Upstreams[1].RateLimitedTo.Equal(until) {
		t.Errorf("chain status = %+v", ch)
	}
}

func TestAttemptsAndRebroadcast(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	p := e.mustCreate("k1", validPayload)
	r := e.do("GET", "/v1/payouts/"+p.ID+"/attempts", "")
	if r.status != http.StatusOK || string(r.body) != "{\"object\":\"list\",\"data\":[]}\n" {
		t.Errorf("attempts of a queued payout = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/payouts/"+p.ID+"/rebroadcast", ""); r.status != http.StatusConflict || r.problem(t).Code != "payout_not_rebroadcastable" {
		t.Errorf("rebroadcast of a queued payout = %d %s", r.status, r.body)
	}
	e.submit(p.ID) // in flight now, but this server was given no broadcaster
	if r := e.do("POST", "/v1/payouts/"+p.ID+"/rebroadcast", ""); r.status != http.StatusServiceUnavailable || r.problem(t).Code != "service_unavailable" {
		t.Errorf("rebroadcast without a broadcaster = %d %s, want 503 service_unavailable", r.status, r.body)
	}
	if r := e.do("GET", "/v1/payouts/po_missing/attempts", ""); r.status != http.StatusNotFound {
		t.Errorf("attempts of a missing payout = %d", r.status)
	}
}
