package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicepay/sluice/internal/payout"
)

// signByHand computes a Sluice-Signature as the documentation says, without
// the package's helpers, so the two cannot drift together.
func signByHand(secret string, t int64, method, target, body string) string {
	k := hmac.New(sha256.New, []byte(secret))
	k.Write([]byte("sluice-request-signing-v1"))
	m := hmac.New(sha256.New, k.Sum(nil))
	fmt.Fprintf(m, "%d.%s.%s.%s", t, method, target, body)
	return fmt.Sprintf("t=%d,v1=%s", t, hex.EncodeToString(m.Sum(nil)))
}

func TestSignHelpersMatchTheDocumentation(t *testing.T) {
	t.Parallel()
	at := time.Unix(1_795_000_000, 0)
	got := Sign(SigningKey("sk_live_abc"), at, "POST", "/v1/payouts?x=1", []byte(`{"a":1}`))
	if want := signByHand("sk_live_abc", at.Unix(), "POST", "/v1/payouts?x=1", `{"a":1}`); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestSignedRequests(t *testing.T) {
	t.Parallel()
	clk := &clock{t: testNow}
	e := keyEnv(t, nil, clk, nil)
	k := e.newKey(`{"name":"signer","scopes":["payouts:write"],"require_signing":true}`)
	if !k.RequireSigning {
		t.Fatalf("created key %+v does not require signing", k)
	}
	now := testNow.Unix()
	sig := func(t int64, method, target, body string) string {
		return "Sluice-Signature: " + signByHand(k.Secret, t, method, target, body)
	}
	plain := e.newKey(`{"name":"plain","scopes":["payouts:read"]}`)
	tests := []struct {
		name, method, path, body string
		sig                      string
		wantStatus               int
		wantCode                 payout.Code
	}{
		{"no signature", "GET", "/v1/payouts", "", "", 401, payout.CodeSignatureMissing},
		{"not name=value", "GET", "/v1/payouts", "", "Sluice-Signature: garbage", 401, payout.CodeSignatureMalformed},
		{"short mac", "GET", "/v1/payouts", "", "Sluice-Signature: t=" + strconv.FormatInt(now, 10) + ",v1=abcd", 401, payout.CodeSignatureMalformed},
		{"no t", "GET", "/v1/payouts", "", "Sluice-Signature: v1=" + strings.Repeat("ab", 32), 401, payout.CodeSignatureMalformed},
		{"6 min old", "GET", "/v1/payouts", "", sig(now-360, "GET", "/v1/payouts", ""), 401, payout.CodeSignatureExpired},
		{"6 min ahead", "GET", "/v1/payouts", "", sig(now+360, "GET", "/v1/payouts", ""), 401, payout.CodeSignatureExpired},
		{"another key's secret", "GET", "/v1/payouts", "", "Sluice-Signature: " + signByHand(plain.Secret, now, "GET", "/v1/payouts", ""), 401, payout.CodeSignatureInvalid},
		{"query not signed", "GET", "/v1/payouts?limit=5", "", sig(now, "GET", "/v1/payouts", ""), 401, payout.CodeSignatureInvalid},
		{"method changed", "GET", "/v1/payouts", "", sig(now, "POST", "/v1/payouts", ""), 401, payout.CodeSignatureInvalid},
		{"body changed", "POST", "/v1/payouts", payoutBody("2"), sig(now, "POST", "/v1/payouts", payoutBody("1")), 401, payout.CodeSignatureInvalid},
		{"valid, 4 min old", "GET", "/v1/payouts?limit=5", "", sig(now-240, "GET", "/v1/payouts?limit=5", ""), 200, ""},
		{"valid, 4 min ahead", "GET", "/v1/payouts?limit=5", "", sig(now+240, "GET", "/v1/payouts?limit=5", ""), 200, ""},
		{"replayed", "GET", "/v1/payouts?limit=5", "", sig(now-240, "GET", "/v1/payouts?limit=5", ""), 401, payout.CodeSignatureReplayed},
		{"valid post", "POST", "/v1/payouts", payoutBody("1"), sig(now, "POST", "/v1/payouts", payoutBody("1")), 201, ""},
		{"two v1, one valid", "GET", "/v1/chains", "", sig(now, "GET", "/v1/chains", "") + ",v1=" + strings.Repeat("00", 32), 200, ""},
	}
	for _, tc := range tests {
		r := e.do(tc.method, tc.path, tc.body, bearer(k.Secret), tc.sig, "Idempotency-Key: "+tc.name)
		var code payout.Code
		if r.status >= 400 {
			code = r.problem(t).Code
		}
		if r.status != tc.wantStatus || code != tc.wantCode {
			t.Errorf("%s: %d %s, want %d %s; body %s", tc.name, r.status, code, tc.wantStatus, tc.wantCode, r.body)
		}
		if r.status == 401 && r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
	}
	// The handler read the whole signed body: the payout is the signed one.
	if got := e.count(); got != 1 {
		t.Errorf("%d payouts, want the one valid post", got)
	}
	// Another instance on the same database refuses a replay too.
	other := keyEnv(t, e.db, clk, nil)
	r := other.do("POST", "/v1/payouts", payoutBody("1"), bearer(k.Secret), sig(now, "POST", "/v1/payouts", payoutBody("1")), "Idempotency-Key: valid post")
	if r.status != 401 || r.problem(t).Code != payout.CodeSignatureReplayed {
		t.Errorf("replay on another instance: %d %s", r.status, r.body)
	}
	// A key that does not require signing ignores the header.
	if r := e.do("GET", "/v1/chains", "", bearer(plain.Secret), "Sluice-Signature: garbage"); r.status != http.StatusOK {
		t.Errorf("a key without require_signing: %d", r.status)
	}
	if got := testutil.ToFloat64(e.api.authMetrics.failures.WithLabelValues("signature_invalid")); got != 4 {
		t.Errorf("auth failures {code=signature_invalid} = %v, want 4", got)
	}
	// Expired signatures are pruned, at most once a minute, by the next
	// signed request after they expire.
	clk.add(11 * time.Minute)
	now = clk.now().Unix()
	if r := e.do("GET", "/v1/chains", "", bearer(k.Secret), sig(now, "GET", "/v1/chains", "")); r.status != http.StatusOK {
		t.Fatalf("signed request after 11 minutes: %d %s", r.status, r.body)
	}
	if n, err := e.db.DeleteSignaturesBefore(t.Context(), clk.now()); err != nil || n != 0 {
		t.Errorf("%d expired signatures were left (err %v), want them pruned", n, err)
	}
}

func TestParseSignature(t *testing.T) {
	t.Parallel()
	mac := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in   string
		ok   bool
		want string
	}{
		{"t=1700000000,v1=" + mac, true, "1700000000 1"},
		{" t=1700000000 , v1=" + mac + ", v2=zz", true, "1700000000 1"},
		{"v1=" + mac + ",t=1700000000,v1=" + strings.Repeat("cd", 32), true, "1700000000 2"},
		{"t=1700000000", false, ""},
		{"v1=" + mac, false, ""},
		{"t=1700000000,t=1700000001,v1=" + mac, false, ""},
		{"t=+1700000000,v1=" + mac, false, ""},
		{"t=01700000000,v1=" + mac, false, ""},
		{"t=-5,v1=" + mac, false, ""},
		{"t=1700000000,v1=" + mac[:62], false, ""},
		{"t=1700000000,v1=" + strings.Repeat("zz", 32), false, ""},
		{"t=1700000000;v1=" + mac, false, ""},
		{"", false, ""},
		{"t=1700000000,v1=" + mac + strings.Repeat(",x=y", 300), false, ""},
	} {
		p, err := parseSignature(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parseSignature(%.60q): err %v, want ok %v", tc.in, err, tc.ok)
			continue
		}
		if got := fmt.Sprintf("%d %d", p.unix, len(p.v1)); tc.ok && got != tc.want {
			t.Errorf("parseSignature(%.60q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// FuzzParseSignature: any header either is refused or parses into a time
// that reads back as sent and 32-byte MACs, and a header rebuilt from what
// was parsed parses the same.
func FuzzParseSignature(f *testing.F) {
	f.Add("t=1700000000,v1=" + strings.Repeat("ab", 32))
	f.Add("t=1,v1=" + strings.Repeat("0", 64) + ",v1=" + strings.Repeat("f", 64) + ",v0=x")
	f.Fuzz(func(t *testing.T, h string) {
		p, err := parseSignature(h)
		if err != nil {
			return
		}
		if p.unix <= 0 || strconv.FormatInt(p.unix, 10) != p.ts || len(p.v1) == 0 || len(p.v1) > 8 {
			t.Fatalf("parseSignature(%q) = %+v", h, p)
		}
		rebuilt := "t=" + p.ts
		for _, m := range p.v1 {
			if len(m) != sha256.Size {
				t.Fatalf("parseSignature(%q): a MAC of %d bytes", h, len(m))
			}
			rebuilt += ",v1=" + hex.EncodeToString(m)
		}
		q, err := parseSignature(rebuilt)
		if err != nil || q.unix != p.unix || len(q.v1) != len(p.v1) {
			t.Fatalf("rebuilt %q of %q: %+v, %v", rebuilt, h, q, err)
		}
	})
}
