package events_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicepay/sluice/internal/events"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
	"github.com/sluicepay/sluice/internal/store/storetest"
)

var quiet = slog.New(slog.DiscardHandler)

// clock is a settable clock shared by the store and the dispatcher.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openSQLite opens a store on a temporary file with clock c (nil: real time).
func openSQLite(t testing.TB, c *clock) *store.DB {
	t.Helper()
	return openURL(t, "sqlite:"+filepath.Join(t.TempDir(), "sluice.db"), c)
}

func openPostgres(t testing.TB, c *clock) *store.DB {
	t.Helper()
	return openURL(t, storetest.PostgresURL(t), c)
}

func openURL(t testing.TB, url string, c *clock) *store.DB {
	t.Helper()
	opts := store.Options{Logger: quiet}
	if c != nil {
		opts.Now = c.Now
	}
	db, err := store.Open(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// delivery is one request a receiver got.
type delivery struct {
	id, timestamp, signature string
	body                     []byte
	verified                 bool // the signature checks with the endpoint's secret(s)
	at                       time.Time
}

// receiver is a real HTTP server recording deliveries; status decides the
// answer (200 when nil).
type receiver struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	secrets []string // secrets a signature may use
	got     []delivery
	status  func(id string) int
	notify  chan struct{}
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t, notify: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	d := delivery{id: req.Header.Get("webhook-id"), timestamp: req.Header.Get("webhook-timestamp"),
		signature: req.Header.Get("webhook-signature"), body: body, at: time.Now()}
	r.mu.Lock()
	d.verified = verify(r.secrets, d)
	status := 200
	if r.status != nil {
		status = r.status(d.id)
	}
	if status >= 200 && status < 300 {
		r.got = append(r.got, d)
	}
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	w.WriteHeader(status)
}

// setStatus changes how the receiver answers.
func (r *receiver) setStatus(f func(id string) int) {
	r.mu.Lock()
	r.status = f
	r.mu.Unlock()
}

func (r *receiver) setSecrets(s ...string) {
	r.mu.Lock()
	r.secrets = s
	r.mu.Unlock()
}

// accepted returns the deliveries answered 2xx so far.
func (r *receiver) accepted() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// verify checks a Standard Webhooks signature the way the spec writes it,
// independently of events.Signature: every v1 entry must match one of the
// secrets and at least one must be there.
func verify(secrets []string, d delivery) bool {
	if _, err := strconv.ParseInt(d.timestamp, 10, 64); err != nil {
		return false
	}
	entries := strings.Fields(d.signature)
	if len(entries) == 0 {
		return false
	}
	for _, e := range entries {
		sig, ok := strings.CutPrefix(e, "v1,")
		if !ok {
			return false
		}
		found := false
		for _, s := range secrets {
			key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
			mac := hmac.New(sha256.New, key)
			mac.Write([]byte(d.id + "." + d.timestamp + "." + string(d.body)))
			want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
			found = found || hmac.Equal([]byte(want), []byte(sig))
		}
		if !found {
			return false
		}
	}
	return true
}

// addEndpoint stores an enabled endpoint for url receiving types ("*" when none).
func addEndpoint(t testing.TB, db *store.DB, url string, types ...string) *payout.WebhookEndpoint {
	t.Helper()
	if len(types) == 0 {
		types = []string{payout.AllEventTypes}
	}
	e := &payout.WebhookEndpoint{ID: payout.NewWebhookEndpointID(time.Now()), URL: url, EnabledEvents: types,
		Enabled: true, Secret: payout.NewWebhookSecret()}
	if err := db.CreateWebhookEndpoint(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	return e
}

// appendEvents writes n events of type typ about one object.
func appendEvents(t testing.TB, db *store.DB, typ string, n int) {
	t.Helper()
	for i := range n {
		if err := db.AppendEvent(context.Background(), "obj_test", typ, map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
}

// allEvents returns every event in the outbox.
func allEvents(t testing.TB, db *store.DB) []payout.Event {
	t.Helper()
	var out []payout.Event
	var after int64
	for {
		evs, err := db.ListEvents(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return out
		}
		out = append(out, evs...)
		after = evs[len(evs)-1].Seq
	}
}

// start runs a dispatcher until the test ends; it may reach 127.0.0.1.
func start(t testing.TB, cfg events.Config) *events.Dispatcher {
	t.Helper()
	if cfg.Owner == "" {
		cfg.Owner = "test"
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	cfg.AllowPrivateTargets = true // receivers listen on 127.0.0.1
	if cfg.Poll == 0 {
		cfg.Poll = 10 * time.Millisecond
	}
	d, err := events.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.Start(context.Background())
	t.Cleanup(d.Stop)
	return d
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ids returns the webhook-ids of deliveries, counted.
func ids(ds []delivery) map[string]int {
	m := map[string]int{}
	for _, d := range ds {
		m[d.id]++
	}
	return m
}

// wire is the event wire form.
func wire(t testing.TB, e payout.Event) string {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
