package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
	"github.com/sluicepay/sluice/internal/store/storetest"
)

const (
	testKey      = "sk_test_primary_0123456789"
	otherKey     = "sk_test_secondary_9876543210"
	validTo      = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	badChecksum  = "0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	maxUint256   = "115792089237316195423570985008687907853269984665640564039457584007913129639935"
	overUint256  = "115792089237316195423570985008687907853269984665640564039457584007913129639936"
	validPayload = `{"chain":"sandbox","asset":"SUSD","to":"` + validTo + `","amount":"1500000"}`
)

var (
	testToken  = common.HexToAddress("0x00000000000000000000000000000000000000aa")
	testWallet = common.HexToAddress("0x00000000000000000000000000000000000000bb")
	testNow    = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
)

func testCatalog() *payout.Catalog {
	return &payout.Catalog{Chains: map[string]payout.Chain{
		"sandbox": {Name: "sandbox", ChainID: 1337, Confirmations: 2, HotWallet: testWallet, Assets: map[string]payout.Asset{
			"ETH":  {Symbol: "ETH", Decimals: 18},
			"SUSD": {Symbol: "SUSD", Token: &testToken, Decimals: 6},
		}},
	}}
}

// env is an API on a real SQLite store in a temporary directory.
type env struct {
	t        *testing.T
	db       *store.DB
	api      *Server
	h        http.Handler
	registry *prometheus.Registry
	woken    chan struct{}
}

// newEnv builds an API; wrap, when not nil, wraps the real store (to block
// or observe calls) before the API sees it.
func newEnv(t *testing.T, wrap func(payout.Store) payout.Store, ready map[string]func(context.Context) error) *env {
	t.Helper()
	db := openStore(t)
	var st payout.Store = db
	if wrap != nil {
		st = wrap(db)
	}
	e := &env{t: t, db: db, registry: prometheus.NewRegistry(), woken: make(chan struct{}, 1000)}
	api, err := New(Config{
		Store: st, Catalog: testCatalog(), Registry: e.registry, Ready: ready,
		APIKeys: []APIKey{{ID: "key_a", Name: "primary", Hash: HashAPIKey(testKey)},
			{ID: "key_b", Name: "secondary", Hash: HashAPIKey(otherKey)}},
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return testNow }, Version: "test",
		EventsChanged: db.Committed,
		OnPayoutCreated: func(*payout.Payout) {
			select {
			case e.woken <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.api, e.h = api, api.Handler()
	return e
}

func openStore(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "db"), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// response is a recorded answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// problemOf decodes a problem body.
func (r response) problem(t *testing.T) problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, r.body)
	}
	var p problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	return p
}

func (r response) payout(t *testing.T) *payout.Payout {
	t.Helper()
	var p payout.Payout
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("payout body %s: %v", r.body, err)
	}
	return &p
}

// do sends a request through the real router. Headers come as "Name:
// value" strings; every request carries the test key unless a header
// names Authorization (an empty value removes it).
func (e *env) do(method, path, body string, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Authorization", "Bearer "+testKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		if value = strings.TrimSpace(value); value == "" {
			req.Header.Del(name)
		} else {
			req.Header.Set(name, value)
		}
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	checkContract(e.t, req, body, rec) // every answer must match api/openapi.yaml
	return response{status: rec.Code, header: rec.Header(), body: bytes.Clone(rec.Body.Bytes())}
}

// create posts a payout with an idempotency key.
func (e *env) create(key, body string) response {
	e.t.Helper()
	return e.do("POST", "/v1/payouts", body, "Idempotency-Key: "+key)
}

// mustCreate creates a payout and returns it.
func (e *env) mustCreate(key, body string) *payout.Payout {
	e.t.Helper()
	r := e.create(key, body)
	if r.status != http.StatusCreated {
		e.t.Fatalf("create: status %d, body %s", r.status, r.body)
	}
	return r.payout(e.t)
}

// count says how many payouts the store holds.
func (e *env) count() int64 { return storetest.CountAll(e.t, e.db) }

func payoutBody(amount string) string {
	return `{"chain":"sandbox","asset":"SUSD","to":"` + validTo + `","amount":"` + amount + `"}`
}
