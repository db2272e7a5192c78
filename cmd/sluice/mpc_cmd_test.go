package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/payout"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/signer"
)

// TestMPCKeygenRefuses: bad flags, a missing passphrase and existing
// shares are refused before the (slow) keygen starts. The keygen itself
// is tested in internal/signer.
func TestMPCKeygenRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "share-2.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  bool
		args []string
		code int
		want string
	}{
		{"no subcommand", true, []string{"mpc"}, 2, "want keygen"},
		{"no out", true, []string{"mpc", "keygen"}, 2, "--out DIR is required"},
		{"threshold 1", true, []string{"mpc", "keygen", "--out", dir, "--threshold", "1"}, 2, "want 2 <= threshold"},
		{"threshold above parties", true, []string{"mpc", "keygen", "--out", dir, "--threshold", "4"}, 2, "want 2 <= threshold"},
		{"no passphrase", false, []string{"mpc", "keygen", "--out", dir}, 1, "$SLUICE_MPC_PASSPHRASE is not set"},
		{"share exists", true, []string{"mpc", "keygen", "--out", dir}, 1, "share-2.json exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env {
				t.Setenv("SLUICE_MPC_PASSPHRASE", "pass")
			} else {
				t.Setenv("SLUICE_MPC_PASSPHRASE", "")
			}
			var out, errOut bytes.Buffer
			code := run(context.Background(), tc.args, strings.NewReader(""), &out, &errOut)
			if code != tc.code || !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errOut.String(), tc.code, tc.want)
			}
		})
	}
}

// TestMPCKeygenWrites: the command writes share-1..3.json (mode 0600,
// never over existing ones), prints the address, and the files open with
// the passphrase from the environment and sign for that address. The
// keygen is replaced by the fixture shares (a real one takes minutes).
func TestMPCKeygenWrites(t *testing.T) {
	var fixture []*signer.MPCLocalParty
	for i := 1; i <= 3; i++ {
		p, err := signer.OpenMPCShare(fmt.Sprintf("../../internal/signer/testdata/mpc/share-%d.json", i), "mpc-test-passphrase")
		if err != nil {
			t.Fatal(err)
		}
		fixture = append(fixture, p)
	}
	orig := mpcKeygen
	t.Cleanup(func() { mpcKeygen = orig })
	mpcKeygen = func(_ context.Context, o signer.MPCKeygenOptions) ([]*signer.MPCLocalParty, error) {
		if o.Parties != 3 || o.Threshold != 2 {
			t.Errorf("keygen options %+v, want 2 of 3", o)
		}
		return fixture, nil
	}
	t.Setenv("SLUICE_MPC_PASSPHRASE", "new pass")
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"mpc", "keygen", "--out", dir, "--json"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var res mpcKeygenResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%q: %v", out.String(), err)
	}
	if res.Address != fixture[0].Group().Address.Hex() || len(res.Shares) != 3 || strings.Contains(out.String()+errOut.String(), "new pass") {
		t.Fatalf("result %+v (stderr %q)", res, errOut.String())
	}
	for i, path := range res.Shares {
		if path != filepath.Join(dir, fmt.Sprintf("share-%d.json", i+1)) {
			t.Errorf("share %d at %s", i+1, path)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", path, fi, err)
		}
	}
	m, err := signer.OpenMPC(res.Shares[1:], "new pass")
	if err != nil || m.Address().Hex() != res.Address {
		t.Fatalf("OpenMPC(shares 2, 3) = %v, %v", m, err)
	}
	if code := run(context.Background(), []string{"mpc", "keygen", "--out", dir}, strings.NewReader(""), &out, &errOut); code != 1 {
		t.Fatalf("second keygen into %s: exit %d, want 1 (shares exist)", dir, code)
	}
}

