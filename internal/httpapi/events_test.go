package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

func (r response) events(t *testing.T) (evs []payout.Event, more bool) {
	t.Helper()
	var l struct {
		Object  string         `json:"object"`
		Data    []payout.Event `json:"data"`
		HasMore bool           `json:"has_more"`
	}
	if r.status != http.StatusOK {
		t.Fatalf("status %d, body %s", r.status, r.body)
	}
	if err := json.Unmarshal(r.body, &l); err != nil || l.Object != "list" {
		t.Fatalf("event list %s: %v", r.body, err)
	}
	return l.Data, l.HasMore
}

func TestListEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	a := e.mustCreate("k1", payoutBody("1"))
	b := e.mustCreate("k2", payoutBody("2"))
	if r := e.do("POST", "/v1/payouts/"+a.ID+"/cancel", ""); r.status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}

	all, more := e.do("GET", "/v1/events?limit=100", "").events(t)
	if more || len(all) != 3 {
		t.Fatalf("got %d events (more %v), want 3", len(all), more)
	}
	want := []struct{ typ, obj string }{{"payout.cancelled", a.ID}, {"payout.created", b.ID}, {"payout.created", a.ID}}
	for i, w := range want {
		if all[i].Type != w.typ || all[i].ObjectID != w.obj {
			t.Fatalf("event %d = %s of %s, want %s of %s", i, all[i].Type, all[i].ObjectID, w.typ, w.obj)
		}
	}
	if all[0].ObjectSeq != 2 || all[2].ObjectSeq != 1 {
		t.Errorf("sequences %d, %d; want a's events numbered 2 and 1", all[0].ObjectSeq, all[2].ObjectSeq)
	}
	var data payout.Payout
	if err := json.Unmarshal(all[0].Data, &data); err != nil || data.ID != a.ID || data.Status != payout.StatusCancelled {
		t.Fatalf("cancel event data %s: %v", all[0].Data, err)
	}

	// Paging down with starting_after and back up with ending_before.
	page, more := e.do("GET", "/v1/events?limit=2", "").events(t)
	if !more || len(page) != 2 || page[1].ID != all[1].ID {
		t.Fatalf("first page %d events, more %v", len(page), more)
	}
	page, more = e.do("GET", "/v1/events?limit=2&starting_after="+page[1].ID, "").events(t)
	if more || len(page) != 1 || page[0].ID != all[2].ID {
		t.Fatalf("second page %v, more %v; want the oldest", page, more)
	}
	page, _ = e.do("GET", "/v1/events?ending_before="+all[2].ID, "").events(t)
	if len(page) != 2 || page[0].ID != all[0].ID {
		t.Fatalf("ending_before the oldest = %d events", len(page))
	}

	// Filters: repeated and comma-separated types, and an object.
	page, _ = e.do("GET", "/v1/events?type=payout.cancelled", "").events(t)
	if len(page) != 1 || page[0].Type != "payout.cancelled" {
		t.Fatalf("type filter: %v", page)
	}
	page, _ = e.do("GET", "/v1/events?type=payout.cancelled,payout.completed&type=wallet.low_balance", "").events(t)
	if len(page) != 1 {
		t.Fatalf("several types: %d events, want 1", len(page))
	}
	page, _ = e.do("GET", "/v1/events?object_id="+b.ID, "").events(t)
	if len(page) != 1 || page[0].ObjectID != b.ID {
		t.Fatalf("object filter: %v", page)
	}

	// One event.
	r := e.do("GET", "/v1/events/"+all[1].ID, "")
	var one payout.Event
	if r.status != http.StatusOK || json.Unmarshal(r.body, &one) != nil || one.ID != all[1].ID || one.Type != "payout.created" {
		t.Fatalf("get event: %d %s", r.status, r.body)
	}
}

func TestListEventsBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	e.mustCreate("k1", payoutBody("1"))
	for _, tc := range []struct {
		query  string
		status int
		code   payout.Code
		detail string
	}{
		{"type=payout.queued", 422, payout.CodeUnknownEventType, `"payout.queued"`},
		{"type=payout.created,nope", 422, payout.CodeUnknownEventType, `"nope"`},
		{"limit=0", 400, payout.CodeInvalidLimit, `"0"`},
		{"limit=101", 400, payout.CodeInvalidLimit, `"101"`},
		{"starting_after=po_1", 400, payout.CodeInvalidCursor, "event id"},
		{"starting_after=evt_missing", 400, payout.CodeInvalidCursor, "no event"},
		{"starting_after=evt_a&ending_before=evt_b", 400, payout.CodeInvalidCursor, "not both"},
		{"object_id=" + strings.Repeat("x", 129), 422, payout.CodeInvalidRequest, "object_id"},
	} {
		r := e.do("GET", "/v1/events?"+tc.query, "")
		p := r.problem(t)
		if r.status != tc.status || p.Code != tc.code || !strings.Contains(p.Detail, tc.detail) {
			t.Errorf("%s: %d %s %q; want %d %s mentioning %s", tc.query, r.status, p.Code, p.Detail, tc.status, tc.code, tc.detail)
		}
	}
	for _, id := range []string{"evt_missing", "po_1"} {
		if r := e.do("GET", "/v1/events/"+id, ""); r.status != http.StatusNotFound || r.problem(t).Code != payout.CodeNotFound {
			t.Errorf("GET /v1/events/%s: %d %s", id, r.status, r.body)
		}
	}
}

