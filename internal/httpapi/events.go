package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/payout"
)

// eventList is a Stripe-style page of events.
type eventList struct {
	Object  string         `json:"object"`
	Data    []payout.Event `json:"data"`
	HasMore bool           `json:"has_more"`
	URL     string         `json:"url"`
}

// listEvents handles GET /v1/events: newest first in commit order, limit
// 1-100 (default 10), paged with starting_after (older) or ending_before
// (newer), filtered by type (repeated or comma-separated) and object_id. A
// reconciler keeps the newest id it has seen and asks for ending_before it.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	f, err := eventFilter(r.URL.Query())
	if err == nil {
		f.Types, err = visibleTypes(r, f.Types)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	evs, more, err := s.store.ListEventPage(r.Context(), f)
	if errors.Is(err, payout.ErrNotFound) {
		err = newError(payout.CodeInvalidCursor, "no event has the id given as cursor")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if evs == nil {
		evs = []payout.Event{}
	}
	writeJSON(w, "application/json", http.StatusOK, eventList{Object: "list", Data: evs, HasMore: more, URL: "/v1/events"})
}

// getEvent handles GET /v1/events/{id}.
func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !plausibleEventID(id) {
		s.fail(w, r, newError(payout.CodeNotFound, "no event has id %q", truncate(id, 64)))
		return
	}
	ev, err := s.store.GetEvent(r.Context(), id)
	if err == nil && !mayRead(r, ev.Type) {
		err = payout.ErrNotFound // as if it did not exist: its object is not this key's to see
	}
	if errors.Is(err, payout.ErrNotFound) {
		err = newError(payout.CodeNotFound, "no event has id %q", id)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, "application/json", http.StatusOK, ev)
}

func plausibleEventID(id string) bool { return strings.HasPrefix(id, "evt_") && len(id) <= 64 }

// webhookEventPrefix starts the types of events about webhook endpoints,
// which only keys with the webhooks:manage scope may read (their data
// names the receiver's URL).
const webhookEventPrefix = "webhook_endpoint."

// mayRead reports whether the request's key may read events of type typ.
func mayRead(r *http.Request, typ string) bool {
	if !strings.HasPrefix(typ, webhookEventPrefix) {
		return true
	}
	key := reqInfoFrom(r.Context()).key
	return key != nil && payout.Allows(key.Scopes, payout.ScopeWebhooksManage)
}

// visibleTypes narrows a type filter to the types the request's key may
// read: asking for one it may not is refused (403), and no filter becomes
// every type it may read.
func visibleTypes(r *http.Request, types []string) ([]string, error) {
	if mayRead(r, webhookEventPrefix) {
		return types, nil
	}
	if len(types) == 0 {
		for _, t := range payout.EventTypes() {
			if mayRead(r, t) {
				types = append(types, t)
			}
		}
		return types, nil
	}
	for _, t := range types {
		if !mayRead(r, t) {
			return nil, newError(payout.CodeForbidden, "events of type %s need the %s scope", t, payout.ScopeWebhooksManage)
		}
	}
	return types, nil
}

// eventFilter reads and checks the query of GET /v1/events.
func eventFilter(q url.Values) (payout.EventFilter, error) {
	f := payout.EventFilter{ObjectID: q.Get("object_id"), StartingAfter: q.Get("starting_after"),
		EndingBefore: q.Get("ending_before"), Limit: defaultLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return f, newError(payout.CodeInvalidLimit, "limit must be a whole number from 1 to %d, got %q", maxLimit, truncate(v, 32))
		}
		f.Limit = n
	}
	types, err := eventTypes(q)
	if err != nil {
		return f, err
	}
	f.Types = types
	if f.StartingAfter != "" && f.EndingBefore != "" {
		return f, newError(payout.CodeInvalidCursor, "use starting_after or ending_before, not both")
	}
	for name, v := range map[string]string{"starting_after": f.StartingAfter, "ending_before": f.EndingBefore} {
		if v != "" && !plausibleEventID(v) {
			return f, newError(payout.CodeInvalidCursor, "%s must be an event id (evt_…), got %q", name, truncate(v, 64))
		}
	}
	if len(f.ObjectID) > 128 {
		return f, newError(payout.CodeInvalidRequest, "object_id is longer than 128 characters")
	}
	return f, nil
}

// maxTypeFilter bounds the types one filter may name.
const maxTypeFilter = 32

// eventTypes reads the type filter: "type" repeated, comma-separated, or
// both. Every type must be one Sluice writes.
func eventTypes(q url.Values) ([]string, error) {
	var types []string
	for _, v := range q["type"] {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t == "" {
				continue
			}
			if !payout.KnownEventType(t) {
				return nil, newError(payout.CodeUnknownEventType, "type %q is not an event type; types are %s",
					truncate(t, 64), strings.Join(payout.EventTypes(), ", "))
			}
			types = append(types, t)
		}
	}
	if len(types) > maxTypeFilter {
		return nil, newError(payout.CodeUnknownEventType, "at most %d types may be named, got %d", maxTypeFilter, len(types))
	}
	return types, nil
}

