package policy_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/big"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/policy"
	"github.com/sluicepay/sluice/internal/store"
)

// payrollPolicy allows the payroll team's keys and denies the rest.
const payrollPolicy = `version: 1
default: deny
rules:
  - name: payroll
    when: '"team" in api_key_labels && api_key_labels["team"] == "payroll"'
    action: allow
`

func TestKeyLabelsAreFacts(t *testing.T) {
	p, err := policy.Parse([]byte(payrollPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if !p.ReadsKey() {
		t.Error("ReadsKey = false for a rule on api_key_labels")
	}
	e := policy.NewEngine(&memSources{}, nil)
	for _, tc := range []struct {
		labels map[string]string
		want   policy.Action
	}{
		{map[string]string{"team": "payroll", "region": "eu"}, policy.Allow},
		{map[string]string{"team": "growth"}, policy.Deny},
		{nil, policy.Deny},
	} {
		in := policy.Input{Chain: "sandbox", Asset: "ETH", Sender: wallet, To: stranger, Amount: big.NewInt(1),
			APIKeyID: "key_1", APIKeyLabels: tc.labels, Now: now}
		d, err := e.Evaluate(context.Background(), p, 1, in)
		if err != nil || d.Action != tc.want {
			t.Errorf("labels %v: %s (%s), %v; want %s", tc.labels, d.Action, d.Reason, err, tc.want)
		}
		b, _ := json.Marshal(d.Facts)
		if !strings.Contains(string(b), `"api_key_labels":{`) {
			t.Errorf("recorded facts %s lack api_key_labels", b)
		}
	}
	for doc, want := range map[string]bool{
		"version: 1\ndefault: deny\nrules:\n- {name: r, when: 'amount > units(1)', action: allow}\n":                       false,
		"version: 1\ndefault: deny\nrules:\n- {name: r, when: 'api_key_name == \"x\"', action: allow}\n":                   true,
		"version: 1\ndefault: deny\nrules:\n- {name: r, when: 'velocity.count(\"api_key\", \"1h\") < 5', action: allow}\n": true,
	} {
		p, err := policy.Parse([]byte(doc))
		if err != nil || p.ReadsKey() != want {
			t.Errorf("ReadsKey of %q = %v (%v), want %v", doc, p != nil && p.ReadsKey(), err, want)
		}
	}
	if _, err := policy.Parse([]byte("version: 1\ndefault: deny\nrules:\n- {name: r, when: 'api_key_labels == 1', action: allow}\n")); err == nil {
		t.Error("api_key_labels compared with an int type-checked")
	}
}

// The recheck before signing sees the key that created the payout (from
// its recorded decision): a rule on its labels allows it again, instead of
// denying it for want of labels.
func TestRecheckSeesTheCreatingKey(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "db"), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.SavePolicy(ctx, &payout.PolicyVersion{Document: payrollPolicy, CreatedBy: "test"}, true); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse([]byte(payrollPolicy))
	if err != nil {
		t.Fatal(err)
	}
	e := policy.NewEngine(db, nil)
	r := policy.NewRechecker(db, nil)
	for id, labels := range map[string]map[string]string{"po_payroll": {"team": "payroll"}, "po_growth": {"team": "growth"}} {
		in := policy.Input{Chain: "sandbox", Asset: "ETH", Sender: wallet, To: stranger, Amount: big.NewInt(1),
			APIKeyID: "key_" + id, APIKeyName: id, APIKeyLabels: labels, Now: now}
		d, err := e.Evaluate(ctx, pol, 1, in)
		if err != nil {
			t.Fatal(err)
		}
		facts, _ := json.Marshal(d.Facts)
		if err := db.SaveDecision(ctx, &payout.PolicyDecision{PayoutID: id, PolicyVersion: 1, Rule: d.Rule, Action: string(d.Action),
			Code: d.Code, Reason: d.Reason, APIKeyID: in.APIKeyID, Facts: facts, DecidedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]payout.Code{"po_payroll": "", "po_growth": payout.CodePolicyDenied, "po_undecided": payout.CodePolicyDenied} {
		p := &payout.Payout{ID: id, Chain: "sandbox", Asset: "ETH", Sender: wallet, To: stranger, Amount: big.NewInt(1), CreatedAt: now}
		code, reason, err := r.Recheck(ctx, p, 18)
		if err != nil || code != want {
			t.Errorf("Recheck %s = %q (%s), %v; want %q", id, code, reason, err, want)
		}
	}
}

func TestValidateLabel(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"team", "payroll", true},
		{"cost.center-2_x", "", true},
		{"Team", "x", false},
		{"2team", "x", false},
		{"", "x", false},
		{"te am", "x", false},
		{strings.Repeat("a", 64), "x", false},
		{"team", "line\nbreak", false},
		{"team", strings.Repeat("v", 201), false},
		{"team", "ünïcode ok", true},
	} {
		if err := policy.ValidateLabel(tc.name, tc.value); (err == nil) != tc.ok {
			t.Errorf("ValidateLabel(%q, %q) = %v, want ok %v", tc.name, tc.value, err, tc.ok)
		}
	}
	many := map[string]string{}
	for i := range policy.MaxLabels + 1 {
		many["l"+strings.Repeat("x", i)] = "v"
	}
	if err := policy.ValidateLabels(many); err == nil {
		t.Error("21 labels accepted")
	}
}
