package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Event is something that happened to an object (a payout, a hot wallet, a
// webhook endpoint), as GET /v1/events, the event stream and webhooks show
// it. Delivery may repeat or reorder events: Sequence numbers each
// object's changes 1, 2, …, so a consumer can drop one it has already
// seen a later change of.
type Event struct {
	ID        string          `json:"id"`
	Object    string          `json:"object"`
	Type      string          `json:"type"` // e.g. "payout.completed"
	CreatedAt time.Time       `json:"created_at"`
	ObjectID  string          `json:"object_id"`
	Sequence  int64           `json:"sequence"`
	Data      json.RawMessage `json:"data"` // the object right after the change
}

// Payout decodes the data of a "payout.*" event.
func (e *Event) Payout() (*Payout, error) {
	if !strings.HasPrefix(e.Type, "payout.") {
		return nil, fmt.Errorf("sluice client: event %s is a %s, not about a payout", e.ID, e.Type)
	}
	var p Payout
	if err := json.Unmarshal(e.Data, &p); err != nil {
		return nil, fmt.Errorf("sluice client: event %s: decode payout: %w", e.ID, err)
	}
	return &p, nil
}

// ListEventsParams selects a page of events. Pages are newest first.
type ListEventsParams struct {
	Types         []string // only these types; empty for all
	ObjectID      string   // only events about this object
	StartingAfter string   // an event id: older events
	EndingBefore  string   // an event id: newer events
	Limit         int      // 1..100; 0 for the server's default (10)
}

// EventList is one page of events.
type EventList struct {
	Object  string  `json:"object"`
	Data    []Event `json:"data"`
	HasMore bool    `json:"has_more"`
	URL     string  `json:"url"`
}

// ListEvents reads one page of events, newest first in commit order.
func (c *Client) ListEvents(ctx context.Context, params ListEventsParams) (*EventList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"object_id": params.ObjectID, "starting_after": params.StartingAfter, "ending_before": params.EndingBefore} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(params.Types) > 0 {
		q.Set("type", strings.Join(params.Types, ","))
	}
	if params.Limit != 0 {
		q.Set("limit", strconv.Itoa(params.Limit))
	}
	path := "/v1/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var l EventList
	if _, err := c.do(ctx, http.MethodGet, path, nil, "", &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// EventPages iterates over pages of events from params on: towards older
// events, or towards newer ones when params.EndingBefore is set (the way
// to reconcile: keep the newest id handled and walk forward from it). An
// error is yielded once and ends the iteration.
func (c *Client) EventPages(ctx context.Context, params ListEventsParams) iter.Seq2[*EventList, error] {
	return pages(func() (*EventList, error) { return c.ListEvents(ctx, params) },
		func(l *EventList) ([]string, bool) {
			return idsOf(l.Data, func(e Event) string { return e.ID }), l.HasMore
		},
		&params.StartingAfter, &params.EndingBefore)
}

// GetEvent reads one event.
func (c *Client) GetEvent(ctx context.Context, id string) (*Event, error) {
	var e Event
	if _, err := c.do(ctx, http.MethodGet, "/v1/events/"+url.PathEscape(id), nil, "", &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// StreamParams selects what StreamEvents follows.
type StreamParams struct {
	Types []string // only these types; empty for all
	// LastEventID resumes after this event; empty starts after the newest.
	LastEventID string
}

// StreamEvents follows GET /v1/events/stream: every event from
// params.LastEventID on, in commit order, as it happens. When the
// connection drops (network, server restart) it reconnects with backoff
// and resumes after the last event it yielded, so none is lost or
// repeated. It ends when ctx ends (yielding nothing more) or when the
// server refuses the stream with a 4xx answer (yielded as *Error).
func (c *Client) StreamEvents(ctx context.Context, params StreamParams) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		last := params.LastEventID
		for failures := 0; ctx.Err() == nil; {
			got, err := c.streamOnce(ctx, params.Types, last, func(e *Event) bool {
				last = e.ID
				return yield(e, nil)
			})
			if err == errStopped || ctx.Err() != nil {
				return
			}
			var apiErr *Error
			if errors.As(err, &apiErr) && apiErr.Status < 500 && apiErr.Status != http.StatusTooManyRequests {
				yield(nil, err)
				return
			}
			if got {
				failures = 0
			}
			t := time.NewTimer(c.backoff(failures))
			failures++
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// errStopped says the consumer stopped the iteration.
var errStopped = errors.New("stopped")

// streamOnce reads one connection of the stream, calling each for every
// event. It says whether any event came, and why the connection ended.
func (c *Client) streamOnce(ctx context.Context, types []string, last string, each func(*Event) bool) (got bool, _ error) {
	path := "/v1/events/stream"
	if len(types) > 0 {
		path += "?" + url.Values{"type": {strings.Join(types, ",")}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+path, nil)
	if err != nil {
		return false, fmt.Errorf("sluice client: %w", err)
	}
	c.authorize(req, nil)
	req.Header.Set("Accept", "text/event-stream")
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	// The stream stays open: the client's overall timeout must not apply.
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("sluice client: GET /v1/events/stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return false, parseError(resp, data)
	}
	rd := bufio.NewReaderSize(resp.Body, 64<<10)
	var data []byte
	for {
		line, err := rd.ReadSlice('\n')
		if err == bufio.ErrBufferFull { // a longer line: gather it
			rest, err2 := rd.ReadBytes('\n')
			line, err = append(append([]byte(nil), line...), rest...), err2
		}
		if err != nil {
			return got, fmt.Errorf("sluice client: event stream: %w", err)
		}
		line = trimEOL(line)
		switch {
		case len(line) == 0: // the end of an event
			if len(data) == 0 {
				continue
			}
			var e Event
			if err := json.Unmarshal(data, &e); err != nil {
				return got, fmt.Errorf("sluice client: event stream: decode event: %w", err)
			}
			data = data[:0]
			got = true
			if !each(&e) {
				return got, errStopped
			}
		case len(line) > 5 && string(line[:5]) == "data:":
			data = append(data, strings.TrimPrefix(string(line[5:]), " ")...)
		}
	}
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