// Event stream timing; variables so tests can shorten them.
var (
	// streamPoll is how often a stream reads the outbox when nothing woke
	// it: writes of other instances sharing the database wake nobody here.
	streamPoll = time.Second
	// streamHeartbeat is how often an idle stream sends a comment, so
	// proxies and clients see the connection is alive.
	streamHeartbeat = 15 * time.Second
)

// streamBatch is how many events a stream reads from the outbox at once.
const streamBatch = 500

// streamEvents handles GET /v1/events/stream: Server-Sent Events, one per
// event in commit order, each with its id, so a client that reconnects
// with Last-Event-ID (or ?last_event_id=) gets every event after that one
// and none twice. Without one it starts at the newest event. The type
// filter is the one of GET /v1/events.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	types, err := eventTypes(r.URL.Query())
	if err == nil {
		types, err = visibleTypes(r, types)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	after, err := s.streamStart(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.streams.acquire() {
		s.fail(w, r, newError(payout.CodeUnavailable, "too many event streams are open (%d); try again later", s.streams.limit))
		return
	}
	defer s.streams.release()
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	st := &eventStream{w: w, rc: rc, types: types, sent: s.metrics.streamed}
	st.write([]byte("retry: 1000\n\n"))
	if st.flush() != nil {
		return
	}

	ctx := r.Context()
	heartbeat := time.NewTicker(streamHeartbeat)
	defer heartbeat.Stop()
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		woken := s.committed() // taken before the read, so no commit after it goes unseen
		evs, err := s.store.ListEvents(ctx, after, streamBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("event stream: read outbox", "err", err, "request_id", reqInfoFrom(ctx).id)
			}
			return // the client reconnects with Last-Event-ID
		}
		for i := range evs {
			st.send(&evs[i])
			after = evs[i].Seq
		}
		if len(evs) > 0 {
			if st.flush() != nil {
				return
			}
			if len(evs) == streamBatch {
				continue
			}
		}
		poll.Reset(streamPoll)
		select {
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		case <-woken:
		case <-poll.C:
		case <-heartbeat.C:
			st.write([]byte(": keep-alive\n\n"))
			if st.flush() != nil {
				return
			}
		}
	}
}

// streamStart returns the outbox position a stream starts after: the
// event named by Last-Event-ID (header, else ?last_event_id=), or the
// newest event.
func (s *Server) streamStart(r *http.Request) (int64, error) {
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	if last == "" {
		evs, _, err := s.store.ListEventPage(r.Context(), payout.EventFilter{Limit: 1})
		if err != nil || len(evs) == 0 {
			return 0, err
		}
		return evs[0].Seq, nil
	}
	if !plausibleEventID(last) {
		return 0, newError(payout.CodeInvalidCursor, "Last-Event-ID must be an event id (evt_…), got %q", truncate(last, 64))
	}
	ev, err := s.store.GetEvent(r.Context(), last)
	if errors.Is(err, payout.ErrNotFound) {
		return 0, newError(payout.CodeInvalidCursor, "no event has id %q (Last-Event-ID)", last)
	}
	if err != nil {
		return 0, err
	}
	return ev.Seq, nil
}

// committed returns the channel that wakes streams at the next commit, or
// nil (never ready) when the store gives none.
func (s *Server) committed() <-chan struct{} {
	if s.eventsChanged == nil {
		return nil
	}
	return s.eventsChanged()
}

// eventStream writes server-sent events to one client.
type eventStream struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	types []string
	buf   bytes.Buffer
	err   error
	sent  prometheus.Counter
}

// streamWriteTimeout bounds one write to a stream's client, so a client
// that stopped reading does not hold a goroutine for ever.
const streamWriteTimeout = 30 * time.Second

func (st *eventStream) send(ev *payout.Event) {
	if len(st.types) > 0 && !slices.Contains(st.types, ev.Type) {
		return
	}
	data, err := json.Marshal(ev)
	if err != nil {
		st.err = err
		return
	}
	st.buf.WriteString("id: ")
	st.buf.WriteString(ev.ID)
	st.buf.WriteString("\nevent: ")
	st.buf.WriteString(ev.Type)
	st.buf.WriteString("\ndata: ")
	st.buf.Write(data) // JSON from encoding/json has no raw newline
	st.buf.WriteString("\n\n")
	st.sent.Inc()
}

func (st *eventStream) write(b []byte) { st.buf.Write(b) }

// flush writes what is buffered and pushes it to the client.
func (st *eventStream) flush() error {
	if st.err != nil {
		return st.err
	}
	if st.buf.Len() == 0 {
		return nil
	}
	_ = st.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := st.w.Write(st.buf.Bytes()); err != nil {
		return err
	}
	st.buf.Reset()
	return st.rc.Flush()
}

// streamSlots bounds the event streams open at once.
type streamSlots struct {
	limit int
	slots chan struct{}
}

func newStreamSlots(limit int) *streamSlots {
	return &streamSlots{limit: limit, slots: make(chan struct{}, limit)}
}

func (s *streamSlots) acquire() bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s *streamSlots) release() { <-s.slots }

// CloseStreams ends every open event stream (their clients reconnect with
// Last-Event-ID); call it when the HTTP server shuts down, which waits for
// handlers. Later streams end at once.
func (s *Server) CloseStreams() { s.closeOnce.Do(func() { close(s.closing) }) }
