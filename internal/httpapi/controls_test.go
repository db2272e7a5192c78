package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
)

func TestPauseRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	tests := []struct {
		name, body string
		status     int
		code       payout.Code // of the problem, or of its first field error
	}{
		{"asset without asset", `{"scope":"asset","chain":"sandbox","reason":"x"}`, 422, payout.CodeInvalidPause},
		{"unknown scope", `{"scope":"planet","reason":"x"}`, 422, payout.CodeInvalidPause},
		{"no reason", `{"scope":"global"}`, 422, payout.CodeInvalidPause},
		{"unknown chain", `{"scope":"chain","chain":"moon","reason":"x"}`, 422, payout.CodeUnknownChain},
		{"unknown asset", `{"scope":"asset","chain":"sandbox","asset":"DOGE","reason":"x"}`, 422, payout.CodeUnknownAsset},
		{"bad wallet", `{"scope":"wallet","wallet":"0x12","reason":"x"}`, 422, payout.CodeInvalidAddress},
		{"unknown field", `{"scope":"global","reason":"x","until":"never"}`, 400, payout.CodeUnknownField},
	}
	for _, tc := range tests {
		r := e.do("POST", "/v1/pauses", tc.body)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d; body %s", tc.name, r.status, tc.status, r.body)
			continue
		}
		p := r.problem(t)
		if got := p.Code; got != tc.code && (len(p.Errors) == 0 || p.Errors[0].Code != tc.code) {
			t.Errorf("%s: problem %s %+v, want %s", tc.name, p.Code, p.Errors, tc.code)
		}
	}
	if r := e.do("GET", "/v1/pauses", ""); r.status != 200 || !strings.Contains(string(r.body), `"data":[]`) {
		t.Errorf("GET /v1/pauses after refusals: %d %s, want an empty list", r.status, r.body)
	}
}

func TestPauseLifecycleIsAudited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	var global, wallet payout.Pause
	r := e.do("POST", "/v1/pauses", `{"scope":"global","reason":"incident 12"}`)
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &global) != nil || global.CreatedBy != "key_a" || !strings.HasPrefix(global.ID, "pse_") {
		t.Fatalf("create global pause: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/v1/pauses", `{"scope":"wallet","chain":"sandbox","wallet":"`+testWallet.Hex()+`","reason":"key rotation"}`)
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &wallet) != nil {
		t.Fatalf("create wallet pause: %d %s", r.status, r.body)
	}
	var list struct{ Data []map[string]any }
	if r = e.do("GET", "/v1/pauses", ""); json.Unmarshal(r.body, &list) != nil || len(list.Data) != 2 || list.Data[1]["wallet"] != testWallet.Hex() {
		t.Fatalf("GET /v1/pauses: %s, want both pauses", r.body)
	}
	if r = e.do("POST", "/v1/pauses/"+global.ID+"/resume", ""); r.status != 200 || !strings.Contains(string(r.body), `"resumed_by":"key_a"`) {
		t.Fatalf("resume: %d %s", r.status, r.body)
	}
	if r = e.do("POST", "/v1/pauses/"+global.ID+"/resume", ""); r.status != http.StatusConflict || r.problem(t).Code != payout.CodePauseResumed {
		t.Fatalf("second resume: %d %s, want 409 %s", r.status, r.body, payout.CodePauseResumed)
	}
	if r = e.do("DELETE", "/v1/pauses/"+wallet.ID, "", bearer(otherKey)); r.status != 200 {
		t.Fatalf("DELETE pause: %d %s", r.status, r.body)
	}
	if r = e.do("DELETE", "/v1/pauses/pse_nope", ""); r.status != http.StatusNotFound {
		t.Fatalf("DELETE unknown pause: %d, want 404", r.status)
	}

	// Other administrative actions through the API are audited right after
	// they succeed; a refused one is not.
	k := e.newKeyOn(`{"name":"ops","scopes":["payouts:read"]}`)
	if r = e.do("POST", "/v1/api_keys/"+k.ID+"/revoke", ""); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	p := e.mustCreate("audit-1", validPayload)
	if r = e.do("POST", "/v1/payouts/"+p.ID+"/cancel", ""); r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if r = e.do("POST", "/v1/payouts/"+p.ID+"/speed-up", `{"fee_cap":"1000"}`); r.status != http.StatusConflict {
		t.Fatalf("speed-up of a cancelled payout: %d %s, want 409", r.status, r.body)
	}

	entries := e.readAudit(2)
	var got []string
	for _, en := range entries {
		got = append(got, fmt.Sprintf("%d %s %s %s", en.Seq, en.Actor, en.Action, en.Object))
	}
	want := []string{
		"1 key_a pause.create " + global.ID, "2 key_a pause.create " + wallet.ID, "3 key_a pause.resume " + global.ID,
		"4 key_b pause.resume " + wallet.ID, "5 key_a api_key.create " + k.ID, "6 key_a api_key.revoke " + k.ID,
		"7 key_a payout.cancel " + p.ID,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("audit log (-want +got):\n%s", diff)
	}
	v := payout.NewAuditVerifier()
	for _, en := range entries {
		if err := v.Check(en); err != nil {
			t.Fatalf("the chain read through the API does not verify: %v", err)
		}
	}
	if strings.Contains(string(entries[4].Details), k.Secret) || !strings.Contains(string(entries[4].Details), `"name":"ops"`) {
		t.Errorf("api_key.create details %s: want the key's name and never its secret", entries[4].Details)
	}
	if r = e.do("GET", "/v1/audit?after=x", ""); r.problem(t).Code != payout.CodeInvalidCursor {
		t.Errorf("GET /v1/audit?after=x: %s, want %s", r.body, payout.CodeInvalidCursor)
	}
}

