package httpapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

// clock is a settable clock shared by the servers of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// keyEnv is an API on db (a new SQLite store when nil) with the admin
// config key testKey, the clock clk and cfg changed by mod. Several
// keyEnvs on one db are several instances on one database.
func keyEnv(t *testing.T, db *store.DB, clk *clock, mod func(*Config)) *env {
	t.Helper()
	if db == nil {
		db = openStore(t)
	}
	cfg := Config{
		Store: db, Catalog: testCatalog(), Registry: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler),
		APIKeys: []APIKey{{ID: "key_a", Name: "primary", Hash: HashAPIKey(testKey)}}, Now: clk.now,
	}
	if mod != nil {
		mod(&cfg)
	}
	api, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, db: db, api: api, h: api.Handler(), registry: cfg.Registry}
}

// createdKey is the answer to POST /v1/api_keys.
type createdKey struct {
	ID             string         `json:"id"`
	Name           string         `json:"name"`
	Prefix         string         `json:"prefix"`
	Scopes         []string       `json:"scopes"`
	APIVersion     string         `json:"api_version"`
	RequireSigning bool           `json:"require_signing"`
	RateLimit      *rateLimitView `json:"rate_limit"`
	CreatedAt      time.Time      `json:"created_at"`
	LastUsedAt     *time.Time     `json:"last_used_at"`
	RevokedAt      *time.Time     `json:"revoked_at"`
	Secret         string         `json:"secret"`
}

// newKey creates a key through the API with the admin config key.
func (e *env) newKey(body string) createdKey {
	e.t.Helper()
	r := e.do("POST", "/v1/api_keys", body)
	if r.status != http.StatusCreated {
		e.t.Fatalf("create key %s: %d %s", body, r.status, r.body)
	}
	var k createdKey
	if err := json.Unmarshal(r.body, &k); err != nil {
		e.t.Fatal(err)
	}
	return k
}

func bearer(secret string) string { return "Authorization: Bearer " + secret }

