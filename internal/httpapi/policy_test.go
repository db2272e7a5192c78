package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/sluicepay/sluice/internal/payout"
)

const (
	sanctionedTo = "0x1111111111111111111111111111111111111111"
	partnerTo    = "0x6666666666666666666666666666666666666666"
)

// testPolicy allows partners anything up to 10 SUSD, denies any single
// payout over 5 SUSD, allows two payouts an hour to one destination, and
// holds a third for approval.
const testPolicyDoc = `version: 1
rules:
  - name: partners
    when: allow_listed && amount <= units("10000000")
    action: allow
  - name: too-big
    when: amount > 5000000
    action: deny
  - name: busy-destination
    when: velocity.count("destination", "1h") >= 2
    action: require_approval
    approvals: {quorum: 2, group: treasury}
  - name: small
    when: amount_decimal <= 5.0 && api_key_name == "primary"
    action: allow
default: deny
`

func putPolicy(t *testing.T, e *env, doc string) response {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"document": doc})
	return e.do("PUT", "/v1/policy", string(b))
}

func TestPolicyDecidesPayouts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	// No policy: everything is allowed, and payouts carry no decision.
	if r := e.do("GET", "/v1/policy", ""); r.status != http.StatusNotFound {
		t.Fatalf("GET /v1/policy with none: %d %s, want 404", r.status, r.body)
	}
	before := e.mustCreate("pol-0", payoutBody("9000000"))
	if r := e.do("GET", "/v1/payouts/"+before.ID, ""); strings.Contains(string(r.body), `"decision"`) {
		t.Fatalf("a payout created with no policy has a decision: %s", r.body)
	}

	for _, rq := range []struct{ path, body string }{
		{"/v1/lists", `{"name":"ofac","kind":"deny","sanctions":true}`},
		{"/v1/lists", `{"name":"partners","kind":"allow"}`},
	} {
		if r := e.do("POST", rq.path, rq.body); r.status != http.StatusCreated {
			t.Fatalf("POST %s %s: %d %s", rq.path, rq.body, r.status, r.body)
		}
	}
	if r := e.do("POST", "/v1/lists", `{"name":"ofac","kind":"deny"}`); r.status != http.StatusConflict || r.problem(t).Code != codeListExists {
		t.Fatalf("second list named ofac: %d %s, want 409", r.status, r.body)
	}
	r := e.do("POST", "/v1/lists/ofac/entries", `{"addresses":["`+sanctionedTo+`"],"replace":true}`)
	if r.status != 200 || !strings.Contains(string(r.body), `"added":["0x1111111111111111111111111111111111111111"]`) {
		t.Fatalf("import ofac: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/lists/partners/entries", `{"addresses":["`+partnerTo+`"]}`); r.status != 200 {
		t.Fatalf("add partner: %d %s", r.status, r.body)
	}

	// A bad document is refused with its problems by rule.
	r = putPolicy(t, e, strings.Replace(testPolicyDoc, `amount > 5000000`, `amount > "5"`, 1))
	if r.status != 422 || r.problem(t).Code != payout.CodeInvalidPolicy || !strings.Contains(string(r.body), `rule 2 \"too-big\"`) {
		t.Fatalf("PUT bad policy: %d %s, want 422 invalid_policy naming too-big", r.status, r.body)
	}
	if r = putPolicy(t, e, testPolicyDoc); r.status != 200 || !strings.Contains(string(r.body), `"version":1`) {
		t.Fatalf("PUT policy: %d %s", r.status, r.body)
	}
	if r = e.do("GET", "/v1/policy", ""); r.status != 200 || !strings.Contains(string(r.body), `"velocity_windows":["destination/1h"]`) {
		t.Fatalf("GET policy: %d %s", r.status, r.body)
	}

	body := func(to, amount string) string {
		return `{"chain":"sandbox","asset":"SUSD","to":"` + to + `","amount":"` + amount + `"}`
	}
	n := e.count()
	refusals := []struct {
		name, key, body string
		code            payout.Code
	}{
		{"sanctioned", "pol-1", body(sanctionedTo, "1"), payout.CodeSanctionedDestination},
		{"too big", "pol-2", body(validTo, "6000000"), payout.CodePolicyDenied},
	}
	for _, tc := range refusals {
		r := e.create(tc.key, tc.body)
		if r.status != 422 || r.problem(t).Code != tc.code {
			t.Errorf("%s: %d %s, want 422 %s", tc.name, r.status, r.body, tc.code)
		}
	}
	if got := e.count(); got != n {
		t.Fatalf("refused payouts were stored: %d payouts, want %d", got, n)
	}
	// The partner is allowed above the single-payout limit.
	partner := e.mustCreate("pol-3", body(partnerTo, "8000000"))
	first := e.mustCreate("pol-4", body(validTo, "2000000"))
	var got struct {
		Decision payout.PolicyDecision `json:"decision"`
	}
	r = e.do("GET", "/v1/payouts/"+first.ID, "")
	if err := json.Unmarshal(r.body, &got); err != nil || got.Decision.Rule != "small" || got.Decision.Action != "allow" ||
		got.Decision.PolicyVersion != 1 || got.Decision.APIKeyID != "key_a" {
		t.Fatalf("GET payout: %s, want its decision by rule small", r.body)
	}
	var facts map[string]any
	_ = json.Unmarshal(got.Decision.Facts, &facts)
	if facts["amount"] != "2000000" || facts["destination_age_seconds"] != -1.0 {
		t.Errorf("facts = %v", facts)
	}
	if r = e.do("GET", "/v1/payouts/"+partner.ID, ""); !strings.Contains(string(r.body), `"rule":"partners"`) {
		t.Errorf("partner payout: %s", r.body)
	}
	// Velocity: the payout before the policy and first make two to validTo
	// this hour (the one refused is not counted), so the next waits for an
	// approval: stored pending_approval (approvals_test.go goes on).
	if r = e.create("pol-5", body(validTo, "1000000")); r.status != 201 || r.payout(t).Status != payout.StatusPendingApproval {
		t.Fatalf("third payout to one destination: %d %s, want 201 pending_approval", r.status, r.body)
	}
	if r = e.do("GET", "/v1/payouts/"+r.payout(t).ID, ""); !strings.Contains(string(r.body), `"rule":"busy-destination"`) ||
		!strings.Contains(string(r.body), `"quorum":2`) {
		t.Fatalf("pending payout: %s, want its decision by busy-destination and its quorum", r.body)
	}
	// A replay is answered as stored, not decided again.
	if r = e.create("pol-4", body(validTo, "2000000")); r.status != 201 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s, want the stored 201", r.status, r.body)
	}
	// Denials and the policy are in the audit log.
	r = e.do("GET", "/v1/audit?limit=100", "")
	for _, want := range []string{`"action":"list.create"`, `"action":"list.replace"`, `"action":"policy.apply"`, `"action":"policy.deny"`, `sanctioned_destination`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("audit log lacks %s: %s", want, r.body)
		}
	}
	if r = putPolicy(t, e, "version: 1\nrules: []\ndefault: deny\n"); r.status != 200 {
		t.Fatalf("PUT second policy: %d %s", r.status, r.body)
	}
	var versions struct {
		Data []struct {
			Version int64
			Active  bool
		}
	}
	if r = e.do("GET", "/v1/policy/versions", ""); json.Unmarshal(r.body, &versions) != nil || len(versions.Data) != 2 ||
		versions.Data[0].Version != 2 || !versions.Data[0].Active || versions.Data[1].Active {
		t.Fatalf("GET /v1/policy/versions: %s, want 2 (active) then 1", r.body)
	}
	if r = e.create("pol-6", body(partnerTo, "1")); r.status != 422 || r.problem(t).Code != payout.CodePolicyDenied {
		t.Fatalf("payout under a policy without rules: %d %s, want the default deny", r.status, r.body)
	}
	var lists struct{ Data []payout.List }
	if r = e.do("GET", "/v1/lists", ""); json.Unmarshal(r.body, &lists) != nil || len(lists.Data) != 2 || lists.Data[0].Entries != 1 {
		t.Errorf("GET /v1/lists: %s", r.body)
	}
	if r = e.do("POST", "/v1/lists/nope/entries", `{"addresses":[]}`); r.status != 404 {
		t.Errorf("entries of an unknown list: %d", r.status)
	}
	if r = e.do("POST", "/v1/lists/ofac/entries", `{"addresses":["0x12"]}`); r.status != 422 || r.problem(t).Code != payout.CodeInvalidList {
		t.Errorf("bad address: %d %s", r.status, r.body)
	}
}
