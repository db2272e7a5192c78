package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
)

// RunAPIKeys runs the conformance suite of payout.APIKeyStore. open must
// return a new, empty store each time; tests run in parallel.
func RunAPIKeys(t *testing.T, open func(t *testing.T) payout.APIKeyStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s payout.APIKeyStore)
	}{
		{"CreateAndFind", testAPIKeyCreateAndFind},
		{"List", testAPIKeyList},
		{"Revoke", testAPIKeyRevoke},
		{"Touch", testAPIKeyTouch},
		{"Signatures", testAPIKeySignatures},
		{"ConcurrentSignature", testAPIKeyConcurrentSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

var keyIDs = &payout.IDGenerator{}

// newAPIKey returns a key ready to store, with a secret derived from name.
func newAPIKey(name string) *payout.APIKey {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &payout.APIKey{
		ID: keyIDs.New("key_", now), Name: name, Prefix: "sk_test_" + name[:min(4, len(name))],
		Hash: sha256.Sum256([]byte("sk_test_" + name)), Scopes: []payout.Scope{payout.ScopePayoutsRead, payout.ScopeWebhooksManage},
		Version: "2026-11-01", CreatedAt: now,
	}
}

func mustCreateKey(t *testing.T, s payout.APIKeyStore, k *payout.APIKey) *payout.APIKey {
	t.Helper()
	if err := s.CreateAPIKey(ctx(t), k); err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	return k
}

func testAPIKeyCreateAndFind(t *testing.T, s payout.APIKeyStore) {
	plain := mustCreateKey(t, s, newAPIKey("plain"))
	signed := newAPIKey("signed")
	signed.RequireSigning, signed.SigningKey = true, bytes.Repeat([]byte{7}, 32)
	signed.RateLimit = payout.RateLimit{PerSecond: 2.5, Burst: 9}
	mustCreateKey(t, s, signed)
	for _, want := range []*payout.APIKey{plain, signed} {
		got, err := s.APIKeyByHash(ctx(t), want.Hash)
		if err != nil {
			t.Fatalf("APIKeyByHash(%s): %v", want.Name, err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("key %s read back (-want +got):\n%s", want.Name, d)
		}
	}
	if _, err := s.APIKeyByHash(ctx(t), sha256.Sum256([]byte("nobody"))); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("unknown hash: %v, want ErrNotFound", err)
	}
	dup := newAPIKey("plain") // same secret, so the same hash
	if err := s.CreateAPIKey(ctx(t), dup); err == nil {
		t.Error("a second key with the same hash was stored")
	}
}

func testAPIKeyList(t *testing.T, s payout.APIKeyStore) {
	var want []string
	for i := range 5 {
		k := mustCreateKey(t, s, newAPIKey(fmt.Sprintf("key%d", i)))
		want = append([]string{k.ID}, want...) // newest first
	}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		ks, more, err := s.ListAPIKeys(ctx(t), payout.APIKeyFilter{StartingAfter: after, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			got = append(got, k.ID)
		}
		if !more {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		after = ks[len(ks)-1].ID
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("listed ids (-want +got):\n%s", d)
	}
	if _, _, err := s.ListAPIKeys(ctx(t), payout.APIKeyFilter{Limit: 0}); err == nil {
		t.Error("limit 0 accepted")
	}
}

func testAPIKeyRevoke(t *testing.T, s payout.APIKeyStore) {
	k := mustCreateKey(t, s, newAPIKey("revokee"))
	other := mustCreateKey(t, s, newAPIKey("other"))
	got, err := s.RevokeAPIKey(ctx(t), k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.RevokedAt == nil || got.ID != k.ID {
		t.Fatalf("revoked key %+v has no revoked_at", got)
	}
	first := *got.RevokedAt
	again, err := s.RevokeAPIKey(ctx(t), k.ID)
	if err != nil || again.RevokedAt == nil || !again.RevokedAt.Equal(first) {
		t.Errorf("revoking again: %v, revoked_at %v, want the first %v", err, again.RevokedAt, first)
	}
	byHash, err := s.APIKeyByHash(ctx(t), k.Hash)
	if err != nil || byHash.RevokedAt == nil {
		t.Errorf("a revoked key reads back as %+v, %v; want it with revoked_at", byHash, err)
	}
	if o, _ := s.APIKeyByHash(ctx(t), other.Hash); o == nil || o.RevokedAt != nil {
		t.Errorf("revoking one key touched another: %+v", o)
	}
	if _, err := s.RevokeAPIKey(ctx(t), "key_missing"); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("revoke unknown: %v, want ErrNotFound", err)
	}
}

func testAPIKeyTouch(t *testing.T, s payout.APIKeyStore) {
	k := mustCreateKey(t, s, newAPIKey("toucher"))
	t1 := time.Date(2026, 11, 2, 3, 4, 5, 0, time.UTC)
	for _, at := range []time.Time{t1, t1.Add(-time.Hour)} { // an older touch does not go back
		if err := s.TouchAPIKey(ctx(t), k.ID, at); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.APIKeyByHash(ctx(t), k.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(t1) {
		t.Errorf("last_used_at = %v, want %v", got.LastUsedAt, t1)
	}
}

func testAPIKeySignatures(t *testing.T, s payout.APIKeyStore) {
	exp := time.Now().Add(5 * time.Minute)
	sig := bytes.Repeat([]byte{1}, 32)
	if err := s.RecordSignature(ctx(t), "key_a", sig, exp); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordSignature(ctx(t), "key_a", sig, exp); !errors.Is(err, payout.ErrSignatureSeen) {
		t.Errorf("the same signature again: %v, want ErrSignatureSeen", err)
	}
	if err := s.RecordSignature(ctx(t), "key_b", sig, exp); err != nil {
		t.Errorf("the same bytes for another key: %v", err)
	}
	old := bytes.Repeat([]byte{2}, 32)
	if err := s.RecordSignature(ctx(t), "key_a", old, exp.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteSignaturesBefore(ctx(t), exp.Add(-time.Minute))
	if err != nil || n != 1 {
		t.Errorf("DeleteSignaturesBefore: %d, %v; want 1 (the expired one)", n, err)
	}
	if err := s.RecordSignature(ctx(t), "key_a", old, exp); err != nil {
		t.Errorf("an expired, pruned signature cannot be recorded again: %v", err)
	}
	if err := s.RecordSignature(ctx(t), "key_a", sig, exp); !errors.Is(err, payout.ErrSignatureSeen) {
		t.Errorf("pruning forgot a live signature: %v", err)
	}
}

// Many instances given the same signature at once: exactly one accepts it.
func testAPIKeyConcurrentSignature(t *testing.T, s payout.APIKeyStore) {
	sig := bytes.Repeat([]byte{9}, 32)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted int
	)
	for range 8 {
		wg.Go(func() {
			err := s.RecordSignature(ctx(t), "key_c", sig, time.Now().Add(time.Minute))
			if err != nil && !errors.Is(err, payout.ErrSignatureSeen) {
				t.Errorf("RecordSignature: %v", err)
			}
			if err == nil {
				mu.Lock()
				accepted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if accepted != 1 {
		t.Errorf("%d of 8 concurrent identical signatures accepted, want 1", accepted)
	}
}