// newKeyOn creates an API key with the test key.
func (e *env) newKeyOn(body string) createdKey {
	e.t.Helper()
	r := e.do("POST", "/v1/api_keys", body)
	var k createdKey
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &k) != nil {
		e.t.Fatalf("create key: %d %s", r.status, r.body)
	}
	return k
}

// readAudit reads the whole audit log through GET /v1/audit, limit entries
// a page.
func (e *env) readAudit(limit int) []*payout.AuditEntry {
	e.t.Helper()
	var all []*payout.AuditEntry
	var after int64
	for range 100 {
		r := e.do("GET", fmt.Sprintf("/v1/audit?after=%d&limit=%d", after, limit), "")
		var page struct {
			Data    []*payout.AuditEntry
			HasMore bool `json:"has_more"`
		}
		if r.status != 200 || json.Unmarshal(r.body, &page) != nil {
			e.t.Fatalf("GET /v1/audit: %d %s", r.status, r.body)
		}
		all = append(all, page.Data...)
		if !page.HasMore {
			return all
		}
		after = page.Data[len(page.Data)-1].Seq
	}
	e.t.Fatal("GET /v1/audit never ends")
	return nil
}

func TestWebhookChangesAreAudited(t *testing.T) {
	t.Parallel()
	e := newWebhookEnv(t)
	ep := e.mustCreateEndpoint(`{"url":"https://93.184.216.34/hooks","enabled_events":["payout.completed"]}`)
	if r := e.do("POST", "/v1/webhook_endpoints/"+ep.ID, `{"enabled":false}`); r.status != 200 {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	rot := decodeAs[endpointOut](t, e.do("POST", "/v1/webhook_endpoints/"+ep.ID+"/rotate_secret", ""))
	if r := e.do("DELETE", "/v1/webhook_endpoints/"+ep.ID, ""); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", "/v1/webhook_endpoints/"+ep.ID, ""); r.status != 404 {
		t.Fatalf("second delete: %d, want 404 (and no audit entry)", r.status)
	}
	var got []string
	for _, en := range e.readAudit(100) {
		got = append(got, en.Actor+" "+en.Action+" "+en.Object)
		for _, secret := range []string{ep.Secret, rot.Secret} {
			if strings.Contains(string(en.Details), secret) {
				t.Errorf("entry %d holds a webhook secret: %s", en.Seq, en.Details)
			}
		}
	}
	want := []string{"key_a webhook_endpoint.create " + ep.ID, "key_a webhook_endpoint.update " + ep.ID,
		"key_a webhook_endpoint.rotate_secret " + ep.ID, "key_a webhook_endpoint.delete " + ep.ID}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit log (-want +got):\n%s", diff)
	}
}

// TestPauseCancelsInFlight: a pause with cancel_in_flight also asks a
// cancel of every payout in its scope whose transaction is broadcast, each
// audited; a queued payout only waits, and a pause of another scope
// cancels nothing.
func TestPauseCancelsInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	ps := e.createN(3, "")
	e.submit(ps[0])
	e.submit(ps[1])
	var got struct {
		ID               string `json:"id"`
		CancelsRequested *int   `json:"cancels_requested"`
	}
	r := e.do("POST", "/v1/pauses", `{"scope":"asset","chain":"sandbox","asset":"ETH","reason":"x","cancel_in_flight":true}`)
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &got) != nil || got.CancelsRequested == nil || *got.CancelsRequested != 0 {
		t.Errorf("a pause of another asset: %d %s, want 0 cancels asked", r.status, r.body)
	}
	r = e.do("POST", "/v1/pauses", `{"scope":"wallet","wallet":"`+testWallet.Hex()+`","reason":"key exposed","cancel_in_flight":true}`)
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &got) != nil || got.CancelsRequested == nil || *got.CancelsRequested != 2 {
		t.Fatalf("pause with cancel_in_flight: %d %s, want 2 cancels asked", r.status, r.body)
	}
	for i, id := range ps {
		var p struct {
			Status          string `json:"status"`
			CancelRequested bool   `json:"cancel_requested"`
		}
		json.Unmarshal(e.do("GET", "/v1/payouts/"+id, "").body, &p)
		if want := i < 2; p.CancelRequested != want {
			t.Errorf("payout %d (%s): cancel_requested %v, want %v", i, p.Status, p.CancelRequested, want)
		}
	}
	entries, _, err := e.db.ListAudit(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	cancels := 0
	for _, a := range entries {
		if a.Action == payout.AuditPayoutCancel && strings.Contains(string(a.Details), got.ID) {
			cancels++
		}
	}
	if cancels != 2 {
		t.Errorf("%d audited cancels naming the pause, want 2", cancels)
	}
	// Asked again, nothing more: both already carry a cancel request.
	r = e.do("POST", "/v1/pauses", `{"scope":"global","reason":"again","cancel_in_flight":true}`)
	if json.Unmarshal(r.body, &got) != nil || got.CancelsRequested == nil || *got.CancelsRequested != 0 {
		t.Errorf("second pause with cancel_in_flight: %s, want 0 cancels asked", r.body)
	}
}