// TestOpenSignerMPC: a config signer of type mpc opens the shares and
// signs for the group's address; one share is refused.
func TestOpenSignerMPC(t *testing.T) {
	shares := []string{"../../internal/signer/testdata/mpc/share-1.json", "../../internal/signer/testdata/mpc/share-3.json"}
	t.Setenv("SLUICE_MPC_PASSPHRASE", "mpc-test-passphrase")
	sg, err := openSignerBackend(context.Background(), config.Signer{Type: "mpc", PassphraseEnv: "SLUICE_MPC_PASSPHRASE",
		SignerBackends: config.SignerBackends{Shares: shares}}, "w.signer", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sg.(*signer.MPC); !ok {
		t.Fatalf("opened %T, want *signer.MPC", sg)
	}
	digest := crypto.Keccak256Hash([]byte("config"))
	sig, err := sg.SignDigest(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := crypto.SigToPub(digest[:], sig)
	if err != nil || crypto.PubkeyToAddress(*pub) != sg.Address() {
		t.Fatalf("signature does not recover to %s (%v)", sg.Address().Hex(), err)
	}
	_, err = openSignerBackend(context.Background(), config.Signer{Type: "mpc", PassphraseEnv: "SLUICE_MPC_PASSPHRASE",
		SignerBackends: config.SignerBackends{Shares: shares[:1]}}, "w.signer", nil)
	if err == nil || !strings.Contains(err.Error(), "w.signer: ") || !strings.Contains(err.Error(), "needs 2 of 3") {
		t.Fatalf("one share: %v, want a refusal naming the field", err)
	}
}

// mpcPKI writes a CA and certificates (cert, key PEM files) into dir:
// ca.pem, and for each name NAME.pem and NAME-key.pem, valid on
// 127.0.0.1 for server and client authentication.
func mpcPKI(t *testing.T, dir string, names ...string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", caDER)
	for i, name := range names {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
		writePEM(t, filepath.Join(dir, name+"-key.pem"), "EC PRIVATE KEY", keyDER)
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMPCPartyRefuses: missing flags, a missing passphrase and a
// certificate naming another share are refused before serving.
func TestMPCPartyRefuses(t *testing.T) {
	dir := t.TempDir()
	mpcPKI(t, dir, signer.MPCPartyCommonName(2))
	share := "../../internal/signer/testdata/mpc/share-1.json"
	tlsArgs := []string{"--tls-cert", filepath.Join(dir, "sluice-mpc-party-2.pem"), "--tls-key", filepath.Join(dir, "sluice-mpc-party-2-key.pem")}
	for _, tc := range []struct {
		name string
		pass string
		args []string
		code int
		want string
	}{
		{"no share", "mpc-test-passphrase", []string{"mpc", "party"}, 2, "needs --share"},
		{"no client CA", "mpc-test-passphrase", append([]string{"mpc", "party", "--share", share}, tlsArgs...), 2, "needs --client-ca"},
		{"no passphrase", "", append([]string{"mpc", "party", "--share", share, "--client-ca", filepath.Join(dir, "ca.pem")}, tlsArgs...), 1,
			"$SLUICE_MPC_PASSPHRASE is not set"},
		{"another share's certificate", "mpc-test-passphrase", append([]string{"mpc", "party", "--share", share, "--client-ca",
			filepath.Join(dir, "ca.pem"), "--listen", "127.0.0.1:0"}, tlsArgs...), 1, `want "sluice-mpc-party-1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SLUICE_MPC_PASSPHRASE", tc.pass)
			var out, errOut bytes.Buffer
			code := run(context.Background(), tc.args, strings.NewReader(""), &out, &errOut)
			if code != tc.code || !strings.Contains(errOut.String(), tc.want) || strings.Contains(errOut.String(), "mpc-test-passphrase") {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errOut.String(), tc.code, tc.want)
			}
		})
	}
}

// TestMPCPartyProcesses: three `sluice mpc party` processes hold the
// fixture shares; the engine's signer (config type mpc with parties)
// signs a transaction whose sender is the group address, still signs
// with one party killed, and with two killed fails as a signer outage
// naming them.
func TestMPCPartyProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	mpcPKI(t, dir, signer.MPCPartyCommonName(1), signer.MPCPartyCommonName(2), signer.MPCPartyCommonName(3), "sluice-engine")
	t.Setenv("SLUICE_MPC_PASSPHRASE", "mpc-test-passphrase")
	cfg := config.Signer{Type: "mpc", SignerBackends: config.SignerBackends{TLS: config.MPCTLS{Cert: filepath.Join(dir, "sluice-engine.pem"),
		Key: filepath.Join(dir, "sluice-engine-key.pem"), CA: filepath.Join(dir, "ca.pem")}}}
	var procs []*proc
	killed := map[int]bool{}
	defer func() {
		for i, p := range procs {
			if !killed[i] { // a killed proc has been waited for
				p.stop()
			}
		}
	}()
	for i := 1; i <= 3; i++ {
		name := signer.MPCPartyCommonName(i)
		p, line := startProc(t, bin, "Sluice MPC party", "mpc", "party", "--share", fmt.Sprintf("../../internal/signer/testdata/mpc/share-%d.json", i),
			"--listen", "127.0.0.1:0", "--tls-cert", filepath.Join(dir, name+".pem"), "--tls-key", filepath.Join(dir, name+"-key.pem"),
			"--client-ca", filepath.Join(dir, "ca.pem"), "--engine-cn", "sluice-engine")
		procs = append(procs, p)
		_, url, ok := strings.Cut(line, " at ")
		if !ok || !strings.HasPrefix(line, fmt.Sprintf("Sluice MPC party %d of ", i)) {
			t.Fatalf("ready line %q", line)
		}
		cfg.Parties = append(cfg.Parties, config.MPCParty{URL: url, Index: i})
	}
	sg, err := openSignerBackend(context.Background(), cfg, "w.signer", nil)
	if err != nil {
		t.Fatal(err)
	}
	group := sg.Address()
	if want, _ := signer.OpenMPCShare("../../internal/signer/testdata/mpc/share-1.json", "mpc-test-passphrase"); group != want.Group().Address {
		t.Fatalf("address %s, want the fixture group's %s", group.Hex(), want.Group().Address.Hex())
	}
	chainID := big.NewInt(1337)
	sign := func(nonce uint64) error {
		to := group
		tx := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9),
			Gas: 21000, To: &to, Value: big.NewInt(1)})
		unsigned, _ := tx.MarshalBinary()
		ls := types.LatestSignerForChainID(chainID)
		sig, err := signer.SignTransaction(context.Background(), sg, chainID, unsigned, ls.Hash(tx))
		if err != nil {
			return err
		}
		signed, err := tx.WithSignature(ls, sig)
		if err != nil {
			return err
		}
		if from, err := types.Sender(ls, signed); err != nil || from != group {
			return fmt.Errorf("sender %s (%v), want %s", from.Hex(), err, group.Hex())
		}
		return nil
	}
	if err := sign(0); err != nil {
		t.Fatal(err)
	}
	procs[1].kill()
	killed[1] = true
	if err := sign(1); err != nil {
		t.Fatalf("party 2 killed: %v", err)
	}
	procs[0].kill()
	killed[0] = true
	err = sign(2)
	if !errors.Is(err, signer.ErrMPCQuorum) || !errors.Is(err, payout.ErrSignerUnavailable) || !strings.Contains(err.Error(), "party 1: ") ||
		!strings.Contains(err.Error(), "party 2: ") || !strings.Contains(err.Error(), "1 of 3 healthy, 2 needed") {
		t.Fatalf("parties 1 and 2 killed: %v", err)
	}
}

// TestMPCPreParamsPool: `sluice mpc preparams` adds encrypted
// pre-parameters to a pool (the search replaced by the fixtures'), and
// `sluice mpc keygen --preparams` draws one per party from it, deletes
// them, and refuses a pool too small.
func TestMPCPreParamsPool(t *testing.T) {
	fixtures, err := signer.MPCPreParamsPool("../../internal/signer/testdata/mpc-preparams")
	if err != nil || len(fixtures) != 3 {
		t.Fatalf("fixture pool: %v %v", fixtures, err)
	}
	fixture, err := signer.OpenMPCPreParams(fixtures[0], "mpc-test-passphrase")
	if err != nil {
		t.Fatal(err)
	}
	origGen, origKeygen := mpcGeneratePreParams, mpcKeygen
	t.Cleanup(func() { mpcGeneratePreParams, mpcKeygen = origGen, origKeygen })
	mpcGeneratePreParams = func(context.Context, time.Duration) (*signer.MPCPreParams, error) { return fixture, nil }
	t.Setenv("SLUICE_MPC_PASSPHRASE", "mpc-test-passphrase")
	pool := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"mpc", "preparams", "--out", pool, "--count", "2"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("preparams: exit %d: %s", code, errOut.String())
	}
	if paths, _ := signer.MPCPreParamsPool(pool); len(paths) != 2 || !strings.Contains(out.String(), "2 of 2") {
		t.Fatalf("pool after preparams --count 2: %v\n%s", paths, out.String())
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"mpc", "keygen", "--out", t.TempDir(), "--preparams", pool}, strings.NewReader(""), &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "holds 2 pre-parameters, 3 needed") {
		t.Fatalf("keygen from a pool of 2: exit %d: %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"mpc", "preparams", "--out", pool, "--count", "1"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("preparams: exit %d: %s", code, errOut.String())
	}
	var shares []*signer.MPCLocalParty
	for i := 1; i <= 3; i++ {
		p, err := signer.OpenMPCShare(fmt.Sprintf("../../internal/signer/testdata/mpc/share-%d.json", i), "mpc-test-passphrase")
		if err != nil {
			t.Fatal(err)
		}
		shares = append(shares, p)
	}
	mpcKeygen = func(_ context.Context, o signer.MPCKeygenOptions) ([]*signer.MPCLocalParty, error) {
		if len(o.PreParams) != 3 {
			t.Errorf("keygen given %d pre-parameters, want 3 from the pool", len(o.PreParams))
		}
		return shares, nil
	}
	dir := t.TempDir()
	if code := run(context.Background(), []string{"mpc", "keygen", "--out", dir, "--preparams", pool}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("keygen from the pool: exit %d: %s", code, errOut.String())
	}
	if paths, _ := signer.MPCPreParamsPool(pool); len(paths) != 0 {
		t.Fatalf("the used pre-parameters are still in the pool: %v", paths)
	}
	if _, err := os.Stat(filepath.Join(dir, "share-3.json")); err != nil {
		t.Fatal(err)
	}
}
