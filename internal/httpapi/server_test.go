package httpapi

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	tests := []struct {
		name       string
		method     string
		path       string
		auth       string
		wantStatus int
	}{
		{"list without key", "GET", "/v1/payouts", "Authorization:", 401},
		{"get without key", "GET", "/v1/payouts/po_x", "Authorization:", 401},
		{"cancel without key", "POST", "/v1/payouts/po_x/cancel", "Authorization:", 401},
		{"chains without key", "GET", "/v1/chains", "Authorization:", 401},
		{"wrong key", "GET", "/v1/chains", "Authorization: Bearer " + testKey + "x", 401},
		{"key prefix", "GET", "/v1/chains", "Authorization: Bearer " + testKey[:5], 401},
		{"empty bearer", "GET", "/v1/chains", "Authorization: Bearer ", 401},
		{"token scheme", "GET", "/v1/chains", "Authorization: Token " + testKey, 401},
		{"primary key", "GET", "/v1/chains", "Authorization: Bearer " + testKey, 200},
		{"secondary key", "GET", "/v1/chains", "Authorization: Bearer " + otherKey, 200},
		{"lowercase scheme", "GET", "/v1/chains", "Authorization: bearer " + testKey, 200},
		{"healthz needs no key", "GET", "/healthz", "Authorization:", 200},
		{"readyz needs no key", "GET", "/readyz", "Authorization:", 200},
		{"metrics needs no key", "GET", "/metrics", "Authorization:", 200},
	}
	for _, tt := range tests {
		r := e.do(tt.method, tt.path, "", tt.auth)
		if r.status != tt.wantStatus {
			t.Errorf("%s: status %d, want %d", tt.name, r.status, tt.wantStatus)
			continue
		}
		if tt.wantStatus != 401 {
			continue
		}
		p := r.problem(t)
		if p.Code != payout.CodeUnauthorized || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: code %s, WWW-Authenticate %q", tt.name, p.Code, r.header.Get("WWW-Authenticate"))
		}
		if secret, ok := strings.CutPrefix(tt.auth, "Authorization: Bearer "); ok && len(secret) > 3 && strings.Contains(string(r.body), secret) {
			t.Errorf("%s: the answer echoes the key", tt.name)
		}
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	seen := map[string]bool{}
	for range 3 {
		id := e.do("GET", "/healthz", "").header.Get("Request-Id")
		if !strings.HasPrefix(id, "req_") || seen[id] {
			t.Errorf("generated Request-Id %q: want a new req_ id each time", id)
		}
		seen[id] = true
	}
	tests := []struct {
		incoming string
		keep     bool
	}{
		{"abc-123_X.y:z", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"has space", false},
		{"quote\"", false},
		{"<script>", false},
	}
	for _, tt := range tests {
		r := e.do("GET", "/v1/payouts/po_missing", "", "Request-Id: "+tt.incoming)
		got := r.header.Get("Request-Id")
		if (got == tt.incoming) != tt.keep || got == "" {
			t.Errorf("incoming %q: answered Request-Id %q, keep=%v", tt.incoming, got, tt.keep)
		}
		if p := r.problem(t); p.RequestID != got {
			t.Errorf("problem request_id %q, header %q", p.RequestID, got)
		}
	}
}

