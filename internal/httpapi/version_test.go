package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/sluicepay/sluice/internal/payout"
)

func TestVersionEchoedAndChecked(t *testing.T) {
	t.Parallel()
	e := keyEnv(t, nil, &clock{t: testNow}, nil)
	for _, tc := range []struct {
		name       string
		headers    []string
		wantStatus int
	}{
		{"default", nil, 200},
		{"named", []string{"Sluice-Version: " + CurrentVersion()}, 200},
		{"no key", []string{"Authorization:"}, 401},
	} {
		r := e.do("GET", "/v1/chains", "", tc.headers...)
		if r.status != tc.wantStatus || r.header.Get(VersionHeader) != CurrentVersion() {
			t.Errorf("%s: %d, %s %q; want %d and %s", tc.name, r.status, VersionHeader, r.header.Get(VersionHeader), tc.wantStatus, CurrentVersion())
		}
	}
	r := e.do("GET", "/v1/chains", "", "Sluice-Version: 2020-01-01")
	p := r.problem(t)
	if r.status != http.StatusBadRequest || p.Code != payout.CodeInvalidAPIVersion || !strings.Contains(p.Detail, CurrentVersion()) ||
		!strings.Contains(p.Detail, "2020-01-01") || r.header.Get(VersionHeader) != CurrentVersion() {
		t.Errorf("unknown version: %d %s %q, echo %q", r.status, p.Code, p.Detail, r.header.Get(VersionHeader))
	}
}

// The mechanism with two versions, the older registered only here: its
// Downgrade renames every key's name to upper case in GET /v1/api_keys.
func TestVersionPinningAndDowngrade(t *testing.T) {
	t.Parallel()
	const older, newer = "2026-11-01", "2027-02-01"
	e := keyEnv(t, nil, &clock{t: testNow}, nil)
	var calls int
	e.api.versions = []apiVersion{
		{Name: older, Downgrade: func(route string, status int, body []byte) []byte {
			calls++
			if route != "GET /v1/api_keys" || status != http.StatusOK {
				return body
			}
			var l map[string]any
			if err := json.Unmarshal(body, &l); err != nil {
				t.Errorf("downgrade got %s: %v", body, err)
				return body
			}
			for _, k := range l["data"].([]any) {
				k.(map[string]any)["name"] = strings.ToUpper(k.(map[string]any)["name"].(string))
			}
			out, _ := json.Marshal(l)
			return out
		}},
		{Name: newer},
	}
	pinnedOld := e.newKey(`{"name":"legacy","scopes":["admin"],"api_version":"` + older + `"}`)
	pinnedNew := e.newKey(`{"name":"modern","scopes":["admin"]}`)
	if pinnedOld.APIVersion != older || pinnedNew.APIVersion != newer {
		t.Fatalf("pinned %s and %s, want %s and the current %s", pinnedOld.APIVersion, pinnedNew.APIVersion, older, newer)
	}
	for _, tc := range []struct {
		name        string
		headers     []string
		wantVersion string
		wantUpper   bool
	}{
		{"pinned to the older", []string{bearer(pinnedOld.Secret)}, older, true},
		{"pinned older, asks newer", []string{bearer(pinnedOld.Secret), "Sluice-Version: " + newer}, newer, false},
		{"pinned to the current", []string{bearer(pinnedNew.Secret)}, newer, false},
		{"pinned current, asks older", []string{bearer(pinnedNew.Secret), "Sluice-Version: " + older}, older, true},
		{"config key, no pin", nil, newer, false},
	} {
		r := e.do("GET", "/v1/api_keys", "", tc.headers...)
		if r.status != http.StatusOK || r.header.Get(VersionHeader) != tc.wantVersion {
			t.Errorf("%s: %d, version %q; want 200, %s", tc.name, r.status, r.header.Get(VersionHeader), tc.wantVersion)
		}
		if got := bytes.Contains(r.body, []byte(`"LEGACY"`)); got != tc.wantUpper {
			t.Errorf("%s: downgraded %v, want %v: %s", tc.name, got, tc.wantUpper, r.body)
		}
	}
	// Problems go through the downgrade too, untouched by this one.
	r := e.do("GET", "/v1/api_keys?limit=0", "", bearer(pinnedOld.Secret))
	if r.status != http.StatusBadRequest || r.problem(t).Code != payout.CodeInvalidLimit {
		t.Errorf("a problem at the older version: %d %s", r.status, r.body)
	}
	if calls != 3 {
		t.Errorf("Downgrade ran %d times, want 3 (two lists and a problem at the older version)", calls)
	}
}

// Every /v1 operation that needs a key documents the answers auth can
// give (400 invalid_api_version, 401, 403, 429), and its successful
// answers carry Sluice-Version.
func TestSpecDocumentsAuthAnswers(t *testing.T) {
	t.Parallel()
	doc, _, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		if !strings.HasPrefix(path, "/v1/") || path == "/v1/openapi.yaml" {
			continue
		}
		for method, op := range item.Operations() {
			for _, status := range []int{400, 401, 403, 429} {
				if op.Responses.Status(status) == nil {
					t.Errorf("%s %s does not document %d", method, path, status)
				}
			}
			for code, ref := range op.Responses.Map() {
				if strings.HasPrefix(code, "2") && ref.Value.Headers[VersionHeader] == nil {
					t.Errorf("%s %s answer %s lacks the %s header", method, path, code, VersionHeader)
				}
			}
		}
	}
	if got := doc.Components.Responses["RateLimited"].Value.Headers; got["Retry-After"] == nil || got["RateLimit-Reset"] == nil {
		t.Errorf("RateLimited headers %v, want Retry-After and RateLimit-*", got)
	}
}
