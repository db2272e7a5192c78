package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/httpapi"
)

// With approvals.policy_changes, `sluice policy apply` proposes and
// `sluice policy approve` by other approvers activates.
func TestPolicyApproveCommands(t *testing.T) {
	t.Parallel()
	e := newControlEnvWith(t, func(c *httpapi.Config) { c.Approvals.PolicyChanges = 2 })
	admin := client.New(e.base[1], cliKey)
	ctx := context.Background()
	var keys []string
	for _, name := range []string{"alice", "bob"} {
		k, err := admin.CreateAPIKey(ctx, client.CreateAPIKeyParams{Name: name, Scopes: []string{"approver"}})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.Secret)
	}
	as := func(key string, args ...string) (int, string, string) {
		return e.sluice(false, append(args, "--api-url", e.base[1], "--api-key", key)...)
	}
	file := writePolicyFile(t, "policy.yaml", cliPolicy)
	code, out, errOut := e.sluice(true, "policy", "apply", file)
	if code != 0 || !strings.Contains(out, "Policy version 1 waits for 2 approval(s)") || !strings.Contains(out, "sluice policy approve 1") {
		t.Fatalf("policy apply with a quorum: %d %q %q", code, out, errOut)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"policy", "approve", "one"}, 2, `policy version "one" is not a version number`},
		{[]string{"policy", "approve"}, 2, "a policy VERSION"},
		{[]string{"policy", "reject", "1"}, 2, "needs --reason"},
		{[]string{"policy", "approve", "7"}, 1, "policy version 7: "},
	} {
		if code, _, errOut := as(keys[0], tc.args...); code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("sluice %s: %d %q, want exit %d naming %q", strings.Join(tc.args, " "), code, errOut, tc.code, tc.want)
		}
	}
	if code, _, errOut := e.sluice(true, "policy", "approve", "1"); code != 1 || !strings.Contains(errOut, "approver_name_required") {
		t.Fatalf("an unnamed key approves: %d %q, want exit 1 approver_name_required", code, errOut)
	}
	// A named admin proposes version 2 and may not approve it.
	carol, err := admin.CreateAPIKey(ctx, client.CreateAPIKeyParams{Name: "carol", Scopes: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := as(carol.Secret, "policy", "apply", file); code != 0 || !strings.Contains(out, "Policy version 2 waits") {
		t.Fatalf("carol applies: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := as(carol.Secret, "policy", "approve", "2"); code != 1 || !strings.Contains(errOut, "policy version 2: ") || !strings.Contains(errOut, "self_approval") {
		t.Fatalf("the proposer approves: %d %q, want exit 1 self_approval", code, errOut)
	}
	// Version 3 supersedes it; the quorum approves version 3.
	if code, out, errOut := e.sluice(true, "policy", "apply", file); code != 0 || !strings.Contains(out, "Policy version 3 waits") {
		t.Fatalf("third apply: %d %q %q", code, out, errOut)
	}
	if code, out, errOut := as(keys[0], "policy", "approve", "3", "--reason", "reviewed"); code != 0 || !strings.Contains(out, "1 of 2 approvals; it is not active yet") {
		t.Fatalf("first approval: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := as(keys[0], "policy", "approve", "3"); code != 1 || !strings.Contains(errOut, "already_decided") {
		t.Fatalf("alice again: %d %q, want already_decided", code, errOut)
	}
	if _, err := admin.GetPolicy(ctx); client.ErrorCode(err) != "not_found" {
		t.Fatalf("GetPolicy before the quorum: %v, want not_found (nothing active)", err)
	}
	if code, out, errOut := as(keys[1], "policy", "approve", "3"); code != 0 || !strings.Contains(out, "Policy version 3 is active (2 of 2 approvals)") {
		t.Fatalf("quorum approval: %d %q %q", code, out, errOut)
	}
	if code, out, errOut := e.sluice(true, "policy", "apply", file); code != 0 || !strings.Contains(out, "Policy version 4 waits") {
		t.Fatalf("fourth apply: %d %q %q", code, out, errOut)
	}
	if code, out, errOut := as(keys[0], "policy", "reject", "4", "--reason", "not now"); code != 0 || !strings.Contains(out, "Policy version 4 is rejected") {
		t.Fatalf("reject: %d %q %q", code, out, errOut)
	}
	code, out, errOut = e.sluice(true, "policy", "versions")
	for _, want := range []string{`(?m)^4\s+false\s+rejected\s+0/2`, `(?m)^3\s+true\s+applied\s+2/2`, `(?m)^2\s+false\s+superseded\s+0/2`} {
		if code != 0 || !regexpMatch(want, out) {
			t.Errorf("policy versions: %d %q %q; want a line matching %s", code, out, errOut, want)
		}
	}
	if v, err := admin.GetPolicy(ctx); err != nil || v.Version != 3 || v.Status != "applied" || len(v.Approvals) != 2 {
		t.Fatalf("GetPolicy = %+v, %v; want version 3 applied with two approvals", v, err)
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

// `sluice policy test` takes the initiating key's labels.
func TestPolicyTestWithKeyLabels(t *testing.T) {
	t.Parallel()
	e := newControlEnv(t)
	file := writePolicyFile(t, "labels.yaml", "version: 1\ndefault: deny\nrules:\n"+
		"  - {name: payroll, when: '\"team\" in api_key_labels && api_key_labels[\"team\"] == \"payroll\"', action: allow}\n")
	to := "0x2222222222222222222222222222222222222222"
	for labels, want := range map[string]string{
		`{"team":"payroll"}`: "Decision: allow",
		`{"team":"growth"}`:  "Decision: deny",
		`null`:               "Decision: deny",
	} {
		p := `{"chain":"sandbox","asset":"ETH","to":"` + to + `","amount":"1","api_key_labels":` + labels + `}`
		if code, out, errOut := e.sluice(false, "policy", "test", file, "--payout", p); code != 0 || !strings.Contains(out, want) {
			t.Errorf("policy test with labels %s: %d %q %q, want %q", labels, code, out, errOut, want)
		}
	}
}
