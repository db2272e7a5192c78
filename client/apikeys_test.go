package client_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"testing"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/httpapi"
)

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil, nil)
	admin := client.New(s.url, apiKey, fast()...)
	ctx := context.Background()
	k, err := admin.CreateAPIKey(ctx, client.CreateAPIKeyParams{Name: "signer", Scopes: []string{client.ScopePayoutsWrite},
		RequireSigning: true, RateLimit: &client.RateLimit{PerSecond: 50, Burst: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.Secret, "sk_live_") || !k.RequireSigning || k.RateLimit == nil || k.RateLimit.Burst != 10 || k.APIVersion == "" {
		t.Fatalf("created %+v", k)
	}
	_, err = admin.CreateAPIKey(ctx, client.CreateAPIKeyParams{Name: "x", Scopes: []string{"root"}})
	if client.ErrorCode(err) != "invalid_scope" || !strings.Contains(err.Error(), `"root"`) {
		t.Errorf("unknown scope: %v, want invalid_scope naming it", err)
	}

	// Unsigned, the key is refused; signed, identical requests in the same
	// second all pass (each gets its own signature).
	if _, err := client.New(s.url, k.Secret, fast()...).ListPayouts(ctx, client.ListPayoutsParams{}); client.ErrorCode(err) != "signature_missing" {
		t.Errorf("unsigned: %v, want signature_missing", err)
	}
	signed := client.New(s.url, k.Secret, fast(client.WithSigning())...)
	for i := range 3 {
		if _, err := signed.ListPayouts(ctx, client.ListPayoutsParams{Limit: 5, Status: client.StatusQueued}); err != nil {
			t.Fatalf("signed list %d: %v", i, err)
		}
	}
	if _, err := signed.CreatePayout(ctx, params(7), ""); err != nil {
		t.Errorf("signed create: %v", err)
	}
	if _, err := client.New(s.url, k.Secret, fast(client.WithSigning(), client.WithVersion("1999-01-01"))...).ListChains(ctx); client.ErrorCode(err) != "invalid_api_version" {
		t.Errorf("unknown version: %v, want invalid_api_version", err)
	}
	if _, err := client.New(s.url, k.Secret, fast(client.WithSigning(), client.WithVersion(httpapi.CurrentVersion()))...).ListChains(ctx); err != nil {
		t.Errorf("the current version, named: %v", err)
	}

	l, err := admin.ListAPIKeys(ctx, 10, "")
	if err != nil || len(l.Data) != 1 || l.Data[0].ID != k.ID || l.Data[0].Secret != "" || l.Data[0].LastUsedAt == nil {
		t.Fatalf("list: %+v, %v", l, err)
	}
	if r, err := admin.RevokeAPIKey(ctx, k.ID); err != nil || r.RevokedAt == nil {
		t.Fatalf("revoke: %+v, %v", r, err)
	}
	if _, err := signed.ListChains(ctx); client.ErrorCode(err) != "unauthorized" {
		t.Errorf("after revoking: %v, want unauthorized", err)
	}
	if _, err := admin.RevokeAPIKey(ctx, "key_missing"); client.ErrorCode(err) != "not_found" {
		t.Errorf("revoke unknown: %v", err)
	}
}

func TestSigningKeyMatchesTheServer(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{"sk_live_x", "sk_test_" + strings.Repeat("ab", 32), ""} {
		if !bytes.Equal(client.SigningKey(secret), httpapi.SigningKey(secret)) {
			t.Errorf("SigningKey(%q) differs from the server's", secret)
		}
	}
}

// Make a read-only key whose requests must be signed, and use it.
func ExampleClient_CreateAPIKey() {
	dir, err := os.MkdirTemp("", "sluice-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, stop, err := startServer(dir, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	ctx := context.Background()
	admin := client.New(s.url, "sk_client_test_key") // an admin key

	k, err := admin.CreateAPIKey(ctx, client.CreateAPIKeyParams{
		Name: "reporting", Scopes: []string{client.ScopePayoutsRead}, RequireSigning: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(k.Name, k.Scopes, k.RequireSigning, strings.HasPrefix(k.Secret, "sk_live_"))

	reporting := client.New(s.url, k.Secret, client.WithSigning())
	page, err := reporting.ListPayouts(ctx, client.ListPayoutsParams{Limit: 10})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(page.Data), "payouts")

	_, err = reporting.CreatePayout(ctx, client.CreatePayoutParams{}, "")
	fmt.Println(client.ErrorCode(err))
	// Output:
	// reporting [payouts:read] true true
	// 0 payouts
	// forbidden
}
