package signer_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/sluicepay/sluice/internal/signer"
	"github.com/sluicepay/sluice/internal/signer/signertest"
)

func TestPKCS11ExistingKeyAndErrors(t *testing.T) {
	cfg := softHSM(t)
	p, err := signer.OpenPKCS11(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := p.Address()
	p.Close()
	// The key lives in the token: opening it again by label finds the same address.
	p2, err := signer.OpenPKCS11(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Address() != addr {
		t.Errorf("reopened key has address %s, want %s", p2.Address().Hex(), addr.Hex())
	}
	if err := p2.Health(context.Background()); err != nil {
		t.Errorf("Health = %v", err)
	}
	p2.Close()

	wrong := cfg
	wrong.PIN = "98761234"
	_, err = signer.OpenPKCS11(wrong)
	if err == nil || !strings.Contains(err.Error(), "wrong PIN") || strings.Contains(err.Error(), wrong.PIN) {
		t.Errorf("wrong PIN: err = %v", err)
	}
	missing := cfg
	missing.KeyLabel = "no-such-key"
	if _, err := signer.OpenPKCS11(missing); err == nil || !strings.Contains(err.Error(), `no EC key labelled "no-such-key"`) {
		t.Errorf("missing key: err = %v", err)
	}
	noToken := cfg
	noToken.TokenLabel = "other"
	if _, err := signer.OpenPKCS11(noToken); err == nil || !strings.Contains(err.Error(), `no token labelled "other"`) {
		t.Errorf("missing token: err = %v", err)
	}
	// A second key in the same token is a different wallet.
	second := cfg
	second.KeyLabel = "hot-2"
	addr2, err := signer.GeneratePKCS11Key(second)
	if err != nil {
		t.Fatal(err)
	}
	if addr2 == addr {
		t.Error("a new key has the old key's address")
	}
}

// Two wallets' keys in one token share the loaded module: closing one
// signer leaves the other signing.
func TestPKCS11TwoSignersShareTheModule(t *testing.T) {
	cfg := softHSM(t)
	other := cfg
	other.KeyLabel = "hot-shared"
	if _, err := signer.GeneratePKCS11Key(other); err != nil {
		t.Fatal(err)
	}
	var a, b *signer.PKCS11
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { a, errA = signer.OpenPKCS11(cfg) })
	wg.Go(func() { b, errB = signer.OpenPKCS11(other) })
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	defer b.Close()
	if a.Address() == b.Address() {
		t.Fatal("two keys with one address")
	}
	tx := nativeTx(1, payee, 1)
	for _, s := range []*signer.PKCS11{a, b} {
		sig, err := signWithSigner(s, tx)
		if err != nil {
			t.Fatal(err)
		}
		signertest.Check(t, s.Address(), chain, tx, sig)
	}
	a.Close()
	sig, err := signWithSigner(b, tx)
	if err != nil {
		t.Fatalf("after the other signer closed: %v", err)
	}
	signertest.Check(t, b.Address(), chain, tx, sig)
	if err := b.Health(context.Background()); err != nil {
		t.Errorf("Health after the other signer closed = %v", err)
	}
}
