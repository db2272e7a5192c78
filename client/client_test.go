package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/httpapi"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
	"github.com/sluicepay/sluice/internal/store/storetest"
)

const (
	apiKey = "sk_client_test_key"
	to     = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
)

var token = common.HexToAddress("0x00000000000000000000000000000000000000aa")

// server is a real API on a real SQLite store.
type server struct {
	url string
	db  *store.DB
}

// startServer serves the API; wrapStore and wrapHandler, when not nil,
// wrap the real store and handler to inject faults.
func startServer(dir string, wrapStore func(payout.Store) payout.Store, wrapHandler func(http.Handler) http.Handler) (*server, func(), error) {
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "db"), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, nil, err
	}
	var st payout.Store = db
	if wrapStore != nil {
		st = wrapStore(db)
	}
	api, err := httpapi.New(httpapi.Config{
		Store: st, Logger: slog.New(slog.DiscardHandler),
		APIKeys:       []httpapi.APIKey{{ID: "key_1", Name: "test", Hash: httpapi.HashAPIKey(apiKey)}},
		EventsChanged: db.Committed,
		Catalog: &payout.Catalog{Chains: map[string]payout.Chain{"sandbox": {
			Name: "sandbox", ChainID: 1337, Confirmations: 1, HotWallet: common.HexToAddress("0xbb"),
			Assets: map[string]payout.Asset{"ETH": {Symbol: "ETH", Decimals: 18}, "SUSD": {Symbol: "SUSD", Token: &token, Decimals: 6}},
		}}},
	})
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	h := api.Handler()
	if wrapHandler != nil {
		h = wrapHandler(h)
	}
	srv := httptest.NewServer(h)
	return &server{url: srv.URL, db: db}, func() { api.CloseStreams(); srv.Close(); _ = db.Close() }, nil
}

func newServer(t *testing.T, wrapStore func(payout.Store) payout.Store, wrapHandler func(http.Handler) http.Handler) *server {
	t.Helper()
	s, stop, err := startServer(t.TempDir(), wrapStore, wrapHandler)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s
}

func (s *server) count(t *testing.T) int64 { return storetest.CountAll(t, s.db) }

// cmpBig compares amounts by value.
var cmpBig = cmp.Comparer(func(a, b *big.Int) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Cmp(b) == 0
})

func fast(opts ...client.Option) []client.Option {
	return append([]client.Option{client.WithBackoff(time.Millisecond, 10*time.Millisecond)}, opts...)
}

func params(amount int64) client.CreatePayoutParams {
	return client.CreatePayoutParams{Chain: "sandbox", Asset: "SUSD", To: to, Amount: big.NewInt(amount)}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil, nil)
	c := client.New(s.url, apiKey, fast()...)
	ctx := context.Background()

	chains, err := c.ListChains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []client.Chain{{Name: "sandbox", ChainID: 1337, Confirmations: 1, HotWallet: common.HexToAddress("0xbb").Hex(),
		HotWallets: []string{common.HexToAddress("0xbb").Hex()},
		Assets:     []client.Asset{{Symbol: "ETH", Decimals: 18}, {Symbol: "SUSD", Address: token.Hex(), Decimals: 6}}}}
	if diff := cmp.Diff(want, chains); diff != "" {
		t.Errorf("ListChains (-want +got):\n%s", diff)
	}

	p := params(1_500_000)
	p.ExternalID, p.Metadata = "inv-1", map[string]string{"order": "7"}
	created, err := c.CreatePayout(ctx, p, "")
	if err != nil {
		t.Fatal(err)
	}
	if created.Status != client.StatusQueued || created.Amount.String() != "1500000" || created.ExternalID != "inv-1" ||
		created.To != to || created.Metadata["order"] != "7" || created.CreatedAt.IsZero() {
		t.Errorf("created payout %+v", created)
	}
	got, err := c.GetPayout(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(created, got, cmpBig); diff != "" {
		t.Errorf("GetPayout differs from CreatePayout (-created +got):\n%s", diff)
	}
	cancelled, err := c.CancelPayout(ctx, created.ID)
	if err != nil || cancelled.Status != client.StatusCancelled {
		t.Fatalf("CancelPayout: %v, %+v", err, cancelled)
	}
	_, err = c.CancelPayout(ctx, created.ID)
	if code := client.ErrorCode(err); code != "payout_not_cancellable" {
		t.Errorf("second cancel: %v, want payout_not_cancellable", err)
	}
}

