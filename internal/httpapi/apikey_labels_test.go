package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/sluicepay/sluice/internal/payout"
)

// labelPolicy allows payouts of keys labelled team=payroll only.
const labelPolicy = `version: 1
default: deny
rules:
  - name: payroll-team
    when: '"team" in api_key_labels && api_key_labels["team"] == "payroll"'
    action: allow
`

func TestAPIKeyLabels(t *testing.T) {
	t.Parallel()
	clk := &clock{t: testNow}
	e := keyEnv(t, nil, clk, nil)
	payroll := e.newKey(`{"name":"payroll","scopes":["payouts:write"],"labels":{"team":"payroll","region":"eu"}}`)
	growth := e.newKey(`{"name":"growth","scopes":["payouts:write"],"labels":{"team":"growth"}}`)
	plain := e.newKey(`{"name":"plain","scopes":["payouts:write"]}`)

	// Shown on create, in lists and on revoke; {} when none.
	var created struct {
		Labels map[string]string `json:"labels"`
	}
	r := e.do("GET", "/v1/api_keys", "")
	var list struct {
		Data []struct {
			ID     string            `json:"id"`
			Labels map[string]string `json:"labels"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &list); r.status != 200 || err != nil || len(list.Data) != 3 {
		t.Fatalf("list keys: %d %s", r.status, r.body)
	}
	want := map[string]string{payroll.ID: `{"region":"eu","team":"payroll"}`, growth.ID: `{"team":"growth"}`, plain.ID: `{}`}
	for _, k := range list.Data {
		if b, _ := json.Marshal(k.Labels); string(b) != want[k.ID] {
			t.Errorf("listed labels of %s = %s, want %s", k.ID, b, want[k.ID])
		}
	}

	// Bad labels are refused, naming each, and make no key.
	for _, tc := range []struct{ labels, pointer string }{
		{`{"Team":"x"}`, "/labels/Team"},
		{`{"team":"a\nb"}`, "/labels/team"},
		{`{"team":1}`, ""},
	} {
		r := e.do("POST", "/v1/api_keys", `{"name":"bad","scopes":["payouts:read"],"labels":`+tc.labels+`}`)
		if r.status/100 != 4 {
			t.Fatalf("labels %s: %d %s, want a 4xx", tc.labels, r.status, r.body)
		}
		p := r.problem(t)
		if tc.pointer != "" && (r.status != 422 || len(p.Errors) != 1 || p.Errors[0].Pointer != tc.pointer) {
			t.Errorf("labels %s: %d %s, want 422 pointing at %s", tc.labels, r.status, r.body, tc.pointer)
		}
	}
	if r := e.do("GET", "/v1/api_keys", ""); strings.Count(string(r.body), `"object":"api_key"`) != 3 {
		t.Errorf("a refused key was stored: %s", r.body)
	}

	// A rule on the labels decides, and the decision records them.
	if r := putPolicy(t, e, labelPolicy); r.status != http.StatusOK {
		t.Fatalf("PUT policy: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/v1/payouts", payoutBody("5"), bearer(payroll.Secret), "Idempotency-Key: lbl-1")
	if r.status != http.StatusCreated {
		t.Fatalf("payroll key's payout: %d %s, want 201", r.status, r.body)
	}
	id := r.payout(t).ID
	r = e.do("GET", "/v1/payouts/"+id, "")
	if !strings.Contains(string(r.body), `"api_key_labels":{"region":"eu","team":"payroll"}`) || !strings.Contains(string(r.body), `"rule":"payroll-team"`) {
		t.Errorf("decision of the payroll key's payout: %s", r.body)
	}
	for _, k := range []createdKey{growth, plain} {
		r := e.do("POST", "/v1/payouts", payoutBody("5"), bearer(k.Secret), "Idempotency-Key: lbl-"+k.Name)
		if r.status != 422 || r.problem(t).Code != payout.CodePolicyDenied {
			t.Errorf("%s key's payout: %d %s, want 422 policy_denied", k.Name, r.status, r.body)
		}
	}
	// Revoking shows the labels too.
	r = e.do("POST", "/v1/api_keys/"+growth.ID+"/revoke", "")
	if err := json.Unmarshal(r.body, &created); r.status != 200 || err != nil || created.Labels["team"] != "growth" {
		t.Errorf("revoke: %d %s", r.status, r.body)
	}
}

// TestConfigKeyLabels: a key from the config file carries the labels the
// file gives it into the policy's facts, as a database key does.
func TestConfigKeyLabels(t *testing.T) {
	t.Parallel()
	const payrollSecret, plainSecret = "sk_test_config_payroll", "sk_test_config_plain"
	e := keyEnv(t, nil, &clock{t: testNow}, func(c *Config) {
		c.APIKeys = append(c.APIKeys,
			APIKey{ID: "key_payroll", Name: "payroll", Hash: HashAPIKey(payrollSecret), Scopes: []Scope{payout.ScopePayoutsWrite},
				Labels: map[string]string{"team": "payroll"}},
			APIKey{ID: "key_plain", Name: "plain", Hash: HashAPIKey(plainSecret), Scopes: []Scope{payout.ScopePayoutsWrite}})
	})
	if r := putPolicy(t, e, labelPolicy); r.status != http.StatusOK {
		t.Fatalf("PUT policy: %d %s", r.status, r.body)
	}
	r := e.do("POST", "/v1/payouts", payoutBody("5"), bearer(payrollSecret), "Idempotency-Key: cfg-1")
	if r.status != http.StatusCreated {
		t.Fatalf("the labelled config key's payout: %d %s, want 201", r.status, r.body)
	}
	r = e.do("GET", "/v1/payouts/"+r.payout(t).ID, "")
	if !strings.Contains(string(r.body), `"api_key_labels":{"team":"payroll"}`) || !strings.Contains(string(r.body), `"rule":"payroll-team"`) {
		t.Errorf("decision of the labelled config key's payout: %s", r.body)
	}
	r = e.do("POST", "/v1/payouts", payoutBody("5"), bearer(plainSecret), "Idempotency-Key: cfg-2")
	if r.status != 422 || r.problem(t).Code != payout.CodePolicyDenied {
		t.Errorf("the unlabelled config key's payout: %d %s, want 422 policy_denied", r.status, r.body)
	}
}
