package main

import (
	"context"
	"math/big"
	"strings"
	"testing"

	"github.com/sluicepay/sluice/client"
)

func TestPayoutApproveAndReject(t *testing.T) {
	t.Parallel()
	e := newControlEnv(t)
	url := e.base[1]
	admin := client.New(url, cliKey)
	ctx := context.Background()
	if _, err := admin.PutPolicy(ctx, "version: 1\nrules:\n  - {name: pair, when: 'true', action: require_approval, approvals: {quorum: 1, group: ops}}\ndefault: deny\n"); err != nil {
		t.Fatal(err)
	}
	k, err := admin.CreateAPIKey(ctx, client.CreateAPIKeyParams{Name: "alice", Scopes: []string{"approver"}})
	if err != nil {
		t.Fatal(err)
	}
	create := func() string {
		p, err := admin.CreatePayout(ctx, client.CreatePayoutParams{Chain: "sandbox", Asset: "ETH",
			To: "0x2222222222222222222222222222222222222222", Amount: big.NewInt(5)}, "")
		if err != nil || p.Status != client.StatusPendingApproval {
			t.Fatalf("create: %+v, %v", p, err)
		}
		return p.ID
	}
	as := []string{"--api-url", url, "--api-key", k.Secret}

	id := create()
	code, out, errOut := e.sluice(false, append([]string{"payout", "approve", id, "--reason", "checked"}, as...)...)
	if code != 0 || !strings.Contains(out, "queued") || !strings.Contains(out, "Approvals:  1 of 1 (group ops)") {
		t.Fatalf("payout approve: %d %q %q", code, out, errOut)
	}
	if code, _, errOut = e.sluice(true, "payout", "approve", create()); code != 1 || !strings.Contains(errOut, "approver_name_required") {
		t.Fatalf("approve with an unnamed key: %d %q, want exit 1 approver_name_required", code, errOut)
	}

	id = create()
	if code, _, errOut = e.sluice(false, append([]string{"payout", "reject", id}, as...)...); code != 2 || !strings.Contains(errOut, "--reason") {
		t.Fatalf("reject without --reason: %d %q, want exit 2", code, errOut)
	}
	code, out, errOut = e.sluice(false, append([]string{"payout", "reject", id, "--reason", "unknown vendor", "--json"}, as...)...)
	if code != 0 || !strings.Contains(out, `"status": "rejected"`) || !strings.Contains(out, "approval_rejected") {
		t.Fatalf("payout reject: %d %q %q", code, out, errOut)
	}

	b, err := admin.CreateBatch(ctx, client.BatchParams{Chain: "sandbox", Asset: "ETH"}, []client.BatchRow{
		{To: "0x2222222222222222222222222222222222222222", Amount: "5"},
		{To: "0x3333333333333333333333333333333333333333", Amount: "6"}}, "cli-batch-1")
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut = e.sluice(false, append([]string{"batch", "approve", b.ID, "--reason", "payroll"}, as...)...)
	if code != 0 || !strings.Contains(out, "approved 2 payout(s): 2 now queued, 0 skipped") || !strings.Contains(out, "queued 2") {
		t.Fatalf("batch approve: %d %q %q", code, out, errOut)
	}
}

func TestBatchReject(t *testing.T) {
	t.Parallel()
	e := newControlEnv(t)
	url := e.base[1]
	admin := client.New(url, cliKey)
	ctx := context.Background()
	if _, err := admin.PutPolicy(ctx, "version: 1\nrules:\n  - {name: pair, when: 'true', action: require_approval, approvals: {quorum: 1, group: ops}}\ndefault: deny\n"); err != nil {
		t.Fatal(err)
	}
	k, err := admin.CreateAPIKey(ctx, client.CreateAPIKeyParams{Name: "alice", Scopes: []string{"approver"}})
	if err != nil {
		t.Fatal(err)
	}
	as := []string{"--api-url", url, "--api-key", k.Secret}
	b, err := admin.CreateBatch(ctx, client.BatchParams{Chain: "sandbox", Asset: "ETH"}, []client.BatchRow{
		{To: "0x2222222222222222222222222222222222222222", Amount: "5"},
		{To: "0x3333333333333333333333333333333333333333", Amount: "6"}}, "cli-batch-rej")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := e.sluice(false, append([]string{"batch", "reject", b.ID}, as...)...); code != 2 || !strings.Contains(errOut, "--reason") {
		t.Fatalf("batch reject without --reason: %d %q, want exit 2 naming --reason", code, errOut)
	}
	if got, _ := admin.GetBatch(ctx, b.ID); got.Counts[client.StatusPendingApproval] != 2 {
		t.Fatalf("a refused reject changed the batch: %+v", got.Counts)
	}
	code, out, errOut := e.sluice(false, append([]string{"batch", "reject", b.ID, "--reason", "wrong file"}, as...)...)
	if code != 0 || !strings.Contains(out, "rejected 2 payout(s): 0 skipped") || !strings.Contains(out, "rejected 2") {
		t.Fatalf("batch reject: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := e.sluice(false, append([]string{"batch", "reject", b.ID, "--reason", "again"}, as...)...); code != 1 ||
		!strings.Contains(errOut, `batch "`+b.ID+`"`) || !strings.Contains(errOut, "not_pending_approval") {
		t.Fatalf("batch reject with nothing pending: %d %q, want exit 1 not_pending_approval", code, errOut)
	}
	res, err := client.New(url, k.Secret).RejectBatch(ctx, b.ID, "")
	if err == nil || res != nil {
		t.Fatalf("RejectBatch without a reason = %+v, %v", res, err)
	}
}