func TestAPIKeyLifecycle(t *testing.T) {
	t.Parallel()
	clk := &clock{t: testNow}
	var logs bytes.Buffer
	e := keyEnv(t, nil, clk, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	k := e.newKey(`{"name":"reporting","scopes":["payouts:read"]}`)
	if !regexp.MustCompile(`^sk_live_[0-9a-f]{64}$`).MatchString(k.Secret) {
		t.Errorf("secret %q, want sk_live_ and 64 hex digits", k.Secret)
	}
	if k.Prefix != k.Secret[:12] || !strings.HasPrefix(k.ID, "key_") || k.APIVersion != CurrentVersion() ||
		fmt.Sprint(k.Scopes) != "[payouts:read]" || !k.CreatedAt.Equal(testNow.Truncate(time.Microsecond)) || k.RevokedAt != nil || k.RateLimit != nil {
		t.Errorf("created key %+v", k)
	}
	other := e.newKey(`{"name":"other","scopes":["admin"]}`)
	if other.Secret == k.Secret || other.ID == k.ID {
		t.Fatal("two keys share a secret or id")
	}

	if r := e.do("GET", "/v1/payouts", "", bearer(k.Secret)); r.status != http.StatusOK {
		t.Fatalf("the new key cannot list payouts: %d %s", r.status, r.body)
	}
	list := e.do("GET", "/v1/api_keys", "")
	hash := HashAPIKey(k.Secret)
	for _, secretish := range []string{k.Secret, other.Secret, hex.EncodeToString(hash[:]), "secret", "hash"} {
		if bytes.Contains(list.body, []byte(secretish)) {
			t.Errorf("GET /v1/api_keys shows %q: %s", secretish, list.body)
		}
	}
	var l struct{ Data []createdKey }
	if err := json.Unmarshal(list.body, &l); err != nil || len(l.Data) != 2 || l.Data[0].ID != other.ID || l.Data[1].ID != k.ID {
		t.Fatalf("list %s (%v): want the two keys, newest first", list.body, err)
	}
	if l.Data[1].LastUsedAt == nil || !l.Data[1].LastUsedAt.Equal(testNow.Truncate(time.Microsecond)) {
		t.Errorf("last_used_at %v after a request, want %v", l.Data[1].LastUsedAt, testNow)
	}

	r := e.do("POST", "/v1/api_keys/"+k.ID+"/revoke", "")
	var revoked createdKey
	if err := json.Unmarshal(r.body, &revoked); r.status != http.StatusOK || err != nil || revoked.RevokedAt == nil || revoked.Secret != "" {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v1/payouts", "", bearer(k.Secret))
	if p := r.problem(t); r.status != http.StatusUnauthorized || p.Code != payout.CodeUnauthorized || !strings.Contains(p.Detail, "revoked") {
		t.Errorf("a revoked key: %d %s, want 401 unauthorized at once", r.status, r.body)
	}
	if r := e.do("POST", "/v1/api_keys/key_nope/revoke", ""); r.status != http.StatusNotFound || r.problem(t).Code != payout.CodeNotFound {
		t.Errorf("revoke unknown: %d %s", r.status, r.body)
	}
	// An admin key may revoke itself; its next request is refused.
	if r := e.do("POST", "/v1/api_keys/"+other.ID+"/revoke", "", bearer(other.Secret)); r.status != http.StatusOK {
		t.Errorf("self-revoke: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/api_keys", "", bearer(other.Secret)); r.status != http.StatusUnauthorized {
		t.Errorf("after self-revoke: %d, want 401", r.status)
	}
	for _, secretish := range []string{k.Secret, other.Secret, hex.EncodeToString(hash[:])} {
		if bytes.Contains(logs.Bytes(), []byte(secretish)) {
			t.Errorf("the logs hold a secret or hash %q", secretish)
		}
	}
	if !bytes.Contains(logs.Bytes(), []byte(`"msg":"api key revoked"`)) {
		t.Errorf("no log of the revocation:\n%s", logs.Bytes())
	}
}

func TestAPIKeyTestModePrefix(t *testing.T) {
	t.Parallel()
	e := keyEnv(t, nil, &clock{t: testNow}, func(c *Config) { c.TestMode = true })
	if k := e.newKey(`{"name":"sandbox","scopes":["admin"]}`); !regexp.MustCompile(`^sk_test_[0-9a-f]{64}$`).MatchString(k.Secret) {
		t.Errorf("secret %q in test mode, want sk_test_…", k.Secret)
	}
}

func TestAPIKeyCreateRefusals(t *testing.T) {
	t.Parallel()
	e := keyEnv(t, nil, &clock{t: testNow}, nil)
	for _, tc := range []struct {
		body       string
		wantStatus int
		wantCode   payout.Code
		wantDetail string
	}{
		{`{"name":"x","scopes":["payouts:read","payouts:delete"]}`, 422, payout.CodeInvalidScope, `"payouts:delete"`},
		{`{"name":"x","scopes":[]}`, 422, payout.CodeInvalidScope, "at least one"},
		{`{"name":"x"}`, 422, payout.CodeInvalidScope, "at least one"},
		{`{"scopes":["admin"]}`, 422, payout.CodeInvalidRequest, "name is required"},
		{`{"name":"x","scopes":["root"],"rate_limit":{"per_second":0,"burst":0}}`, 422, payout.CodeInvalidRequest, "3 fields"},
		{`{"name":"x","scopes":["admin"],"api_version":"1999-01-01"}`, 400, payout.CodeInvalidAPIVersion, "2026-11-01"},
		{`{"name":"x","scopes":["admin"],"owner":"me"}`, 400, payout.CodeUnknownField, `"owner"`},
		{`{"name":"x","scopes":"admin"}`, 400, payout.CodeMalformedJSON, ""},
		{`{"name":"x","scopes":["admin"]} {}`, 400, payout.CodeMalformedJSON, "one JSON object"},
	} {
		r := e.do("POST", "/v1/api_keys", tc.body)
		p := r.problem(t)
		if r.status != tc.wantStatus || p.Code != tc.wantCode || !strings.Contains(p.Detail, tc.wantDetail) {
			t.Errorf("%s: %d %s %q, want %d %s containing %q", tc.body, r.status, p.Code, p.Detail, tc.wantStatus, tc.wantCode, tc.wantDetail)
		}
	}
	if ks, _, _ := e.db.ListAPIKeys(t.Context(), payout.APIKeyFilter{Limit: 100}); len(ks) != 0 {
		t.Errorf("refused requests stored %d keys", len(ks))
	}
}

// Every scope against every route: a key reaches exactly the routes its
// scopes allow, and anything else answers 403 forbidden. Every /v1 route
// the server serves must be in the table.
func TestScopesPerRoute(t *testing.T) {
	t.Parallel()
	e := keyEnv(t, nil, &clock{t: testNow}, nil)
	p := e.mustCreate("scopes-1", validPayload)
	const evt = "evt_01KDXN3AWVQCSEJ6G9E2Q4R1ZT"
	routes := []struct {
		method, pattern, path, body string
		need                        payout.Scope
	}{
		{"GET", "/v1/payouts", "/v1/payouts", "", payout.ScopePayoutsRead},
		{"POST", "/v1/payouts", "/v1/payouts", validPayload, payout.ScopePayoutsWrite},
		{"GET", "/v1/payouts/{id}", "/v1/payouts/" + p.ID, "", payout.ScopePayoutsRead},
		{"POST", "/v1/payouts/{id}/cancel", "/v1/payouts/" + p.ID + "/cancel", "", payout.ScopePayoutsWrite},
		{"POST", "/v1/payouts/{id}/speed-up", "/v1/payouts/" + p.ID + "/speed-up", `{"fee_cap":"1"}`, payout.ScopePayoutsWrite},
		{"GET", "/v1/payouts/{id}/attempts", "/v1/payouts/" + p.ID + "/attempts", "", payout.ScopePayoutsRead},
		{"POST", "/v1/payouts/{id}/rebroadcast", "/v1/payouts/" + p.ID + "/rebroadcast", "", payout.ScopePayoutsWrite},
		{"POST", "/v1/payouts/{id}/approve", "/v1/payouts/" + p.ID + "/approve", "", payout.ScopeApprover},
		{"POST", "/v1/payouts/{id}/reject", "/v1/payouts/" + p.ID + "/reject", `{"reason":"no"}`, payout.ScopeApprover},
		{"GET", "/v1/events", "/v1/events", "", payout.ScopePayoutsRead},
		{"GET", "/v1/events/stream", "/v1/events/stream", "", payout.ScopePayoutsRead}, // a bad Last-Event-ID ends it at once
		{"GET", "/v1/events/{id}", "/v1/events/" + evt, "", payout.ScopePayoutsRead},
		{"POST", "/v1/events/{id}/redeliver", "/v1/events/" + evt + "/redeliver", "", payout.ScopeWebhooksManage},
		{"GET", "/v1/webhook_endpoints", "/v1/webhook_endpoints", "", payout.ScopeWebhooksManage},
		{"POST", "/v1/webhook_endpoints", "/v1/webhook_endpoints", `{}`, payout.ScopeWebhooksManage},
		{"GET", "/v1/webhook_endpoints/{id}", "/v1/webhook_endpoints/we_missing", "", payout.ScopeWebhooksManage},
		{"POST", "/v1/webhook_endpoints/{id}", "/v1/webhook_endpoints/we_missing", `{}`, payout.ScopeWebhooksManage},
		{"DELETE", "/v1/webhook_endpoints/{id}", "/v1/webhook_endpoints/we_missing", "", payout.ScopeWebhooksManage},
		{"POST", "/v1/webhook_endpoints/{id}/rotate_secret", "/v1/webhook_endpoints/we_missing/rotate_secret", "", payout.ScopeWebhooksManage},
		{"GET", "/v1/webhook_endpoints/{id}/deliveries", "/v1/webhook_endpoints/we_missing/deliveries", "", payout.ScopeWebhooksManage},
		{"GET", "/v1/webhook_deliveries/{id}/attempts", "/v1/webhook_deliveries/wd_missing/attempts", "", payout.ScopeWebhooksManage},
		{"GET", "/v1/chains", "/v1/chains", "", payout.ScopePayoutsRead},
		{"GET", "/v1/status", "/v1/status", "", payout.ScopePayoutsRead},
		{"GET", "/v1/api_keys", "/v1/api_keys", "", payout.ScopeAdmin},
		{"POST", "/v1/api_keys", "/v1/api_keys", `{"name":"x","scopes":["payouts:read"]}`, payout.ScopeAdmin},
		{"POST", "/v1/api_keys/{id}/revoke", "/v1/api_keys/key_missing/revoke", "", payout.ScopeAdmin},
		{"GET", "/v1/pauses", "/v1/pauses", "", payout.ScopeAdmin},
		{"POST", "/v1/pauses", "/v1/pauses", `{"scope":"bogus","reason":"x"}`, payout.ScopeAdmin},
		{"POST", "/v1/pauses/{id}/resume", "/v1/pauses/pse_missing/resume", "", payout.ScopeAdmin},
		{"DELETE", "/v1/pauses/{id}", "/v1/pauses/pse_missing", "", payout.ScopeAdmin},
		{"POST", "/v1/wallet_rotations", "/v1/wallet_rotations", `{"chain":"nope"}`, payout.ScopeAdmin},
		{"GET", "/v1/wallet_rotations", "/v1/wallet_rotations", "", payout.ScopeAdmin},
		{"GET", "/v1/wallet_rotations/{id}", "/v1/wallet_rotations/rot_missing", "", payout.ScopeAdmin},
		{"POST", "/v1/offline_plans", "/v1/offline_plans", `{"chain":"nope","wallet":"0x0"}`, payout.ScopeAdmin},
		{"GET", "/v1/offline_plans/{id}", "/v1/offline_plans/ofp_missing", "", payout.ScopeAdmin},
		{"POST", "/v1/offline_plans/{id}/signed", "/v1/offline_plans/ofp_missing/signed", `{"signed_transactions":[]}`, payout.ScopeAdmin},
		{"POST", "/v1/offline_plans/{id}/void", "/v1/offline_plans/ofp_missing/void", "", payout.ScopeAdmin},
		{"POST", "/v1/batches", "/v1/batches", `{"rows":[]}`, payout.ScopeBatchesWrite},
		{"GET", "/v1/batches/{id}", "/v1/batches/bat_missing", "", payout.ScopePayoutsRead},
		{"POST", "/v1/batches/{id}/approve", "/v1/batches/bat_missing/approve", "", payout.ScopeApprover},
		{"POST", "/v1/batches/{id}/reject", "/v1/batches/bat_missing/reject", `{"reason":"no"}`, payout.ScopeApprover},
		{"GET", "/v1/batches/{id}/statement.csv", "/v1/batches/bat_missing/statement.csv", "", payout.ScopePayoutsRead},
		{"GET", "/v1/audit", "/v1/audit", "", payout.ScopeAdmin},
		{"GET", "/v1/policy", "/v1/policy", "", payout.ScopeAdmin},
		{"PUT", "/v1/policy", "/v1/policy", `{"document":"not: a policy"}`, payout.ScopeAdmin},
		{"GET", "/v1/policy/versions", "/v1/policy/versions", "", payout.ScopeAdmin},
		{"POST", "/v1/policy/versions/{version}/approve", "/v1/policy/versions/99/approve", "", payout.ScopeApprover},
		{"POST", "/v1/policy/versions/{version}/reject", "/v1/policy/versions/99/reject", `{"reason":"no"}`, payout.ScopeApprover},
		{"GET", "/v1/lists", "/v1/lists", "", payout.ScopeAdmin},
		{"POST", "/v1/lists", "/v1/lists", `{"name":"Bad Name","kind":"deny"}`, payout.ScopeAdmin},
		{"POST", "/v1/lists/{name}/entries", "/v1/lists/missing/entries", `{"addresses":[]}`, payout.ScopeAdmin},
	}
	inTable := map[string]bool{}
	for _, rt := range routes {
		inTable[rt.method+" "+rt.pattern] = true
	}
	for path, methods := range e.api.served {
		for _, m := range methods {
			if strings.HasPrefix(path, "/v1/") && path != "/v1/openapi.yaml" && !inTable[m+" "+path] {
				t.Errorf("%s %s is served but not in this test's table: add it with the scope it needs", m, path)
			}
		}
	}
	for _, sc := range payout.Scopes {
		k := e.newKey(`{"name":"` + string(sc) + `","scopes":["` + string(sc) + `"]}`)
		for i, rt := range routes {
			r := e.do(rt.method, rt.path, rt.body, bearer(k.Secret), fmt.Sprintf("Idempotency-Key: %s-%d", sc, i), "Last-Event-ID: bogus")
			allowed := payout.Allows([]payout.Scope{sc}, rt.need)
			switch {
			case allowed && (r.status == http.StatusForbidden || r.status == http.StatusUnauthorized):
				t.Errorf("%s: %s %s answered %d %s, want it allowed", sc, rt.method, rt.path, r.status, r.body)
			case !allowed && (r.status != http.StatusForbidden || r.problem(t).Code != payout.CodeForbidden):
				t.Errorf("%s: %s %s answered %d %s, want 403 forbidden", sc, rt.method, rt.path, r.status, r.body)
			}
		}
	}
	// Only the keys allowed to created payouts.
	if got := e.count(); got != 3 { // the first, and those of payouts:write and admin
		t.Errorf("%d payouts, want 3", got)
	}
}

// A key revoked through one instance is refused there at once and on
// another instance (same database) within KeyCacheTTL.
func TestRevokedOnOtherInstance(t *testing.T) {
	t.Parallel()
	clk := &clock{t: testNow}
	a := keyEnv(t, nil, clk, nil)
	b := keyEnv(t, a.db, clk, nil)
	k := a.newKey(`{"name":"shared","scopes":["payouts:read"]}`)
	if r := b.do("GET", "/v1/chains", "", bearer(k.Secret)); r.status != http.StatusOK {
		t.Fatalf("instance b does not know a key made on a: %d", r.status)
	}
	a.do("POST", "/v1/api_keys/"+k.ID+"/revoke", "")
	if r := a.do("GET", "/v1/chains", "", bearer(k.Secret)); r.status != http.StatusUnauthorized {
		t.Errorf("instance a after revoking: %d, want 401", r.status)
	}
	clk.add(KeyCacheTTL - time.Second)
	if r := b.do("GET", "/v1/chains", "", bearer(k.Secret)); r.status != http.StatusOK {
		t.Errorf("instance b within its cache time: %d, want 200 (the documented delay)", r.status)
	}
	clk.add(time.Second)
	if r := b.do("GET", "/v1/chains", "", bearer(k.Secret)); r.status != http.StatusUnauthorized {
		t.Errorf("instance b %s after the revocation: %d, want 401", KeyCacheTTL, r.status)
	}
}

// last_used_at is written at most once a minute per key.
func TestLastUsedAtOncePerMinute(t *testing.T) {
	t.Parallel()
	clk := &clock{t: testNow}
	e := keyEnv(t, nil, clk, nil)
	k := e.newKey(`{"name":"busy","scopes":["payouts:read"]}`)
	lastUsed := func() time.Time {
		t.Helper()
		dk, err := e.db.APIKeyByHash(t.Context(), HashAPIKey(k.Secret))
		if err != nil || dk.LastUsedAt == nil {
			t.Fatalf("key %+v, %v: no last use", dk, err)
		}
		return *dk.LastUsedAt
	}
	for _, step := range []struct {
		advance time.Duration
		want    time.Time
	}{{0, testNow}, {30 * time.Second, testNow}, {31 * time.Second, testNow.Add(61 * time.Second)}} {
		clk.add(step.advance)
		e.do("GET", "/v1/chains", "", bearer(k.Secret))
		if got := lastUsed(); !got.Equal(step.want.Truncate(time.Microsecond)) {
			t.Errorf("after %s: last_used_at %v, want %v", step.advance, got, step.want)
		}
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	clk := &clock{t: testNow}
	e := keyEnv(t, nil, clk, func(c *Config) { c.RateLimit = payout.RateLimit{PerSecond: 0.5, Burst: 2} })
	k := e.newKey(`{"name":"own","scopes":["payouts:read"],"rate_limit":{"per_second":1,"burst":1}}`)
	clk.add(2 * time.Second) // the admin key's bucket is full again
	for i, want := range []string{"1", "0"} {
		r := e.do("GET", "/v1/chains", "")
		if r.status != http.StatusOK || r.header.Get("RateLimit-Remaining") != want || r.header.Get("RateLimit-Limit") != "2" {
			t.Fatalf("request %d: %d, remaining %q limit %q; want 200, %s, 2", i, r.status, r.header.Get("RateLimit-Remaining"), r.header.Get("RateLimit-Limit"), want)
		}
	}
	r := e.do("GET", "/v1/chains", "")
	if p := r.problem(t); r.status != http.StatusTooManyRequests || p.Code != payout.CodeRateLimited ||
		r.header.Get("Retry-After") != "2" || r.header.Get("RateLimit-Remaining") != "0" || r.header.Get("RateLimit-Reset") != "4" {
		t.Errorf("third request: %d %s, Retry-After %q Reset %q; want 429 rate_limited, 2, 4", r.status, p.Code, r.header.Get("Retry-After"), r.header.Get("RateLimit-Reset"))
	}
	// Buckets are per key: another key is not limited by this one.
	if r := e.do("GET", "/v1/chains", "", bearer(k.Secret)); r.status != http.StatusOK || r.header.Get("RateLimit-Limit") != "1" {
		t.Errorf("a fresh key with its own limit: %d, limit %q", r.status, r.header.Get("RateLimit-Limit"))
	}
	if r := e.do("GET", "/v1/chains", "", bearer(k.Secret)); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" {
		t.Errorf("its second request at once: %d Retry-After %q, want 429 and 1", r.status, r.header.Get("Retry-After"))
	}
	clk.add(2 * time.Second)
	if r := e.do("GET", "/v1/chains", ""); r.status != http.StatusOK {
		t.Errorf("after waiting for a token: %d", r.status)
	}
	if got := testutil.ToFloat64(e.api.authMetrics.rateLimited); got != 2 {
		t.Errorf("sluice_http_rate_limited_total = %v, want 2", got)
	}
	if got := testutil.ToFloat64(e.api.authMetrics.failures.WithLabelValues("rate_limited")); got != 2 {
		t.Errorf("auth failures {code=rate_limited} = %v, want 2", got)
	}
}
