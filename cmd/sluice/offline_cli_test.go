package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/signer"
)

// TestOfflineAndRotationCLIRefusals: bad flags and files are refused with a
// message naming the flag, the file or the key, and exit 2 for usage; no
// file is written.
func TestOfflineAndRotationCLIRefusals(t *testing.T) {
	dir := t.TempDir()
	key, _ := crypto.GenerateKey()
	keyFile, _, err := signer.WriteKeystore(filepath.Join(dir, "keys"), key, "pw", signer.ChosenPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLUICE_KEYSTORE_PASSPHRASE", "pw")
	other, _ := crypto.GenerateKey()
	plan, _ := json.Marshal(client.OfflinePlan{ID: "ofp_x", ChainID: 1337, Wallet: crypto.PubkeyToAddress(other.PublicKey).Hex(),
		Items: []client.OfflineItem{{PayoutID: "po_x", Nonce: 0, UnsignedTx: "0x02", Digest: "0x00"}}})
	planFile, junk := filepath.Join(dir, "plan.json"), filepath.Join(dir, "junk.json")
	os.WriteFile(planFile, plan, 0o600)
	os.WriteFile(junk, []byte("not json"), 0o600)
	out := filepath.Join(dir, "signed.json")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"sign without --offline", []string{"sign", "--keystore", keyFile, "--in", planFile, "--out", out}, 2, "--offline"},
		{"sign without --in", []string{"sign", "--offline", "--keystore", keyFile, "--out", out}, 2, "--keystore, --in and --out are required"},
		{"sign a file that is no plan", []string{"sign", "--offline", "--keystore", keyFile, "--in", junk, "--out", out}, 1, "is not a plan file"},
		{"sign with another wallet's key", []string{"sign", "--offline", "--keystore", keyFile, "--in", planFile, "--out", out}, 1,
			"the keystore holds " + crypto.PubkeyToAddress(key.PublicKey).Hex()},
		{"export with a bad wallet", []string{"tx", "export-unsigned", "--chain", "sandbox", "--wallet", "0x12", "--out", out}, 2, `--wallet "0x12"`},
		{"export without --out", []string{"tx", "export-unsigned", "--chain", "sandbox", "--wallet", crypto.PubkeyToAddress(key.PublicKey).Hex()}, 2, "--out FILE is required"},
		{"submit a file that is no signed file", []string{"tx", "submit-signed", junk}, 1, "is not a signed file"},
		{"rotate with a bad --from", []string{"wallet", "rotate", "--chain", "sandbox", "--from", "nope", "--to", crypto.PubkeyToAddress(key.PublicKey).Hex()}, 2, `--from "nope"`},
		{"rotate without --chain", []string{"wallet", "rotate", "--from", crypto.PubkeyToAddress(key.PublicKey).Hex(), "--to", crypto.PubkeyToAddress(other.PublicKey).Hex()}, 2, "--chain is required"},
	}
	for _, tc := range tests {
		var stdout, stderr bytes.Buffer
		args := tc.args
		if args[0] != "sign" { // sign never reaches the network: it takes no API flags
			args = append(args, "--api-key", "sk_test_x", "--api-url", "http://127.0.0.1:1")
		}
		code := run(context.Background(), args, nil, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: exit %d, %q; want %d naming %q", tc.name, code, stderr.String(), tc.code, tc.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused command wrote a file")
	}
}
