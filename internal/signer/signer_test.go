package signer

import (
	"context"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestKeystoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path, ks, err := CreateKeystore(dir, "correct horse", ChosenPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("keystore file mode = %v, %v; want 0600", st.Mode(), err)
	}
	blob, _ := os.ReadFile(path)
	if !strings.Contains(string(blob), strings.ToLower(ks.Address().Hex()[2:])) {
		t.Error("keystore file does not name its address")
	}
	// go-ethereum's own decoder reads what we wrote: files are interchangeable with geth.
	k, err := keystore.DecryptKey(blob, "correct horse")
	if err != nil || k.Address != ks.Address() {
		t.Fatalf("geth cannot read our keystore: %v", err)
	}

	reopened, err := OpenKeystore(path, "correct horse")
	if err != nil || reopened.Address() != ks.Address() {
		t.Fatalf("reopen: %v", err)
	}
	_, err = OpenKeystore(path, "wrong")
	if err == nil || !strings.Contains(err.Error(), "wrong passphrase") || strings.Contains(err.Error(), "wrong\"") {
		t.Errorf("wrong passphrase err = %v", err)
	}

	digest := crypto.Keccak256Hash([]byte("x"))
	sig, err := reopened.SignDigest(context.Background(), digest)
	if err != nil || len(sig) != 65 || sig[64] > 1 {
		t.Fatalf("sig = %x, %v", sig, err)
	}
	pub, err := crypto.SigToPub(digest[:], sig)
	if err != nil || crypto.PubkeyToAddress(*pub) != ks.Address() {
		t.Errorf("signature does not recover to the wallet")
	}
	// low S: s <= n/2
	if !crypto.ValidateSignatureValues(sig[64], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64]), true) {
		t.Error("signature is not low-S")
	}
}

func TestInstrumentedCounts(t *testing.T) {
	key, _ := crypto.GenerateKey()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	s := Instrumented{Signer: &Keystore{key: key, addr: crypto.PubkeyToAddress(key.PublicKey)}, Backend: "keystore", Metrics: m}
	for range 3 {
		if _, err := s.SignDigest(context.Background(), [32]byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.ToFloat64(m.signatures.WithLabelValues("keystore", "ok")); got != 3 {
		t.Errorf("signatures counted = %v, want 3", got)
	}
}
