package storetest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
)

// LabeledAPIKeyStore is an API key store that keeps labels with its keys.
type LabeledAPIKeyStore interface {
	payout.APIKeyStore
	CreateLabeledAPIKey(ctx context.Context, k *payout.APIKey, labels map[string]string) error
	APIKeyLabels(ctx context.Context, ids ...string) (map[string]map[string]string, error)
}

// RunAPIKeyLabels runs the conformance suite of API key labels. open must
// return a new, empty store each time.
func RunAPIKeyLabels(t *testing.T, open func(t *testing.T) LabeledAPIKeyStore) {
	t.Run("StoredWithTheKey", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		payroll := newAPIKey("payroll")
		labels := map[string]string{"team": "payroll", "region": "eu", "quote": `it's "x" ü`}
		if err := s.CreateLabeledAPIKey(ctx(t), payroll, labels); err != nil {
			t.Fatal(err)
		}
		plain := mustCreateKey(t, s, newAPIKey("plain"))
		got, err := s.APIKeyLabels(ctx(t), payroll.ID, plain.ID, "key_unknown")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]map[string]string{payroll.ID: labels}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("APIKeyLabels (-want +got):\n%s", d)
		}
		// The key itself reads back as before: labels change nothing else.
		k, err := s.APIKeyByHash(ctx(t), payroll.Hash)
		if err != nil || k.ID != payroll.ID || k.Name != "payroll" {
			t.Fatalf("APIKeyByHash = %+v, %v", k, err)
		}
		if got, err := s.APIKeyLabels(ctx(t)); err != nil || len(got) != 0 {
			t.Errorf("APIKeyLabels() = %v, %v; want none", got, err)
		}
		// A key that fails to store leaves no labels behind.
		dup := newAPIKey("payroll") // same hash
		if err := s.CreateLabeledAPIKey(ctx(t), dup, map[string]string{"team": "other"}); err == nil {
			t.Fatal("a second key with the same hash was stored")
		}
		if got, _ := s.APIKeyLabels(ctx(t), dup.ID); len(got) != 0 {
			t.Errorf("labels of a key never stored: %v", got)
		}
	})
}