// sse reads server-sent events from a stream.
type sse struct {
	t    *testing.T
	resp *http.Response
	rd   *bufio.Reader
}

type sseEvent struct{ id, typ, data string }

func openStream(t *testing.T, url string, headers ...string) *sse {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Set(name, strings.TrimSpace(value))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Request-Id") == "" {
		t.Fatalf("stream: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sse{t: t, resp: resp, rd: bufio.NewReader(resp.Body)}
}

// next returns the next event (comments and retry lines skipped), failing
// the test when none comes within d.
func (s *sse) next(d time.Duration) sseEvent {
	s.t.Helper()
	got := make(chan sseEvent, 1)
	errs := make(chan error, 1)
	go func() {
		var ev sseEvent
		for {
			line, err := s.rd.ReadString('\n')
			if err != nil {
				errs <- err
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "" && ev.id != "":
				got <- ev
				return
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	select {
	case ev := <-got:
		return ev
	case err := <-errs:
		s.t.Fatalf("stream ended: %v", err)
	case <-time.After(d):
		s.t.Fatalf("no event within %v", d)
	}
	return sseEvent{}
}

func TestEventStream(t *testing.T) {
	// Not parallel: it sets streamPoll so that only the commit wake-up
	// can deliver events in time.
	defer func(p time.Duration) { streamPoll = p }(streamPoll)
	streamPoll = time.Hour
	e := newEnv(t, nil, nil)
	old := e.mustCreate("k0", payoutBody("1"))
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	defer e.api.CloseStreams()

	// A new stream starts after the newest event: the old payout's is not sent.
	st := openStream(t, srv.URL+"/v1/events/stream")
	if got := st.resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q", got)
	}
	a := e.mustCreate("k1", payoutBody("2"))
	b := e.mustCreate("k2", payoutBody("3"))
	first, second := st.next(5*time.Second), st.next(5*time.Second)
	for i, c := range []struct {
		ev  sseEvent
		obj string
	}{{first, a.ID}, {second, b.ID}} {
		var ev payout.Event
		if err := json.Unmarshal([]byte(c.ev.data), &ev); err != nil {
			t.Fatalf("event %d data %q: %v", i, c.ev.data, err)
		}
		if c.ev.typ != "payout.created" || ev.Type != c.ev.typ || ev.ID != c.ev.id || ev.ObjectID != c.obj {
			t.Fatalf("event %d = %+v (%s of %s), want payout.created of %s", i, c.ev, ev.Type, ev.ObjectID, c.obj)
		}
		if c.obj == old.ID {
			t.Fatal("the stream sent an event from before it opened")
		}
	}
	_ = st.resp.Body.Close()

	// Missed while away: a reconnect with Last-Event-ID gets exactly those.
	if r := e.do("POST", "/v1/payouts/"+a.ID+"/cancel", ""); r.status != http.StatusOK {
		t.Fatalf("cancel: %d", r.status)
	}
	c := e.mustCreate("k3", payoutBody("4"))
	st = openStream(t, srv.URL+"/v1/events/stream", "Last-Event-ID: "+second.id)
	if ev := st.next(5 * time.Second); ev.typ != "payout.cancelled" || !strings.Contains(ev.data, a.ID) {
		t.Fatalf("first after reconnect = %s %.80s, want a's cancel", ev.typ, ev.data)
	}
	if ev := st.next(5 * time.Second); ev.typ != "payout.created" || !strings.Contains(ev.data, c.ID) {
		t.Fatalf("second after reconnect = %s, want c's creation", ev.typ)
	}

	// A type filter; the query form of the cursor.
	ft := openStream(t, srv.URL+"/v1/events/stream?type=payout.cancelled&last_event_id="+first.id)
	if ev := ft.next(5 * time.Second); ev.typ != "payout.cancelled" {
		t.Fatalf("filtered stream sent %s", ev.typ)
	}
	if r := e.do("POST", "/v1/payouts/"+c.ID+"/cancel", ""); r.status != http.StatusOK {
		t.Fatalf("cancel: %d", r.status)
	}
	if ev := ft.next(5 * time.Second); ev.typ != "payout.cancelled" || !strings.Contains(ev.data, c.ID) {
		t.Fatalf("filtered stream sent %s %.80s, want c's cancel", ev.typ, ev.data)
	}

	// Shutting the API down ends open streams.
	e.api.CloseStreams()
	done := make(chan error, 1)
	go func() { _, err := st.rd.ReadString('\n'); done <- err }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after CloseStreams")
	}
}

func TestEventStreamBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	for _, tc := range []struct {
		header, query string
		status        int
		code          payout.Code
	}{
		{"Last-Event-ID: evt_missing", "", 400, payout.CodeInvalidCursor},
		{"Last-Event-ID: po_1", "", 400, payout.CodeInvalidCursor},
		{"", "?type=payout.bogus", 422, payout.CodeUnknownEventType},
	} {
		h := []string{}
		if tc.header != "" {
			h = append(h, tc.header)
		}
		r := e.do("GET", "/v1/events/stream"+tc.query, "", h...)
		if r.status != tc.status || r.problem(t).Code != tc.code {
			t.Errorf("%s%s: %d %s", tc.header, tc.query, r.status, r.body)
		}
	}
	if r := e.do("GET", "/v1/events/stream", "", "Authorization:"); r.status != http.StatusUnauthorized {
		t.Errorf("no key: %d", r.status)
	}
}

func TestEventStreamLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	e.api.streams = newStreamSlots(1)
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	defer e.api.CloseStreams()
	_ = openStream(t, srv.URL+"/v1/events/stream")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second stream over a limit of 1: %d", resp.StatusCode)
	}
}