func TestPayoutPages(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil, nil)
	c := client.New(s.url, apiKey, fast()...)
	ctx := context.Background()
	var newestFirst []string
	for i := range 23 {
		p, err := c.CreatePayout(ctx, params(int64(i+1)), fmt.Sprint("k", i))
		if err != nil {
			t.Fatal(err)
		}
		newestFirst = append([]string{p.ID}, newestFirst...)
	}
	var got []string
	var sizes []int
	for page, err := range c.PayoutPages(ctx, client.ListPayoutsParams{Limit: 10}) {
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page.Data))
		for _, p := range page.Data {
			got = append(got, p.ID)
		}
	}
	if diff := cmp.Diff(newestFirst, got); diff != "" {
		t.Errorf("paged ids (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{10, 10, 3}, sizes); diff != "" {
		t.Errorf("page sizes (-want +got):\n%s", diff)
	}
	one, err := c.ListPayouts(ctx, client.ListPayoutsParams{Status: client.StatusQueued, Limit: 2, StartingAfter: newestFirst[0]})
	if err != nil || len(one.Data) != 2 || one.Data[0].ID != newestFirst[1] || !one.HasMore {
		t.Errorf("ListPayouts after the newest: %v %+v", err, one)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil, nil)
	ctx := context.Background()
	c := client.New(s.url, apiKey, fast()...)

	_, err := c.CreatePayout(ctx, client.CreatePayoutParams{Chain: "sandbox", Asset: "DOGE", To: "0x12", Amount: big.NewInt(0)}, "")
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("err %v is not a *client.Error", err)
	}
	var fields []string
	for _, f := range e.Errors {
		fields = append(fields, f.Pointer+" "+f.Code)
	}
	if diff := cmp.Diff([]string{"/asset unknown_asset", "/to invalid_address", "/amount invalid_amount"}, fields); diff != "" || e.Status != 422 || e.Code != "invalid_request" || e.RequestID == "" {
		t.Errorf("validation error %+v; fields (-want +got):\n%s", e, diff)
	}

	p := params(5)
	p.ExternalID = "dup"
	first, err := c.CreatePayout(ctx, p, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreatePayout(ctx, p, "")
	if !errors.As(err, &e) || e.Status != 409 || e.Code != "duplicate_external_id" || e.ExistingPayoutID != first.ID {
		t.Errorf("duplicate external id: %v", err)
	}

	_, err = client.New(s.url, "sk_wrong", fast()...).ListChains(ctx)
	if !errors.As(err, &e) || e.Status != 401 || e.Code != "unauthorized" {
		t.Errorf("wrong key: %v", err)
	}
	_, err = c.GetPayout(ctx, "po_01M857BT59A3VHEN37YQ7P71HA")
	if client.ErrorCode(err) != "not_found" {
		t.Errorf("missing payout: %v", err)
	}
}

// flaky answers the first n requests itself with fail, then lets the
// API answer; it records each request's Idempotency-Key.
type flaky struct {
	next http.Handler
	n    int32
	fail func(w http.ResponseWriter, r *http.Request, next http.Handler)
	seen atomic.Int32
	mu   sync.Mutex
	keys []string
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
	f.mu.Unlock()
	if f.seen.Add(1) <= f.n {
		f.fail(w, r, f.next)
		return
	}
	f.next.ServeHTTP(w, r)
}

