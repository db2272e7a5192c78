package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// policyAnswer is a policy version as the API shows it.
type policyAnswer struct {
	Version   int64  `json:"version"`
	Active    bool   `json:"active"`
	Status    string `json:"status"`
	Quorum    int    `json:"quorum"`
	Approvals []struct {
		ApproverName string `json:"approver_name"`
		Decision     string `json:"decision"`
	} `json:"approvals"`
}

func decodePolicy(t *testing.T, r response) policyAnswer {
	t.Helper()
	var p policyAnswer
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return p
}

func TestPolicyChangeNeedsQuorum(t *testing.T) {
	t.Parallel()
	clk := &clock{t: testNow}
	e := keyEnv(t, nil, clk, func(c *Config) { c.Approvals = ApprovalConfig{PolicyChanges: 2} })
	alice := e.newKey(`{"name":"alice","scopes":["approver"]}`)
	bob := e.newKey(`{"name":"bob","scopes":["approver"]}`)
	carol := e.newKey(`{"name":"carol","scopes":["approver"]}`)
	writer := e.newKey(`{"name":"writer","scopes":["payouts:write"]}`)

	r := putPolicy(t, e, testPolicyDoc)
	if p := decodePolicy(t, r); r.status != http.StatusAccepted || p.Version != 1 || p.Active || p.Status != "pending" || p.Quorum != 2 {
		t.Fatalf("PUT policy with a quorum: %d %s, want 202 pending version 1", r.status, r.body)
	}
	if r := e.do("GET", "/v1/policy", ""); r.status != http.StatusNotFound {
		t.Fatalf("GET policy while the only version waits: %d %s, want 404", r.status, r.body)
	}
	// Refusals change nothing.
	for _, tc := range []struct {
		name, path, body, key string
		status                int
		code                  payout.Code
	}{
		{"the proposer", "/v1/policy/versions/1/approve", "", testKey, 403, payout.CodeSelfApproval},
		{"no approver scope", "/v1/policy/versions/1/approve", "", writer.Secret, 403, payout.CodeForbidden},
		{"not a version", "/v1/policy/versions/one/approve", "", alice.Secret, 404, payout.CodeNotFound},
		{"unknown version", "/v1/policy/versions/99/approve", "", alice.Secret, 404, payout.CodeNotFound},
		{"reject without reason", "/v1/policy/versions/1/reject", `{}`, alice.Secret, 422, payout.CodeInvalidRequest},
		{"unknown field", "/v1/policy/versions/1/approve", `{"why":"x"}`, alice.Secret, 400, payout.CodeUnknownField},
	} {
		r := e.do("POST", tc.path, tc.body, bearer(tc.key))
		if r.status != tc.status || r.problem(t).Code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
	}
	r = e.do("POST", "/v1/policy/versions/1/approve", `{"reason":"reviewed"}`, bearer(alice.Secret))
	if p := decodePolicy(t, r); r.status != 200 || p.Status != "pending" || p.Active || len(p.Approvals) != 1 {
		t.Fatalf("first approval: %d %s, want still pending with one approval", r.status, r.body)
	}
	if r := e.do("POST", "/v1/policy/versions/1/approve", "", bearer(alice.Secret)); r.status != 409 || r.problem(t).Code != payout.CodeAlreadyDecided {
		t.Fatalf("alice again: %d %s, want 409 already_decided", r.status, r.body)
	}
	if r := e.do("GET", "/v1/policy", ""); r.status != http.StatusNotFound {
		t.Fatalf("GET policy after one of two approvals: %d %s, want 404", r.status, r.body)
	}
	r = e.do("POST", "/v1/policy/versions/1/approve", "", bearer(bob.Secret))
	if p := decodePolicy(t, r); r.status != 200 || p.Status != "applied" || !p.Active || len(p.Approvals) != 2 {
		t.Fatalf("quorum approval: %d %s, want applied and active", r.status, r.body)
	}
	if r := e.do("GET", "/v1/policy", ""); r.status != 200 || decodePolicy(t, r).Version != 1 {
		t.Fatalf("GET policy after the quorum: %d %s, want version 1", r.status, r.body)
	}
	// The active policy now decides payouts.
	if r := e.create("pc-1", payoutBody("6000000")); r.status != 422 || r.problem(t).Code != payout.CodePolicyDenied {
		t.Fatalf("payout the approved policy denies: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/policy/versions/1/approve", "", bearer(carol.Secret)); r.status != 409 || r.problem(t).Code != payout.CodeNotPendingApproval {
		t.Fatalf("approving an applied version: %d %s, want 409 not_pending_approval", r.status, r.body)
	}

	// Version 2 is superseded by version 3, which carol rejects: version 1
	// stays in force.
	for want := int64(2); want <= 3; want++ {
		if r := putPolicy(t, e, testPolicyDoc+"# v"+string(rune('0'+want))+"\n"); r.status != http.StatusAccepted || decodePolicy(t, r).Version != want {
			t.Fatalf("PUT version %d: %d %s", want, r.status, r.body)
		}
	}
	r = e.do("POST", "/v1/policy/versions/3/reject", `{"reason":"not reviewed"}`, bearer(carol.Secret))
	if p := decodePolicy(t, r); r.status != 200 || p.Status != "rejected" || p.Active {
		t.Fatalf("reject: %d %s", r.status, r.body)
	}
	var list struct {
		Data []policyAnswer `json:"data"`
	}
	r = e.do("GET", "/v1/policy/versions", "")
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Data) != 3 {
		t.Fatalf("versions: %d %s", r.status, r.body)
	}
	var got []string
	for _, v := range list.Data {
		got = append(got, v.Status)
	}
	if strings.Join(got, ",") != "rejected,superseded,applied" || !list.Data[2].Active {
		t.Errorf("statuses newest first = %v, want rejected,superseded,applied with 1 active", got)
	}
	audit := string(e.do("GET", "/v1/audit?limit=100", "").body)
	for _, want := range []string{"policy.propose", "policy.approve", "policy.apply", "policy.supersede", "policy.reject"} {
		if !strings.Contains(audit, `"action":"`+want+`"`) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

func TestPolicyChangeApproverGroup(t *testing.T) {
	t.Parallel()
	clk := &clock{t: testNow}
	e := keyEnv(t, nil, clk, func(c *Config) {
		c.Approvals = ApprovalConfig{PolicyChanges: 1, PolicyGroup: "risk", Groups: map[string][]string{"risk": {"bob"}}}
	})
	alice := e.newKey(`{"name":"alice","scopes":["approver"]}`)
	bob := e.newKey(`{"name":"bob","scopes":["approver"]}`)
	if r := putPolicy(t, e, testPolicyDoc); r.status != http.StatusAccepted {
		t.Fatalf("PUT policy: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/policy/versions/1/approve", "", bearer(alice.Secret)); r.status != 403 || r.problem(t).Code != payout.CodeNotInApproverGroup {
		t.Fatalf("approver outside the policy group: %d %s, want 403 not_in_approver_group", r.status, r.body)
	}
	if r := e.do("POST", "/v1/policy/versions/1/approve", "", bearer(bob.Secret)); r.status != 200 || !decodePolicy(t, r).Active {
		t.Fatalf("approver in the policy group: %d %s, want the version active", r.status, r.body)
	}
}

// Without a quorum configured, PUT applies at once, as before.
func TestPolicyChangeWithoutQuorumAppliesAtOnce(t *testing.T) {
	t.Parallel()
	e := keyEnv(t, nil, &clock{t: testNow}, nil)
	r := putPolicy(t, e, testPolicyDoc)
	if p := decodePolicy(t, r); r.status != 200 || !p.Active || p.Status != "applied" || p.Quorum != 0 || p.Approvals == nil {
		t.Fatalf("PUT policy: %d %s, want 200 applied and active", r.status, r.body)
	}
	if r := e.do("POST", "/v1/policy/versions/1/approve", "", bearer(testKey)); r.status != 409 || r.problem(t).Code != payout.CodeNotPendingApproval {
		t.Fatalf("approving an applied version: %d %s, want 409", r.status, r.body)
	}
}

// TestPolicyChangeExpires: a version that waited longer than the approvals'
// expiry is expired by the first approver who tries, answered 409
// approval_expired, shown expired, and never becomes active.
func TestPolicyChangeExpires(t *testing.T) {
	t.Parallel()
	e := keyEnv(t, nil, &clock{t: testNow}, func(c *Config) {
		c.Approvals = ApprovalConfig{PolicyChanges: 1, Expiry: 20 * time.Millisecond}
	})
	alice := e.newKey(`{"name":"alice","scopes":["approver"]}`)
	if r := putPolicy(t, e, testPolicyDoc); r.status != http.StatusAccepted {
		t.Fatalf("PUT policy with a quorum: %d %s", r.status, r.body)
	}
	time.Sleep(40 * time.Millisecond) // by the store's clock, which stamped the version
	r := e.do("POST", "/v1/policy/versions/1/approve", "", bearer(alice.Secret))
	if r.status != http.StatusConflict || r.problem(t).Code != payout.CodeApprovalExpired {
		t.Fatalf("approving the expired version: %d %s, want 409 approval_expired", r.status, r.body)
	}
	var versions struct {
		Data []policyAnswer `json:"data"`
	}
	r = e.do("GET", "/v1/policy/versions", "")
	if err := json.Unmarshal(r.body, &versions); err != nil || len(versions.Data) != 1 || versions.Data[0].Status != "expired" ||
		versions.Data[0].Active || len(versions.Data[0].Approvals) != 0 {
		t.Errorf("the expired version: %d %s, want status expired, inactive, no approvals", r.status, r.body)
	}
	if r := e.do("GET", "/v1/policy", ""); r.status != http.StatusNotFound {
		t.Errorf("GET policy after the only version expired: %d %s, want 404", r.status, r.body)
	}
}