func TestEventTypeEnumIsTheCatalogue(t *testing.T) {
	t.Parallel()
	doc, _, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	var inSpec []string
	for _, v := range doc.Components.Schemas["EventType"].Value.Enum {
		inSpec = append(inSpec, v.(string))
	}
	if got, want := strings.Join(inSpec, " "), strings.Join(payout.EventTypes(), " "); got != want {
		t.Errorf("EventType enum in api/openapi.yaml:\n %s\npayout.EventTypes():\n %s", got, want)
	}
}

// TestWebhookEventsNeedTheWebhookScope: events about webhook endpoints name
// the receiver's URL, so a key without webhooks:manage neither lists,
// streams nor reads them; everything else it may read as before.
func TestWebhookEventsNeedTheWebhookScope(t *testing.T) {
	t.Parallel()
	e := keyEnv(t, nil, &clock{t: testNow}, nil)
	p := e.mustCreate("k1", payoutBody("1"))
	if err := e.db.AppendEvent(context.Background(), "we_1", payout.EventWebhookEndpointDisabled,
		map[string]string{"id": "we_1", "url": "https://books.example.com/hook"}); err != nil {
		t.Fatal(err)
	}
	reader := e.newKey(`{"name":"reporting","scopes":["payouts:read"]}`)
	hooks := e.newKey(`{"name":"hooks","scopes":["payouts:read","webhooks:manage"]}`)

	evs, _ := e.do("GET", "/v1/events?limit=100", "", bearer(reader.Secret)).events(t)
	if len(evs) != 1 || evs[0].ObjectID != p.ID {
		t.Fatalf("payouts:read lists %d events, want only the payout's", len(evs))
	}
	if r := e.do("GET", "/v1/events?type=webhook_endpoint.disabled", "", bearer(reader.Secret)); r.status != http.StatusForbidden || r.problem(t).Code != payout.CodeForbidden {
		t.Errorf("payouts:read asking for webhook events: %d %s, want 403 forbidden", r.status, r.body)
	}
	all, _ := e.do("GET", "/v1/events?limit=100", "", bearer(hooks.Secret)).events(t)
	if len(all) != 2 || all[0].Type != payout.EventWebhookEndpointDisabled {
		t.Fatalf("webhooks:manage lists %d events, want both", len(all))
	}
	if r := e.do("GET", "/v1/events/"+all[0].ID, "", bearer(reader.Secret)); r.status != http.StatusNotFound {
		t.Errorf("payouts:read reading a webhook event: %d, want 404", r.status)
	}
	if r := e.do("GET", "/v1/events/"+all[0].ID, "", bearer(hooks.Secret)); r.status != http.StatusOK {
		t.Errorf("webhooks:manage reading a webhook event: %d, want 200", r.status)
	}
	if r := e.do("GET", "/v1/events/stream?type=webhook_endpoint.disabled", "", bearer(reader.Secret)); r.status != http.StatusForbidden {
		t.Errorf("payouts:read streaming webhook events: %d, want 403", r.status)
	}
}
