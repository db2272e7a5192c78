package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/signer"
	"github.com/sluicepay/sluice/internal/signer/signertest"
)

// lightKeystore writes key to a keystore file with light scrypt (fast in
// tests; the format is the same).
func lightKeystore(t *testing.T, dir string, key *ecdsa.PrivateKey, pass string) string {
	t.Helper()
	blob, err := keystore.EncryptKey(&keystore.Key{Address: crypto.PubkeyToAddress(key.PublicKey), PrivateKey: key},
		pass, keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "key.json")
	if err := os.WriteFile(path, blob, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// selfSigned writes a certificate for 127.0.0.1 that is its own CA.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice signer"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// TestSignerServeCommand runs `sluice signer serve` in process and signs
// through it with the engine's remote signer client, as a config names it.
func TestSignerServeCommand(t *testing.T) {
	dir := t.TempDir()
	key, _ := crypto.GenerateKey()
	ks := lightKeystore(t, dir, key, "pass phrase")
	certFile, keyFile := selfSigned(t, dir)
	payee := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	limits := filepath.Join(dir, "limits.yaml")
	os.WriteFile(limits, []byte(fmt.Sprintf(`chain_ids: [1337]
allow: [%q]
assets:
  native: {per_tx: "1000", daily: "1500"}
max_fee_per_tx: "1000000000000000"
`, payee.Hex())), 0o600)
	t.Setenv("TEST_SIGNER_PASS", "pass phrase")
	t.Setenv("TEST_SIGNER_TOKEN", "a-long-enough-engine-token")

	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &lockedBuffer{}, &lockedBuffer{}
	var wg sync.WaitGroup
	var code int
	wg.Go(func() {
		code = run(ctx, []string{"signer", "serve", "--keystore", ks, "--passphrase-env", "TEST_SIGNER_PASS", "--listen", "127.0.0.1:0",
			"--tls-cert", certFile, "--tls-key", keyFile, "--token-env", "TEST_SIGNER_TOKEN", "--limits", limits}, nil, out, errOut)
	})
	defer func() {
		cancel()
		wg.Wait()
		if code != 0 {
			t.Errorf("signer serve exited %d: %s", code, errOut.String())
		}
		for _, secret := range []string{"pass phrase", "a-long-enough-engine-token"} {
			if strings.Contains(out.String()+errOut.String(), secret) {
				t.Errorf("the signer's output contains a secret: %s", errOut.String())
			}
		}
	}()
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s := out.String(); strings.Contains(s, "https://") {
			url = strings.Fields(s[strings.Index(s, "https://"):])[0]
		}
	}
	if url == "" {
		t.Fatalf("signer serve did not start: %s %s", out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), crypto.PubkeyToAddress(key.PublicKey).Hex()) {
		t.Errorf("the banner does not name the address: %s", out.String())
	}

	t.Setenv("TEST_ENGINE_TOKEN", "a-long-enough-engine-token")
	cfg := config.Signer{Type: "remote", SignerBackends: config.SignerBackends{URL: url, TokenEnv: "TEST_ENGINE_TOKEN", CAFile: certFile}}
	sg, err := openSignerBackend(context.Background(), cfg, "chains[0].hot_wallets[0].signer", nil)
	if err != nil {
		t.Fatal(err)
	}
	if sg.Address() != crypto.PubkeyToAddress(key.PublicKey) {
		t.Fatalf("remote signer address %s", sg.Address().Hex())
	}
	chainID := big.NewInt(1337)
	sign := func(nonce uint64, value int64) (*types.Transaction, []byte, error) {
		tx := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasFeeCap: big.NewInt(1), Gas: 21000, To: &payee, Value: big.NewInt(value)})
		unsigned, _ := tx.MarshalBinary()
		sig, err := signer.SignTransaction(context.Background(), sg, chainID, unsigned, types.LatestSignerForChainID(chainID).Hash(tx))
		return tx, sig, err
	}
	tx, sig, err := sign(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	signertest.Check(t, sg.Address(), chainID, tx, sig)
	if _, _, err := sign(1, 501); !errors.Is(err, signer.ErrRefused) || !strings.Contains(err.Error(), "daily cap 1500") {
		t.Errorf("over the daily cap: err = %v", err)
	}
	// The same server in the eth dialect (eth_signTransaction), as Web3Signer or clef would be reached.
	ethCfg := cfg
	ethCfg.Dialect = "eth"
	if sg, err = openSignerBackend(context.Background(), ethCfg, "chains[0].hot_wallets[0].signer", nil); err != nil {
		t.Fatal(err)
	}
	tx, sig, err = sign(2, 500)
	if err != nil {
		t.Fatalf("eth dialect: %v", err)
	}
	signertest.Check(t, sg.Address(), chainID, tx, sig)

	t.Setenv("TEST_ENGINE_TOKEN", "another-token-of-good-length")
	if _, err := openSignerBackend(context.Background(), cfg, "chains[0].hot_wallets[0].signer", nil); err == nil ||
		!strings.Contains(err.Error(), "unauthenticated") || strings.Contains(err.Error(), "another-token") {
		t.Errorf("wrong token: err = %v", err)
	}

	// A failover group whose members hold different keys is refused, naming the member.
	t.Setenv("TEST_ENGINE_TOKEN", "a-long-enough-engine-token")
	other, _ := crypto.GenerateKey()
	t.Setenv("TEST_OTHER_PASS", "x")
	otherKS := lightKeystore(t, t.TempDir(), other, "x")
	group := config.Signer{Type: "failover", SignerBackends: config.SignerBackends{Signers: []config.Signer{cfg,
		{Type: "keystore", Keystore: otherKS, PassphraseEnv: "TEST_OTHER_PASS"}}}}
	if _, err := openSignerBackend(context.Background(), group, "chains[0].hot_wallets[0].signer", nil); err == nil ||
		!strings.Contains(err.Error(), "chains[0].hot_wallets[0].signer.signers[1]: holds the key of") {
		t.Errorf("mixed keys: err = %v", err)
	}

	// What the limits counted is kept next to the keystore by default (a
	// restart keeps the daily cap); a state file it cannot make stops the
	// start, naming the flag.
	state, err := os.ReadFile(ks + ".limits-state")
	if err != nil || strings.Count(string(state), "\n") != 2 || !strings.Contains(string(state), `"amount":"1000"`) {
		t.Errorf("the limits' state next to the keystore: %q, %v; want the two transfers signed", state, err)
	}
	errOut2 := &lockedBuffer{}
	if code := run(context.Background(), []string{"signer", "serve", "--keystore", ks, "--passphrase-env", "TEST_SIGNER_PASS",
		"--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile, "--token-env", "TEST_SIGNER_TOKEN", "--limits", limits,
		"--limits-state", filepath.Join(dir, "missing", "state")}, nil, &lockedBuffer{}, errOut2); code == 0 ||
		!strings.Contains(errOut2.String(), "--limits-state") {
		t.Errorf("an unwritable limits state: exit %d, %s; want a failure naming --limits-state", code, errOut2.String())
	}
}
