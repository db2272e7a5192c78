package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicepay/sluice/internal/events"
	"github.com/sluicepay/sluice/internal/payout"
)

// newWebhookEnv is an API whose webhook URLs are checked the way the
// engine checks them with private targets refused (IP literals and
// localhost only, so no test needs DNS).
func newWebhookEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, nil, nil)
	e.api.hooks.CheckURL = func(ctx context.Context, u string) error { return events.CheckURL(ctx, u, false, nil) }
	return e
}

type endpointOut struct {
	ID             string   `json:"id"`
	Object         string   `json:"object"`
	URL            string   `json:"url"`
	Description    string   `json:"description"`
	EnabledEvents  []string `json:"enabled_events"`
	Status         string   `json:"status"`
	DisabledReason *string  `json:"disabled_reason"`
	Secret         string   `json:"secret"`
}

func decodeAs[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return v
}

func (e *env) mustCreateEndpoint(body string) endpointOut {
	e.t.Helper()
	r := e.do("POST", "/v1/webhook_endpoints", body)
	if r.status != http.StatusCreated {
		e.t.Fatalf("create endpoint: %d %s", r.status, r.body)
	}
	return decodeAs[endpointOut](e.t, r)
}

func TestWebhookEndpointLifecycle(t *testing.T) {
	t.Parallel()
	e := newWebhookEnv(t)
	ep := e.mustCreateEndpoint(`{"url":"https://93.184.216.34/hooks","enabled_events":["payout.completed","payout.failed"],"description":"books"}`)
	if !strings.HasPrefix(ep.ID, "we_") || !strings.HasPrefix(ep.Secret, "whsec_") || ep.Status != "enabled" || ep.DisabledReason != nil ||
		ep.Description != "books" || len(ep.EnabledEvents) != 2 {
		t.Errorf("created: %+v", ep)
	}
	if key, err := payout.WebhookSecretKey(ep.Secret); err != nil || len(key) != 32 {
		t.Errorf("secret %q: %d key bytes, %v", ep.Secret, len(key), err)
	}
	got := decodeAs[endpointOut](t, e.do("GET", "/v1/webhook_endpoints/"+ep.ID, ""))
	if got.Secret != "" || got.URL != ep.URL {
		t.Errorf("get: %+v (the secret must not be shown)", got)
	}
	r := e.do("POST", "/v1/webhook_endpoints/"+ep.ID, `{"enabled":false,"enabled_events":["*"]}`)
	upd := decodeAs[endpointOut](t, r)
	if r.status != 200 || upd.Status != "disabled" || upd.DisabledReason == nil || *upd.DisabledReason != "disabled_by_user" || upd.EnabledEvents[0] != "*" {
		t.Errorf("disable: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/v1/webhook_endpoints/"+ep.ID, `{"enabled":true}`)
	if upd := decodeAs[endpointOut](t, r); upd.Status != "enabled" || upd.DisabledReason != nil {
		t.Errorf("enable: %s", r.body)
	}
	rot := decodeAs[endpointOut](t, e.do("POST", "/v1/webhook_endpoints/"+ep.ID+"/rotate_secret", ""))
	if rot.Secret == "" || rot.Secret == ep.Secret {
		t.Errorf("rotate: secret %q", rot.Secret)
	}
	stored, err := e.db.GetWebhookEndpoint(context.Background(), ep.ID)
	if err != nil || stored.Secret != rot.Secret || stored.PreviousSecret != ep.Secret || !stored.PreviousSecretExpiresAt.Equal(testNow.Add(payout.PreviousSecretTTL).Truncate(1000)) {
		t.Errorf("after rotation: %+v, %v", stored, err)
	}
	list := decodeAs[struct {
		Object string        `json:"object"`
		Data   []endpointOut `json:"data"`
	}](t, e.do("GET", "/v1/webhook_endpoints?limit=5", ""))
	if len(list.Data) != 1 || list.Data[0].ID != ep.ID || list.Data[0].Secret != "" {
		t.Errorf("list: %+v", list)
	}
	deliveries := e.do("GET", "/v1/webhook_endpoints/"+ep.ID+"/deliveries", "")
	if deliveries.status != 200 || !strings.Contains(string(deliveries.body), `"data":[]`) {
		t.Errorf("deliveries: %d %s", deliveries.status, deliveries.body)
	}
	if r := e.do("DELETE", "/v1/webhook_endpoints/"+ep.ID, ""); r.status != 200 || !strings.Contains(string(r.body), `"deleted":true`) {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	for _, path := range []string{"/v1/webhook_endpoints/" + ep.ID, "/v1/webhook_endpoints/" + ep.ID + "/deliveries", "/v1/webhook_endpoints/nope"} {
		if r := e.do("GET", path, ""); r.status != 404 || r.problem(t).Code != payout.CodeNotFound {
			t.Errorf("GET %s after delete: %d %s", path, r.status, r.body)
		}
	}
	if r := e.do("DELETE", "/v1/webhook_endpoints/"+ep.ID, ""); r.status != 404 {
		t.Errorf("second delete: %d", r.status)
	}
}

func TestWebhookEndpointBadInput(t *testing.T) {
	t.Parallel()
	e := newWebhookEnv(t)
	tests := []struct {
		body    string
		status  int
		code    payout.Code
		pointer string
		detail  string
	}{
		{`{"url":"ftp://93.184.216.34/x","enabled_events":["*"]}`, 422, payout.CodeInvalidWebhookURL, "/url", `scheme must be http or https, got "ftp"`},
		{`{"url":"https://user:pw@93.184.216.34/","enabled_events":["*"]}`, 422, payout.CodeInvalidWebhookURL, "/url", "user name or password"},
		{`{"url":"http://127.0.0.1:8080/","enabled_events":["*"]}`, 422, payout.CodeInvalidWebhookURL, "/url", "a loopback address"},
		{`{"url":"http://localhost:8080/","enabled_events":["*"]}`, 422, payout.CodeInvalidWebhookURL, "/url", "a loopback address"},
		{`{"url":"http://10.0.0.8/","enabled_events":["*"]}`, 422, payout.CodeInvalidWebhookURL, "/url", "a private address"},
		{`{"url":"http://169.254.169.254/","enabled_events":["*"]}`, 422, payout.CodeInvalidWebhookURL, "/url", "a link-local address"},
		{`{"url":"http://[::ffff:192.168.0.1]/","enabled_events":["*"]}`, 422, payout.CodeInvalidWebhookURL, "/url", "a private address"},
		{`{"enabled_events":["*"]}`, 422, payout.CodeInvalidWebhookURL, "/url", "url is required"},
		{`{"url":"https://93.184.216.34/","enabled_events":["payout.completed","payout.exploded"]}`, 422, payout.CodeUnknownEventType, "/enabled_events/1", `unknown event type "payout.exploded"`},
		{`{"url":"https://93.184.216.34/","enabled_events":[]}`, 422, payout.CodeInvalidRequest, "/enabled_events", "at least one"},
		{`{"url":"https://93.184.216.34/","enabled_events":["*","payout.completed"]}`, 422, payout.CodeInvalidRequest, "/enabled_events", "list it alone"},
		{`{"url":"https://93.184.216.34/"}`, 422, payout.CodeInvalidRequest, "/enabled_events", "enabled_events is required"},
		{`{"url":"https://93.184.216.34/","enabled_events":["*"],"secret":"x"}`, 400, payout.CodeUnknownField, "", `unknown field "secret"`},
		{`{"url":`, 400, payout.CodeMalformedJSON, "", ""},
	}
	for _, tc := range tests {
		r := e.do("POST", "/v1/webhook_endpoints", tc.body)
		if r.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.body, r.status, r.body, tc.status)
			continue
		}
		p := r.problem(t)
		if p.Code != tc.code || !strings.Contains(p.Detail, tc.detail) {
			t.Errorf("%s: %s %q, want %s saying %q", tc.body, p.Code, p.Detail, tc.code, tc.detail)
		}
		if tc.pointer != "" && (len(p.Errors) == 0 || p.Errors[0].Pointer != tc.pointer) {
			t.Errorf("%s: errors %+v, want pointer %s", tc.body, p.Errors, tc.pointer)
		}
	}
	// Both wrong at once: both listed.
	r := e.do("POST", "/v1/webhook_endpoints", `{"url":"gopher://x","enabled_events":["nope"]}`)
	if p := r.problem(t); r.status != 422 || len(p.Errors) != 2 {
		t.Errorf("two wrong fields: %d %s", r.status, r.body)
	}
	ep := e.mustCreateEndpoint(`{"url":"https://93.184.216.34/","enabled_events":["*"]}`)
	r = e.do("POST", "/v1/webhook_endpoints/"+ep.ID, `{"url":"http://192.168.1.1/"}`)
	if p := r.problem(t); r.status != 422 || p.Code != payout.CodeInvalidWebhookURL {
		t.Errorf("update to a private url: %d %s", r.status, r.body)
	}
	for _, q := range []string{"limit=0", "limit=101", "starting_after=po_1", "starting_after=we_1&ending_before=we_2"} {
		if r := e.do("GET", "/v1/webhook_endpoints?"+q, ""); r.status != 400 {
			t.Errorf("list ?%s: %d %s", q, r.status, r.body)
		}
	}
}

