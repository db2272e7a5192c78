package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

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
