package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// BenchmarkAuth measures GET /v1/chains (a precomputed answer) through the
// real router on SQLite, so the figure is mostly authentication: a config
// key, a database key (cached after the first request) and a database key
// whose requests are signed (an HMAC, and one INSERT of the signature per
// request to refuse replays; the client's signing is included). Rate
// limits are lifted.
func BenchmarkAuth(b *testing.B) {
	for _, tc := range []struct {
		name    string
		db      bool
		signing bool
	}{{"ConfigKey", false, false}, {"DatabaseKeyCached", true, false}, {"SignedRequest", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			api, err := New(Config{Store: openStore(b), Catalog: testCatalog(), Logger: slog.New(slog.DiscardHandler),
				APIKeys: []APIKey{{ID: "key_a", Hash: HashAPIKey(testKey)}}, RateLimit: payout.RateLimit{PerSecond: 1e9, Burst: 1 << 30}})
			if err != nil {
				b.Fatal(err)
			}
			h := api.Handler()
			secret := testKey
			if tc.db {
				secret = benchKey(b, h, tc.signing)
			}
			sk := SigningKey(secret)
			get := func(target string) {
				req := httptest.NewRequest("GET", target, nil)
				req.Header.Set("Authorization", "Bearer "+secret)
				if tc.signing {
					req.Header.Set(SignatureHeader, Sign(sk, time.Now(), "GET", target, nil))
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", target, rec.Code, rec.Body.Bytes())
				}
			}
			get("/v1/chains") // warms the key cache
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				n++
				get("/v1/chains?n=" + strconv.Itoa(n)) // a new target: no signature repeats
			}
		})
	}
}

// benchKey makes a payouts:read key through the API and returns its secret.
func benchKey(b *testing.B, h http.Handler, signing bool) string {
	body := `{"name":"bench","scopes":["payouts:read"],"require_signing":` + strconv.FormatBool(signing) + `}`
	req := httptest.NewRequest("POST", "/v1/api_keys", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var k struct{ Secret string }
	if err := json.Unmarshal(rec.Body.Bytes(), &k); err != nil || k.Secret == "" {
		b.Fatalf("create key: %d %s", rec.Code, rec.Body.Bytes())
	}
	return k.Secret
}
