package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sluicepay/sluice/internal/payout"
)

// TestOfflinePlanAndRotationRequests: every bad request about offline plans
// and wallet rotations answers a problem with a stable code naming what is
// wrong, and stores nothing.
func TestOfflinePlanAndRotationRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	other := "0x00000000000000000000000000000000000000cc"
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     payout.Code // of the problem, or of its first field error
	}{
		{"plan: unknown chain", "POST", "/v1/offline_plans", `{"chain":"moon","wallet":"` + testWallet.Hex() + `"}`, 422, payout.CodeUnknownChain},
		{"plan: bad wallet", "POST", "/v1/offline_plans", `{"chain":"sandbox","wallet":"0x12"}`, 422, payout.CodeInvalidAddress},
		{"plan: not a hot wallet", "POST", "/v1/offline_plans", `{"chain":"sandbox","wallet":"` + other + `"}`, 422, codeUnknownWallet},
		{"plan: too many payouts", "POST", "/v1/offline_plans", `{"chain":"sandbox","wallet":"` + testWallet.Hex() + `","max_payouts":5000}`, 400, payout.CodeInvalidLimit},
		{"plan: negative max", "POST", "/v1/offline_plans", `{"chain":"sandbox","wallet":"` + testWallet.Hex() + `","max_payouts":-1}`, 400, payout.CodeInvalidLimit},
		{"plan: unknown field", "POST", "/v1/offline_plans", `{"chain":"sandbox","wallet":"` + testWallet.Hex() + `","sign":true}`, 400, payout.CodeUnknownField},
		{"plan: not JSON", "POST", "/v1/offline_plans", `chain=sandbox`, 400, payout.CodeMalformedJSON},
		{"plan: unknown id", "GET", "/v1/offline_plans/ofp_nope", "", 404, payout.CodeNotFound},
		{"signed: unknown plan", "POST", "/v1/offline_plans/ofp_nope/signed", `{"signed_transactions":["0x02"]}`, 404, payout.CodeNotFound},
		{"signed: not hex", "POST", "/v1/offline_plans/ofp_nope/signed", `{"signed_transactions":["zz"]}`, 400, payout.CodeMalformedJSON},
		{"void: unknown plan", "POST", "/v1/offline_plans/ofp_nope/void", "", 404, payout.CodeNotFound},
		{"rotation: unknown chain", "POST", "/v1/wallet_rotations", `{"chain":"moon","from":"` + testWallet.Hex() + `","to":"` + other + `"}`, 422, payout.CodeUnknownChain},
		{"rotation: bad from", "POST", "/v1/wallet_rotations", `{"chain":"sandbox","from":"nope","to":"` + testWallet.Hex() + `"}`, 422, payout.CodeInvalidAddress},
		{"rotation: to not a hot wallet", "POST", "/v1/wallet_rotations", `{"chain":"sandbox","from":"` + testWallet.Hex() + `","to":"` + other + `"}`, 422, codeUnknownWallet},
		{"rotation: to itself", "POST", "/v1/wallet_rotations", `{"chain":"sandbox","from":"` + testWallet.Hex() + `","to":"` + testWallet.Hex() + `"}`, 422, payout.CodeInvalidAddress},
		{"rotation: unknown field", "POST", "/v1/wallet_rotations", `{"chain":"sandbox","from":"` + testWallet.Hex() + `","to":"` + other + `","force":true}`, 400, payout.CodeUnknownField},
		{"rotation: unknown id", "GET", "/v1/wallet_rotations/rot_nope", "", 404, payout.CodeNotFound},
	}
	for _, tc := range tests {
		r := e.do(tc.method, tc.path, tc.body)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d; body %s", tc.name, r.status, tc.status, r.body)
			continue
		}
		p := r.problem(t)
		if p.Code != tc.code && (len(p.Errors) == 0 || p.Errors[0].Code != tc.code) {
			t.Errorf("%s: problem %s %+v, want %s", tc.name, p.Code, p.Errors, tc.code)
		}
		if p.Detail == "" {
			t.Errorf("%s: a problem without detail", tc.name)
		}
	}
	// Nothing was stored.
	if pl, err := e.db.ActiveOfflinePlans(t.Context()); err != nil || len(pl) != 0 {
		t.Errorf("offline plans after refusals: %v, %v", pl, err)
	}
	if r := e.do("GET", "/v1/wallet_rotations", ""); r.status != http.StatusOK || !strings.Contains(string(r.body), `"data":[]`) {
		t.Errorf("rotations after refusals: %d %s", r.status, r.body)
	}
	// A second plan for the wallet is refused while one is active.
	if r := e.do("POST", "/v1/offline_plans", `{"chain":"sandbox","wallet":"`+testWallet.Hex()+`"}`); r.status != http.StatusAccepted {
		t.Fatalf("a plan: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/offline_plans", `{"chain":"sandbox","wallet":"`+testWallet.Hex()+`"}`); r.status != http.StatusConflict || r.problem(t).Code != codeOfflinePlanActive {
		t.Errorf("a second plan: %d %s, want 409 %s", r.status, r.body, codeOfflinePlanActive)
	}
}
