package config

import (
	"strings"
	"testing"
)

func TestPolicyChanges(t *testing.T) {
	c, err := Parse([]byte(minimal+"\napprovals:\n  policy_changes: 2\n  policy_group: risk\n  groups: [{name: risk, approvers: [alice, bob]}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Approvals.PolicyChanges != 2 || c.Approvals.PolicyGroup != "risk" {
		t.Fatalf("approvals = %+v", c.Approvals)
	}
	if c, err := Parse([]byte(minimal), []string{"SLUICE_APPROVALS_POLICY_CHANGES=3"}); err != nil || c.Approvals.PolicyChanges != 3 {
		t.Fatalf("from the environment: %+v, %v", c.Approvals, err)
	}
	if c, err := Parse([]byte(minimal), nil); err != nil || c.Approvals.PolicyChanges != 0 {
		t.Fatalf("default: %+v, %v; want 0 (apply at once)", c.Approvals, err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"approvals: {policy_changes: -1}", "approvals.policy_changes: -1 is not from 0 to 20"},
		{"approvals: {policy_changes: 21}", "approvals.policy_changes"},
		{"approvals: {policy_changes: 1, policy_group: risk}", `approvals.policy_group: "risk" is not a group`},
		{"approvals: {policy_group: risk, groups: [{name: risk, approvers: [a]}]}", "approvals.policy_group: needs approvals.policy_changes"},
	} {
		if _, err := Parse([]byte(minimal+"\n"+tc.yaml+"\n"), nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to name %q", tc.yaml, err, tc.want)
		}
	}
}
