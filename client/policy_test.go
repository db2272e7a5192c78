package client_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sluicepay/sluice/client"
)

func TestPolicyAndLists(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil, nil)
	c := client.New(s.url, apiKey, fast()...)
	ctx := context.Background()
	if _, err := c.GetPolicy(ctx); client.ErrorCode(err) != "not_found" {
		t.Fatalf("GetPolicy with none: %v, want not_found", err)
	}
	if _, err := c.PutPolicy(ctx, "version: 1\ndefault: allow\n"); client.ErrorCode(err) != "invalid_policy" {
		t.Fatalf("PutPolicy(default allow): %v, want invalid_policy", err)
	}
	if _, err := c.CreateList(ctx, client.CreateListParams{Name: "blocked", Kind: "deny"}); err != nil {
		t.Fatal(err)
	}
	ch, err := c.AddListEntries(ctx, "blocked", client.ListEntriesParams{Addresses: []string{to}, Note: "fraud case 7"})
	if err != nil || len(ch.Added) != 1 || ch.List.Entries != 1 {
		t.Fatalf("AddListEntries = %+v, %v", ch, err)
	}
	if page, err := c.ListLists(ctx); err != nil || len(page.Data) != 1 || page.Data[0].Kind != "deny" {
		t.Fatalf("ListLists = %+v, %v", page, err)
	}
	p, err := c.PutPolicy(ctx, "version: 1\nrules:\n  - {name: all, when: 'true', action: allow}\ndefault: deny\n")
	if err != nil || p.Version != 1 || !p.Active {
		t.Fatalf("PutPolicy = %+v, %v", p, err)
	}
	if vs, err := c.ListPolicyVersions(ctx); err != nil || len(vs.Data) != 1 || vs.Data[0].Version != 1 {
		t.Fatalf("ListPolicyVersions = %+v, %v", vs, err)
	}
	if _, err := c.CreatePayout(ctx, params(5), ""); client.ErrorCode(err) != "denied_destination" {
		t.Fatalf("payout to a denied destination: %v, want denied_destination", err)
	}
	if _, err := c.AddListEntries(ctx, "blocked", client.ListEntriesParams{Replace: true}); err != nil {
		t.Fatal(err)
	}
	po, err := c.CreatePayout(ctx, params(5), "")
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.PayoutDecision(ctx, po.ID)
	if err != nil || d == nil || d.Rule != "all" || d.Action != "allow" || !strings.Contains(string(d.Facts), `"amount":"5"`) {
		t.Fatalf("PayoutDecision = %+v, %v", d, err)
	}
}
