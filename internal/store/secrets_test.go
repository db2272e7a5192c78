package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
	"github.com/sluicepay/sluice/internal/store/storetest"
)

// TestWebhookSecretsSealed: with a secrets key, a webhook secret is stored
// sealed (never in the clear) and read back as it was; a reader without
// the key sees only the sealed form; another key is refused, at start
// (SealSecrets) and on read; a sealed secret copied to another endpoint
// does not open; secrets stored in the clear before the key was set are
// sealed at start.
func TestWebhookSecretsSealed(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sluice.db")
		testSecretsSealed(t, "sqlite:"+path, "sqlite:"+path)
	})
	t.Run("postgres", func(t *testing.T) {
		u := storetest.PostgresURL(t)
		testSecretsSealed(t, u, u)
	})
}

func testSecretsSealed(t *testing.T, url, again string) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, 32)
	open := func(k []byte) *store.DB {
		db, err := store.Open(ctx, url, store.Options{Logger: quiet, SecretsKey: k})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	endpoint := func(db *store.DB, secret string) *payout.WebhookEndpoint {
		e := &payout.WebhookEndpoint{ID: payout.NewWebhookEndpointID(time.Now()), URL: "https://example.com/hook",
			EnabledEvents: []string{payout.AllEventTypes}, Enabled: true, Secret: secret}
		if err := db.CreateWebhookEndpoint(ctx, e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	// Written in the clear before any key was set.
	plainDB := open(nil)
	legacy := endpoint(plainDB, "whsec_legacy_0123456789")
	if raw, _ := plainDB.RawEndpointSecret(legacy.ID); raw != "whsec_legacy_0123456789" {
		t.Fatalf("without a key the secret is stored as given, got %q", raw)
	}

	signingKey := bytes.Repeat([]byte{0xA5}, 32)
	apiKey := &payout.APIKey{ID: "key_sealtest", Name: "signer", Prefix: "sk_test_sign", Hash: sha256.Sum256([]byte("sk_test_sealtest")),
		Scopes: []payout.Scope{payout.ScopePayoutsRead}, Version: "2026-11-01", CreatedAt: time.Now(), RequireSigning: true, SigningKey: signingKey}
	if err := plainDB.CreateAPIKey(ctx, apiKey); err != nil {
		t.Fatal(err)
	}

	db := open(key)
	if n, err := db.SealSecrets(ctx); err != nil || n != 2 {
		t.Fatalf("SealSecrets = %d, %v; want the legacy webhook secret and signing key sealed", n, err)
	}
	if raw, err := db.RawSigningKey(apiKey.ID); err != nil || !bytes.HasPrefix(raw, []byte("enc:v1:")) || bytes.Contains(raw, signingKey) {
		t.Errorf("the signing key is stored as %q, %v; want it sealed", raw, err)
	}
	if got, err := db.APIKeyByHash(ctx, apiKey.Hash); err != nil || !bytes.Equal(got.SigningKey, signingKey) {
		t.Errorf("the signing key read back as %x, %v", got.SigningKey, err)
	}
	signed2 := &payout.APIKey{ID: "key_sealtest2", Name: "signer2", Prefix: "sk_test_sig2", Hash: sha256.Sum256([]byte("sk_test_sealtest2")),
		Scopes: []payout.Scope{payout.ScopePayoutsRead}, Version: "2026-11-01", CreatedAt: time.Now(), RequireSigning: true, SigningKey: signingKey}
	if err := db.CreateAPIKey(ctx, signed2); err != nil {
		t.Fatal(err)
	}
	if raw, _ := db.RawSigningKey(signed2.ID); !bytes.HasPrefix(raw, []byte("enc:v1:")) {
		t.Errorf("a new signing key is stored as %q, want it sealed", raw)
	}
	fresh := endpoint(db, "whsec_fresh_abcdefghij")
	for _, e := range []*payout.WebhookEndpoint{legacy, fresh} {
		raw, err := db.RawEndpointSecret(e.ID)
		if err != nil || !strings.HasPrefix(raw, "enc:v1:") || strings.Contains(raw, e.Secret) {
			t.Errorf("%s stored as %q, %v; want it sealed", e.ID, raw, err)
		}
		got, err := db.GetWebhookEndpoint(ctx, e.ID)
		if err != nil || got.Secret != e.Secret {
			t.Errorf("%s read back as %v, %v; want %q", e.ID, got, err, e.Secret)
		}
	}
	if n, err := db.SealSecrets(ctx); err != nil || n != 0 {
		t.Errorf("second SealSecrets = %d, %v; want nothing left to seal", n, err)
	}
	// Rotation keeps the previous secret sealed too.
	if _, err := db.UpdateWebhookEndpoint(ctx, fresh.ID, func(e *payout.WebhookEndpoint) error {
		e.PreviousSecret, e.Secret = e.Secret, "whsec_rotated_zyxwvu"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := db.GetWebhookEndpoint(ctx, fresh.ID); err != nil || got.Secret != "whsec_rotated_zyxwvu" || got.PreviousSecret != "whsec_fresh_abcdefghij" {
		t.Errorf("after rotation: %+v, %v", got, err)
	}

	// No key: the sealed form, never the secret.
	if got, err := open(nil).GetWebhookEndpoint(ctx, legacy.ID); err != nil || got.Secret == legacy.Secret || !strings.HasPrefix(got.Secret, "enc:v1:") {
		t.Errorf("a reader without the key got %q, %v", got.Secret, err)
	}
	// Another key: refused at start and on read.
	other := open(bytes.Repeat([]byte{8}, 32))
	if _, err := other.SealSecrets(ctx); !errors.Is(err, store.ErrSecretsKey) {
		t.Errorf("SealSecrets with another key: %v, want ErrSecretsKey", err)
	}
	if _, err := other.GetWebhookEndpoint(ctx, legacy.ID); !errors.Is(err, store.ErrSecretsKey) {
		t.Errorf("read with another key: %v, want ErrSecretsKey", err)
	}
	// A sealed secret moved to another row does not open.
	raw, _ := db.RawEndpointSecret(legacy.ID)
	if err := db.SetRawEndpointSecret(fresh.ID, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetWebhookEndpoint(ctx, fresh.ID); !errors.Is(err, store.ErrSecretsKey) {
		t.Errorf("a secret copied from another endpoint opened: %v", err)
	}
	if _, err := store.Open(ctx, again, store.Options{Logger: quiet, SecretsKey: []byte("short")}); err == nil {
		t.Error("a 5-byte secrets key was taken")
	}
}
