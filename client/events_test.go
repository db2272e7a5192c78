package client_test

import (
	"context"
	"math/big"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicepay/sluice/client"
)

func createN(t *testing.T, c *client.Client, n int) []*client.Payout {
	t.Helper()
	out := make([]*client.Payout, n)
	for i := range out {
		p, err := c.CreatePayout(context.Background(), client.CreatePayoutParams{
			Chain: "sandbox", Asset: "ETH", To: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", Amount: big.NewInt(int64(i + 1)),
		}, "")
		if err != nil {
			t.Fatal(err)
		}
		out[i] = p
	}
	return out
}

func TestEventPagesAndGet(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil, nil)
	c := client.New(s.url, apiKey)
	ctx := context.Background()
	ps := createN(t, c, 5)
	if _, err := c.CancelPayout(ctx, ps[2].ID); err != nil {
		t.Fatal(err)
	}

	var all []client.Event
	for page, err := range c.EventPages(ctx, client.ListEventsParams{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Data...)
	}
	if len(all) != 6 || all[0].Type != "payout.cancelled" || all[5].ObjectID != ps[0].ID {
		t.Fatalf("walked %d events; first %s, last of %s", len(all), all[0].Type, all[len(all)-1].ObjectID)
	}
	p, err := all[0].Payout()
	if err != nil || p.ID != ps[2].ID || p.Status != client.Status("cancelled") || all[0].Sequence != 2 {
		t.Fatalf("cancel event's payout = %+v, %v (sequence %d)", p, err, all[0].Sequence)
	}

	// Reconcile forward from the oldest: every later event, oldest page first.
	var forward []string
	for page, err := range c.EventPages(ctx, client.ListEventsParams{EndingBefore: all[5].ID, Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		for i := len(page.Data) - 1; i >= 0; i-- {
			forward = append(forward, page.Data[i].ID)
		}
	}
	if len(forward) != 5 || forward[0] != all[4].ID || forward[4] != all[0].ID {
		t.Fatalf("forward walk %v", forward)
	}

	l, err := c.ListEvents(ctx, client.ListEventsParams{Types: []string{"payout.cancelled", "payout.completed"}})
	if err != nil || len(l.Data) != 1 {
		t.Fatalf("by type: %v, %v", l, err)
	}
	e, err := c.GetEvent(ctx, all[3].ID)
	if err != nil || e.ID != all[3].ID || e.Type != "payout.created" {
		t.Fatalf("GetEvent = %+v, %v", e, err)
	}
	if _, err := c.ListEvents(ctx, client.ListEventsParams{Types: []string{"payout.nope"}}); client.ErrorCode(err) != "unknown_event_type" {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := e.Payout(); err != nil {
		t.Fatal(err)
	}
}

// TestStreamEventsResumes cuts the stream's connection twice; the client
// reconnects by itself and yields every event exactly once, in order.
func TestStreamEventsResumes(t *testing.T) {
	t.Parallel()
	var cut atomic.Int32 // when > 0, the next stream connection is cut after its first event
	s := newServer(t, nil, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/events/stream" || cut.Add(-1) < 0 {
				h.ServeHTTP(w, r)
				return
			}
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			h.ServeHTTP(&cutAfterEvent{ResponseWriter: w, cancel: cancel}, r.WithContext(ctx))
		})
	})
	cut.Store(2)
	c := client.New(s.url, apiKey, client.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	first := createN(t, c, 1)[0]
	ev0, err := c.ListEvents(context.Background(), client.ListEventsParams{Limit: 1})
	if err != nil || ev0.Data[0].ObjectID != first.ID {
		t.Fatal(err)
	}
	ps := createN(t, c, 6)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []string
	for e, err := range c.StreamEvents(ctx, client.StreamParams{LastEventID: ev0.Data[0].ID}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.ObjectID)
		if len(got) == len(ps) {
			break
		}
	}
	for i, p := range ps {
		if got[i] != p.ID {
			t.Fatalf("event %d is about %s, want %s (got %v)", i, got[i], p.ID, got)
		}
	}
	if n := cut.Load(); n > 0 {
		t.Fatalf("%d planned cuts never happened", n)
	}
}

// cutAfterEvent passes on a stream's first event and nothing after it,
// then ends the request: the connection drops in the middle of a batch.
type cutAfterEvent struct {
	http.ResponseWriter
	cancel context.CancelFunc
	done   bool
}

func (w *cutAfterEvent) Write(b []byte) (int, error) {
	if w.done {
		return len(b), nil
	}
	s := string(b)
	i := strings.Index(s, "id: ")
	if i < 0 {
		return w.ResponseWriter.Write(b)
	}
	end := strings.Index(s[i:], "\n\n")
	if _, err := w.ResponseWriter.Write(b[:i+end+2]); err != nil {
		return 0, err
	}
	w.done = true
	w.cancel()
	return len(b), nil
}

func (w *cutAfterEvent) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

func TestStreamEventsRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		c    *client.Client
		p    client.StreamParams
		code string
	}{
		{client.New(s.url, "sk_wrong"), client.StreamParams{}, "unauthorized"},
		{client.New(s.url, apiKey), client.StreamParams{LastEventID: "evt_gone"}, "invalid_cursor"},
		{client.New(s.url, apiKey), client.StreamParams{Types: []string{"payout.maybe"}}, "unknown_event_type"},
	} {
		for e, err := range tc.c.StreamEvents(ctx, tc.p) {
			if e != nil || client.ErrorCode(err) != tc.code {
				t.Errorf("%+v: got %v, %v; want %s", tc.p, e, err, tc.code)
			}
		}
	}
}

func TestGetStatus(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil, nil)
	c := client.New(s.url, apiKey)
	ps := createN(t, c, 2)
	st, err := c.GetStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Object != "status" || st.Payouts["queued"] != 2 || st.Oldest == nil || st.Oldest.ID != ps[0].ID || st.Checks["database"].Status != "ok" {
		t.Fatalf("status = %+v", st)
	}
}