func TestWebhookEndpointsPages(t *testing.T) {
	t.Parallel()
	e := newWebhookEnv(t)
	var ids []string
	for i := range 5 {
		ep := e.mustCreateEndpoint(fmt.Sprintf(`{"url":"https://93.184.216.34/%d","enabled_events":["*"]}`, i))
		ids = append([]string{ep.ID}, ids...)
	}
	type page struct {
		Data    []endpointOut `json:"data"`
		HasMore bool          `json:"has_more"`
	}
	p1 := decodeAs[page](t, e.do("GET", "/v1/webhook_endpoints?limit=2", ""))
	p2 := decodeAs[page](t, e.do("GET", "/v1/webhook_endpoints?limit=3&starting_after="+p1.Data[1].ID, ""))
	var got []string
	for _, d := range append(p1.Data, p2.Data...) {
		got = append(got, d.ID)
	}
	if !p1.HasMore || p2.HasMore || strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("pages %v (more %v %v), want %v", got, p1.HasMore, p2.HasMore, ids)
	}
}

func TestRedeliverEvent(t *testing.T) {
	t.Parallel()
	e := newWebhookEnv(t)
	completed := e.mustCreateEndpoint(`{"url":"https://93.184.216.34/a","enabled_events":["payout.completed"]}`)
	created := e.mustCreateEndpoint(`{"url":"https://93.184.216.34/b","enabled_events":["payout.created"]}`)
	p := e.mustCreate("k1", validPayload) // writes payout.created
	evs, err := e.db.ListEvents(context.Background(), 0, 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events %v, %v", evs, err)
	}
	ev := evs[0]
	type list struct {
		Data []struct {
			ID         string `json:"id"`
			EndpointID string `json:"endpoint_id"`
			EventID    string `json:"event_id"`
			Status     string `json:"status"`
		} `json:"data"`
	}
	r := e.do("POST", "/v1/events/"+ev.ID+"/redeliver", "")
	l := decodeAs[list](t, r)
	if r.status != 202 || len(l.Data) != 1 || l.Data[0].EndpointID != created.ID || l.Data[0].EventID != ev.ID || l.Data[0].Status != "pending" {
		t.Errorf("redeliver to matching: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/v1/events/"+ev.ID+"/redeliver", `{"endpoint_id":"`+completed.ID+`"}`)
	if l := decodeAs[list](t, r); r.status != 202 || len(l.Data) != 1 || l.Data[0].EndpointID != completed.ID {
		t.Errorf("redeliver to one: %d %s", r.status, r.body)
	}
	dl := e.do("GET", "/v1/webhook_endpoints/"+completed.ID+"/deliveries", "")
	if l := decodeAs[list](t, dl); len(l.Data) != 1 || l.Data[0].EventID != ev.ID {
		t.Errorf("delivery log: %s", dl.body)
	}
	for _, tc := range []struct{ path, body string }{
		{"/v1/events/evt_missing/redeliver", ""},
		{"/v1/events/" + p.ID + "/redeliver", ""},
		{"/v1/events/" + ev.ID + "/redeliver", `{"endpoint_id":"we_missing"}`},
	} {
		if r := e.do("POST", tc.path, tc.body); r.status != 404 || r.problem(t).Code != payout.CodeNotFound {
			t.Errorf("POST %s %s: %d %s", tc.path, tc.body, r.status, r.body)
		}
	}
	if r := e.do("POST", "/v1/events/"+ev.ID+"/redeliver", `{"endpoint":"x"}`); r.status != 400 || r.problem(t).Code != payout.CodeUnknownField {
		t.Errorf("unknown field: %d %s", r.status, r.body)
	}
}

func TestWebhookAttemptsLog(t *testing.T) {
	t.Parallel()
	e := newWebhookEnv(t)
	ep := e.mustCreateEndpoint(`{"url":"https://93.184.216.34/a","enabled_events":["*"]}`)
	e.mustCreate("k1", validPayload)
	evs, _ := e.db.ListEvents(context.Background(), 0, 10)
	ds, err := e.db.RedeliverEvent(context.Background(), evs[0].ID, ep.ID, testNow)
	if err != nil || len(ds) != 1 {
		t.Fatalf("redeliver: %v %v", ds, err)
	}
	err = e.db.RecordWebhookResults(context.Background(), []payout.WebhookResult{
		{WebhookAttempt: payout.WebhookAttempt{DeliveryID: ds[0].ID, Attempt: 1, At: testNow, Error: "timed out after 10s", Duration: 10 * time.Second},
			EndpointID: ep.ID, Status: payout.DeliveryPending, NextAttemptAt: testNow.Add(5 * time.Second)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/v1/webhook_deliveries/"+ds[0].ID+"/attempts", "")
	if r.status != 200 || !strings.Contains(string(r.body), `"status_code":null,"error":"timed out after 10s","duration_ms":10000`) {
		t.Errorf("attempts: %d %s", r.status, r.body)
	}
	for _, id := range []string{"wd_missing", "po_1"} {
		if r := e.do("GET", "/v1/webhook_deliveries/"+id+"/attempts", ""); r.status != 404 {
			t.Errorf("attempts of %s: %d %s", id, r.status, r.body)
		}
	}
}
