package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// approvalPolicy holds payouts under 10 base units for an hour and asks two
// treasury approvers for every other one.
const approvalPolicy = `version: 1
rules:
  - name: hold-sevens
    when: amount < 10
    action: hold
    hold_for: 1h
  - name: two-approvers
    when: amount > 0
    action: require_approval
    approvals: {quorum: 2, group: treasury}
default: deny
`

// approvalView is the "approval" of a payout's answer.
type approvalView struct {
	Kind      string            `json:"kind"`
	Quorum    int               `json:"quorum"`
	Approved  int               `json:"approved"`
	Approvals []payout.Approval `json:"approvals"`
}

type approvedPayout struct {
	Status      payout.Status `json:"status"`
	FailureCode *string       `json:"failure_code"`
	Approval    *approvalView `json:"approval"`
}

func decodeApproved(t *testing.T, r response) approvedPayout {
	t.Helper()
	var p approvedPayout
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return p
}

func TestApprovals(t *testing.T) {
	t.Parallel()
	clk := &clock{t: testNow}
	e := keyEnv(t, nil, clk, func(c *Config) {
		c.Approvals = ApprovalConfig{Groups: map[string][]string{"treasury": {"alice", "bob", "creator"}}}
	})
	if r := putPolicy(t, e, approvalPolicy); r.status != http.StatusOK {
		t.Fatalf("PUT policy: %d %s", r.status, r.body)
	}
	creator := e.newKey(`{"name":"creator","scopes":["payouts:write","approver"]}`)
	alice := e.newKey(`{"name":"alice","scopes":["approver"]}`)
	bob := e.newKey(`{"name":"bob","scopes":["approver"]}`)
	carol := e.newKey(`{"name":"carol","scopes":["approver"]}`)
	reader := e.newKey(`{"name":"reader","scopes":["payouts:read"]}`)

	create := func(idem, amount string) string {
		t.Helper()
		r := e.do("POST", "/v1/payouts", payoutBody(amount), bearer(creator.Secret), "Idempotency-Key: "+idem)
		if r.status != http.StatusCreated || r.payout(t).Status != payout.StatusPendingApproval {
			t.Fatalf("create %s: %d %s, want 201 pending_approval", amount, r.status, r.body)
		}
		return r.payout(t).ID
	}
	act := func(k createdKey, verb, id, body string) response {
		t.Helper()
		return e.do("POST", "/v1/payouts/"+id+"/"+verb, body, bearer(k.Secret))
	}

	quorum := create("ap-1", "1000")
	if queued, _ := e.db.QueuedPayouts(t.Context(), 1337, testWallet, 10); len(queued) != 0 {
		t.Fatalf("a pending payout is queued for signing: %v", queued)
	}
	steps := []struct {
		name       string
		key        createdKey
		verb, body string
		status     int
		code       payout.Code // of a refusal
		want       payout.Status
		approved   int
	}{
		{"no approver scope", reader, "approve", "", 403, payout.CodeForbidden, "", 0},
		{"initiator", creator, "approve", "", 403, payout.CodeSelfApproval, "", 0},
		{"outside the group", carol, "approve", "", 403, payout.CodeNotInApproverGroup, "", 0},
		{"unknown field", alice, "approve", `{"note":"x"}`, 400, payout.CodeUnknownField, "", 0},
		{"first", alice, "approve", `{"reason":"checked the invoice"}`, 200, "", payout.StatusPendingApproval, 1},
		{"twice", alice, "approve", "", 409, payout.CodeAlreadyDecided, "", 0},
		{"quorum", bob, "approve", "", 200, "", payout.StatusQueued, 2},
		{"after the quorum", carol, "reject", `{"reason":"late"}`, 409, payout.CodeNotPendingApproval, "", 0},
	}
	for _, st := range steps {
		r := act(st.key, st.verb, quorum, st.body)
		if r.status != st.status {
			t.Fatalf("%s: %d %s, want %d", st.name, r.status, r.body, st.status)
		}
		if st.code != "" {
			if got := r.problem(t).Code; got != st.code {
				t.Fatalf("%s: code %s, want %s", st.name, got, st.code)
			}
			continue
		}
		if got := decodeApproved(t, r); got.Status != st.want || got.Approval == nil || got.Approval.Approved != st.approved ||
			got.Approval.Quorum != 2 {
			t.Fatalf("%s: %s, want %s with %d approvals", st.name, r.body, st.want, st.approved)
		}
	}
	if queued, _ := e.db.QueuedPayouts(t.Context(), 1337, testWallet, 10); len(queued) != 1 || queued[0].ID != quorum {
		t.Fatalf("approved payout not queued for signing: %v", queued)
	}
	if r := e.do("GET", "/v1/events?object_id="+quorum, ""); !strings.Contains(string(r.body), `"payout.approved"`) ||
		!strings.Contains(string(r.body), `"payout.approval_added"`) {
		t.Errorf("events of the approved payout: %s", r.body)
	}

	// A rejection needs a reason and ends the payout.
	rejected := create("ap-2", "2000")
	if r := act(alice, "reject", rejected, `{}`); r.status != 422 {
		t.Fatalf("reject without reason: %d %s, want 422", r.status, r.body)
	}
	r := act(alice, "reject", rejected, `{"reason":"unknown vendor"}`)
	if got := decodeApproved(t, r); r.status != 200 || got.Status != payout.StatusRejected || got.FailureCode == nil ||
		*got.FailureCode != string(payout.CodeApprovalRejected) {
		t.Fatalf("reject: %d %s, want rejected approval_rejected", r.status, r.body)
	}

	// A hold cannot be approved; the sweep releases it.
	held := create("ap-3", "7")
	if r := act(alice, "approve", held, ""); r.status != 409 || r.problem(t).Code != codePayoutHeld {
		t.Fatalf("approve a hold: %d %s, want 409 payout_held", r.status, r.body)
	}

	// Approvals expire: the next approval finds the payout rejected.
	late := create("ap-4", "3000")
	clk.add(DefaultApprovalExpiry + time.Second)
	if r := act(alice, "approve", late, ""); r.status != 409 || r.problem(t).Code != payout.CodeApprovalExpired {
		t.Fatalf("approve after expiry: %d %s, want 409 approval_expired", r.status, r.body)
	}
	if got := decodeApproved(t, e.do("GET", "/v1/payouts/"+late, "")); got.Status != payout.StatusRejected ||
		*got.FailureCode != string(payout.CodeApprovalExpired) {
		t.Fatalf("expired payout: %+v, want rejected approval_expired", got)
	}
	res, err := e.db.SweepApprovals(t.Context(), clk.now(), 100)
	if err != nil || len(res.Released) != 1 || res.Released[0] != held || len(res.Expired) != 0 {
		t.Fatalf("sweep = %+v, %v; want the hold released", res, err)
	}

	r = e.do("GET", "/v1/audit?limit=100", "")
	for _, want := range []string{`"action":"payout.approve"`, `"action":"payout.reject"`, `"action":"payout.approval_expire"`,
		`"action":"payout.hold_release"`, `"approver_name":"alice"`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

func TestApproveBatch(t *testing.T) {
	t.Parallel()
	clk := &clock{t: testNow}
	e := keyEnv(t, nil, clk, nil)
	if r := putPolicy(t, e, approvalPolicy); r.status != http.StatusOK {
		t.Fatalf("PUT policy: %d %s", r.status, r.body)
	}
	alice := e.newKey(`{"name":"alice","scopes":["approver"]}`)
	rows := `{"asset":"SUSD","rows":[{"to":"` + validTo + `","amount":"1500000"},{"to":"` + validTo + `","amount":"5"}]}`
	r := e.do("POST", "/v1/batches", rows, "Idempotency-Key: bat-1")
	if r.status != http.StatusCreated {
		t.Fatalf("batch with rows held for approval: %d %s, want 201", r.status, r.body)
	}
	b := r.batch(t)
	if b.Counts[payout.StatusPendingApproval] != 2 {
		t.Fatalf("batch counts = %v, want 2 pending_approval", b.Counts)
	}
	if r := e.do("POST", "/v1/batches/"+b.ID+"/approve", ""); r.status != 403 || r.problem(t).Code != payout.CodeSelfApproval {
		t.Fatalf("creator approves its batch: %d %s, want 403 self_approval", r.status, r.body)
	}
	r = e.do("POST", "/v1/batches/"+b.ID+"/approve", `{"reason":"payroll"}`, bearer(alice.Secret))
	var got struct {
		Batch    payout.Batch `json:"batch"`
		Approved []string     `json:"approved"`
		Skipped  []string     `json:"skipped"`
	}
	if err := json.Unmarshal(r.body, &got); r.status != 200 || err != nil || len(got.Approved) != 1 || len(got.Skipped) != 1 {
		t.Fatalf("approve batch: %d %s, want one approved (quorum 2: still pending) and the hold skipped", r.status, r.body)
	}
	if got.Batch.Counts[payout.StatusPendingApproval] != 2 {
		t.Errorf("batch counts after one of two approvals = %v", got.Batch.Counts)
	}
	if r := e.do("POST", "/v1/batches/bat_missing/approve", "", bearer(alice.Secret)); r.status != 404 {
		t.Errorf("unknown batch: %d %s", r.status, r.body)
	}
}

func TestRejectBatch(t *testing.T) {
	t.Parallel()
	clk := &clock{t: testNow}
	e := keyEnv(t, nil, clk, nil)
	if r := putPolicy(t, e, approvalPolicy); r.status != http.StatusOK {
		t.Fatalf("PUT policy: %d %s", r.status, r.body)
	}
	alice := e.newKey(`{"name":"alice","scopes":["approver"]}`)
	rows := `{"asset":"SUSD","rows":[{"to":"` + validTo + `","amount":"1500000"},{"to":"` + validTo + `","amount":"5"},{"to":"` + validTo + `","amount":"2500000"}]}`
	r := e.do("POST", "/v1/batches", rows, "Idempotency-Key: bat-rej")
	if r.status != http.StatusCreated {
		t.Fatalf("batch: %d %s, want 201", r.status, r.body)
	}
	b := r.batch(t)
	// Refused, changing nothing: no reason, a key without the scope.
	if r := e.do("POST", "/v1/batches/"+b.ID+"/reject", "", bearer(alice.Secret)); r.status != 422 ||
		r.problem(t).Code != payout.CodeInvalidRequest || r.problem(t).Errors[0].Pointer != "/reason" {
		t.Fatalf("reject without a reason: %d %s, want 422 naming reason", r.status, r.body)
	}
	writer := e.newKey(`{"name":"writer","scopes":["payouts:write"]}`)
	if r := e.do("POST", "/v1/batches/"+b.ID+"/reject", `{"reason":"x"}`, bearer(writer.Secret)); r.status != 403 {
		t.Fatalf("reject without the approver scope: %d %s, want 403", r.status, r.body)
	}
	if r := e.do("GET", "/v1/batches/"+b.ID, ""); r.batch(t).Counts[payout.StatusPendingApproval] != 3 {
		t.Fatalf("a refused rejection changed the batch: %s", r.body)
	}
	// Alice approves one row, then rejects the batch: the other two
	// (the hold too) are rejected, hers is skipped.
	r = e.do("GET", "/v1/payouts?batch_id="+b.ID, "")
	var list struct {
		Data []struct {
			ID     string `json:"id"`
			Amount string `json:"amount"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Data) != 3 {
		t.Fatalf("list batch payouts: %d %s", r.status, r.body)
	}
	var approvedID string
	for _, p := range list.Data {
		if p.Amount == "1500000" {
			approvedID = p.ID
		}
	}
	if r := e.do("POST", "/v1/payouts/"+approvedID+"/approve", "", bearer(alice.Secret)); r.status != 200 {
		t.Fatalf("approve one row: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/v1/batches/"+b.ID+"/reject", `{"reason":"wrong payroll file"}`, bearer(alice.Secret))
	var got struct {
		Object   string       `json:"object"`
		Batch    payout.Batch `json:"batch"`
		Rejected []string     `json:"rejected"`
		Skipped  []string     `json:"skipped"`
	}
	if err := json.Unmarshal(r.body, &got); r.status != 200 || err != nil || got.Object != "batch_rejection" ||
		len(got.Rejected) != 2 || len(got.Skipped) != 1 || got.Skipped[0] != approvedID {
		t.Fatalf("reject batch: %d %s, want two rejected and the approved row skipped", r.status, r.body)
	}
	if got.Batch.Counts[payout.StatusRejected] != 2 || got.Batch.Counts[payout.StatusPendingApproval] != 1 {
		t.Errorf("batch counts after the rejection = %v", got.Batch.Counts)
	}
	for _, id := range got.Rejected {
		p := decodeApproved(t, e.do("GET", "/v1/payouts/"+id, ""))
		if p.Status != payout.StatusRejected || p.FailureCode == nil || *p.FailureCode != string(payout.CodeApprovalRejected) {
			t.Errorf("rejected row %s: %+v", id, p)
		}
	}
	r = e.do("GET", "/v1/audit", "")
	if n := strings.Count(string(r.body), `"action":"payout.reject"`); n != 2 {
		t.Errorf("audit log has %d payout.reject entries, want 2", n)
	}
	// The creating key may reject the rest; then nothing waits.
	if r := e.do("POST", "/v1/batches/"+b.ID+"/reject", `{"reason":"withdrawn"}`); r.status != 200 {
		t.Fatalf("initiator rejects: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/batches/"+b.ID+"/reject", `{"reason":"again"}`); r.status != 409 || r.problem(t).Code != payout.CodeNotPendingApproval {
		t.Errorf("reject with nothing pending: %d %s, want 409 not_pending_approval", r.status, r.body)
	}
	if r := e.do("POST", "/v1/batches/bat_missing/reject", `{"reason":"x"}`, bearer(alice.Secret)); r.status != 404 {
		t.Errorf("unknown batch: %d %s", r.status, r.body)
	}
}