// dropAfterStoring lets the API store the payout, then cuts the connection
// before the answer reaches the client: the worst case for retries.
func dropAfterStoring(w http.ResponseWriter, r *http.Request, next http.Handler) {
	next.ServeHTTP(httptest.NewRecorder(), r)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

func unavailable(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
	http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
}

func TestRetriesKeepTheIdempotencyKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fail func(http.ResponseWriter, *http.Request, http.Handler)
	}{
		{"connection cut after the payout was stored", dropAfterStoring},
		{"503 from a proxy", unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &flaky{n: 2, fail: tt.fail}
			s := newServer(t, nil, func(h http.Handler) http.Handler { f.next = h; return f })
			c := client.New(s.url, apiKey, fast()...)
			p, err := c.CreatePayout(context.Background(), params(9), "")
			if err != nil {
				t.Fatal(err)
			}
			if p.Amount.Int64() != 9 || s.count(t) != 1 {
				t.Errorf("payout %+v; store holds %d payouts, want 1", p, s.count(t))
			}
			if len(f.keys) != 3 || f.keys[0] == "" || f.keys[0] != f.keys[1] || f.keys[1] != f.keys[2] {
				t.Errorf("idempotency keys sent %q: want the same key 3 times", f.keys)
			}
		})
	}
}

func TestNoRetries(t *testing.T) {
	t.Parallel()
	f := &flaky{n: 1, fail: unavailable}
	s := newServer(t, nil, func(h http.Handler) http.Handler { f.next = h; return f })
	_, err := client.New(s.url, apiKey, fast(client.WithRetries(0))...).ListChains(context.Background())
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 503 || e.Code != "unexpected_response" || f.seen.Load() != 1 {
		t.Errorf("err %v after %d requests; want one 503 unexpected_response", err, f.seen.Load())
	}
}

// holdFirst is the real store whose first CreatePayout waits for release.
type holdFirst struct {
	payout.Store
	held    atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (h *holdFirst) CreatePayout(ctx context.Context, p *payout.Payout, idem *payout.IdempotencyRecord) error {
	if h.held.CompareAndSwap(false, true) {
		close(h.entered)
		<-h.release
	}
	return h.Store.CreatePayout(ctx, p, idem)
}

// A second client with the same key while the first is in flight gets
// 409 idempotency_key_in_use, waits, and receives the same payout.
func TestRetryWhileInFlight(t *testing.T) {
	t.Parallel()
	hold := &holdFirst{entered: make(chan struct{}), release: make(chan struct{})}
	var conflicts atomic.Int32
	s := newServer(t, func(st payout.Store) payout.Store { hold.Store = st; return hold }, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code == http.StatusConflict && conflicts.Add(1) == 1 {
				close(hold.release) // the first request may finish once the second was refused
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		})
	})
	c := client.New(s.url, apiKey, fast()...)
	ctx := context.Background()
	first := make(chan *client.Payout)
	go func() {
		p, err := c.CreatePayout(ctx, params(3), "shared-key")
		if err != nil {
			t.Error(err)
		}
		first <- p
	}()
	<-hold.entered
	second, err := c.CreatePayout(ctx, params(3), "shared-key")
	if err != nil {
		t.Fatal(err)
	}
	if p := <-first; p == nil || p.ID != second.ID || conflicts.Load() != 1 || s.count(t) != 1 {
		t.Errorf("first %+v, second %s, %d conflicts, %d payouts: want one payout seen by both after one 409", p, second.ID, conflicts.Load(), s.count(t))
	}
}

func TestContextStopsRetries(t *testing.T) {
	t.Parallel()
	f := &flaky{n: 1000, fail: unavailable}
	s := newServer(t, nil, func(h http.Handler) http.Handler { f.next = h; return f })
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	c := client.New(s.url, apiKey, client.WithRetries(1000), client.WithBackoff(20*time.Millisecond, 20*time.Millisecond))
	start := time.Now()
	_, err := c.ListChains(ctx)
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("err %v after %v; want an error soon after the deadline", err, time.Since(start))
	}
}