func TestChains(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	r := e.do("GET", "/v1/chains", "")
	var got any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"object": "list", "has_more": false, "url": "/v1/chains", "data": []any{
		map[string]any{"object": "chain", "name": "sandbox", "chain_id": 1337.0, "confirmations": 2.0,
			"hot_wallet": testWallet.Hex(), "hot_wallets": []any{testWallet.Hex()}, "assets": []any{
				map[string]any{"symbol": "ETH", "address": nil, "decimals": 18.0},
				map[string]any{"symbol": "SUSD", "address": testToken.Hex(), "decimals": 6.0},
			}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /v1/chains (-want +got):\n%s", diff)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	r := e.do("GET", "/healthz", "")
	var got map[string]string
	if err := json.Unmarshal(r.body, &got); err != nil || r.status != 200 || got["status"] != "ok" || got["version"] != "test" {
		t.Errorf("healthz: %d %s (%v)", r.status, r.body, err)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	upstreamDown := errors.New("dial tcp 10.0.0.1:8545 https://rpc.example/v3/SECRETPROJECTKEY: refused")
	tests := []struct {
		name       string
		checks     map[string]func(context.Context) error
		wantStatus int
		want       map[string]string // check name to status
	}{
		{"all pass", map[string]func(context.Context) error{"chain:sandbox": func(context.Context) error { return nil }},
			200, map[string]string{"database": "ok", "chain:sandbox": "ok"}},
		{"upstream down", map[string]func(context.Context) error{
			"chain:sandbox": func(context.Context) error { return upstreamDown },
			"signer:0xbb":   func(context.Context) error { return nil },
		}, 503, map[string]string{"database": "ok", "chain:sandbox": "fail", "signer:0xbb": "ok"}},
		{"database check replaced", map[string]func(context.Context) error{"database": func(context.Context) error { return upstreamDown }},
			503, map[string]string{"database": "fail"}},
	}
	for _, tt := range tests {
		e := newEnv(t, nil, tt.checks)
		r := e.do("GET", "/readyz", "", "Authorization:")
		var got readiness
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		gotChecks := map[string]string{}
		for name, c := range got.Checks {
			gotChecks[name] = c.Status
		}
		if diff := cmp.Diff(tt.want, gotChecks); diff != "" || r.status != tt.wantStatus {
			t.Errorf("%s: status %d (want %d); checks (-want +got):\n%s", tt.name, r.status, tt.wantStatus, diff)
		}
		if strings.Contains(string(r.body), "SECRETPROJECTKEY") {
			t.Errorf("%s: /readyz leaks a check's error text: %s", tt.name, r.body)
		}
	}
}

func TestReadyzTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the readiness timeout")
	}
	t.Parallel()
	e := newEnv(t, nil, map[string]func(context.Context) error{
		"slow": func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
	})
	start := time.Now()
	r := e.do("GET", "/readyz", "")
	if r.status != 503 || !strings.Contains(string(r.body), "timed out") || time.Since(start) > readyTimeout+2*time.Second {
		t.Errorf("hanging check: %d %s after %v", r.status, r.body, time.Since(start))
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	e.mustCreate("m1", validPayload)
	e.create("m1", validPayload)
	e.do("GET", "/v1/payouts/po_missing", "")
	r := e.do("GET", "/metrics", "")
	body := string(r.body)
	for _, want := range []string{
		`sluice_http_requests_total{method="POST",route="/v1/payouts",status="201"} 2`,
		`sluice_http_requests_total{method="GET",route="/v1/payouts/{id}",status="404"} 1`,
		`sluice_http_request_duration_seconds_count{method="POST",route="/v1/payouts"} 2`,
		`sluice_http_idempotent_replays_total 1`,
		`sluice_http_requests_in_flight 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	key := []APIKey{{ID: "k", Hash: HashAPIKey("s")}}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no store", Config{Catalog: testCatalog(), APIKeys: key}, "Store"},
		{"no catalog", Config{Store: db, APIKeys: key}, "Catalog"},
		{"no keys", Config{Store: db, Catalog: testCatalog()}, "APIKeys"},
		{"duplicate key ids", Config{Store: db, Catalog: testCatalog(), APIKeys: append(key, key[0])}, "APIKeys[1]"},
		{"key without hash", Config{Store: db, Catalog: testCatalog(), APIKeys: []APIKey{{ID: "k"}}}, "APIKeys[0]"},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New error %v, want one naming %s", tt.name, err, tt.want)
		}
	}
}

func TestHashAPIKey(t *testing.T) {
	t.Parallel()
	// SHA-256("abc"), from FIPS 180-2.
	want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	got := HashAPIKey("abc")
	if diff := cmp.Diff(want, hex.EncodeToString(got[:])); diff != "" {
		t.Errorf("HashAPIKey (-want +got):\n%s", diff)
	}
}

// An error the API does not know is 500 internal_error, its cause logged
// with the request id and not sent.
func TestInternalErrorHidesCause(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	api, err := New(Config{
		Store: failingGet{openStore(t)}, Catalog: testCatalog(), Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		APIKeys: []APIKey{{ID: "key_a", Hash: HashAPIKey(testKey)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, h: api.Handler()}
	r := e.do("GET", "/v1/payouts/po_x", "")
	p := r.problem(t)
	if r.status != 500 || p.Code != payout.CodeInternal || strings.Contains(string(r.body), "disk on fire") {
		t.Errorf("got %d %s %s, want 500 internal_error without the cause", r.status, p.Code, r.body)
	}
	if !strings.Contains(logs.String(), "disk on fire") || !strings.Contains(logs.String(), `"request_id":"`+p.RequestID+`"`) {
		t.Errorf("the cause is not logged with the request id:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), testKey) {
		t.Errorf("the log holds the API key:\n%s", logs.String())
	}
}

// failingGet is the real store whose GetPayout fails unexpectedly.
type failingGet struct{ payout.Store }

func (failingGet) GetPayout(context.Context, string) (*payout.Payout, error) {
	return nil, errors.New("disk on fire")
}
