package client_test

import (
	"context"
	"testing"

	"github.com/sluicepay/sluice/client"
)

func TestApprovals(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil, nil)
	admin := client.New(s.url, apiKey, fast()...)
	ctx := context.Background()
	if _, err := admin.PutPolicy(ctx, "version: 1\nrules:\n  - {name: pair, when: 'true', action: require_approval, approvals: {quorum: 1, group: ops}}\ndefault: deny\n"); err != nil {
		t.Fatal(err)
	}
	k, err := admin.CreateAPIKey(ctx, client.CreateAPIKeyParams{Name: "alice", Scopes: []string{"approver"}})
	if err != nil {
		t.Fatal(err)
	}
	alice := client.New(s.url, k.Secret, fast()...)
	approve, err := admin.CreatePayout(ctx, params(5), "")
	if err != nil || approve.Status != client.StatusPendingApproval {
		t.Fatalf("CreatePayout = %+v, %v; want pending_approval", approve, err)
	}
	if _, err := admin.ApprovePayout(ctx, approve.ID, ""); client.ErrorCode(err) != "self_approval" {
		t.Fatalf("self approval: %v, want self_approval", err)
	}
	if p, err := alice.ApprovePayout(ctx, approve.ID, "ok"); err != nil || p.Status != client.StatusQueued {
		t.Fatalf("ApprovePayout = %+v, %v; want queued", p, err)
	}
	a, err := alice.PayoutApproval(ctx, approve.ID)
	if err != nil || a == nil || a.Approved != 1 || a.Approvals[0].ApproverName != "alice" || a.Group != "ops" {
		t.Fatalf("PayoutApproval = %+v, %v", a, err)
	}
	reject, err := admin.CreatePayout(ctx, params(6), "")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := alice.RejectPayout(ctx, reject.ID, "not ours"); err != nil || p.Status != client.StatusRejected {
		t.Fatalf("RejectPayout = %+v, %v; want rejected", p, err)
	}
}
