package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
)

// TestKeyCommands: keys made by sluice open in geth's keystore code, files
// geth writes import, hex keys come from stdin only, and list reads the
// addresses without a passphrase.
func TestKeyCommands(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SLUICE_KEYSTORE_PASSPHRASE", "sluice pass")
	key := func(args []string, stdin string) keyEntry {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append(args, "--json"), strings.NewReader(stdin), &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
		var e keyEntry
		if err := json.Unmarshal(out.Bytes(), &e); err != nil {
			t.Fatalf("%v: %q: %v", args, out.String(), err)
		}
		if strings.Contains(out.String()+errOut.String(), "sluice pass") {
			t.Errorf("%v printed the passphrase", args)
		}
		return e
	}

	made := key([]string{"key", "new", "--dir", dir}, "")
	blob, _ := os.ReadFile(made.Path)
	if k, err := keystore.DecryptKey(blob, "sluice pass"); err != nil || k.Address.Hex() != made.Address {
		t.Fatalf("geth cannot open the new key: %v", err)
	}

	// A file geth wrote, with its own passphrase.
	gethDir := t.TempDir()
	acct, err := keystore.NewKeyStore(gethDir, keystore.LightScryptN, keystore.LightScryptP).NewAccount("geth pass")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLUICE_IMPORT_PASSPHRASE", "geth pass")
	imported := key([]string{"key", "import", "--dir", dir, "--keystore", acct.URL.Path}, "")
	if imported.Address != acct.Address.Hex() {
		t.Errorf("imported %s, want %s", imported.Address, acct.Address.Hex())
	}

	// A hex key from stdin.
	raw, _ := crypto.GenerateKey()
	fromHex := key([]string{"key", "import", "--dir", dir, "--hex-stdin"}, "0x"+hex.EncodeToString(crypto.FromECDSA(raw))+"\n")
	if fromHex.Address != crypto.PubkeyToAddress(raw.PublicKey).Hex() {
		t.Errorf("hex import gave %s", fromHex.Address)
	}
	var errOut bytes.Buffer
	if code := run(context.Background(), []string{"key", "import", "--dir", dir, "--hex-stdin"}, strings.NewReader("not a key\n"), &bytes.Buffer{}, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "does not hold a hex secp256k1 private key") || strings.Contains(errOut.String(), "not a key") {
		t.Errorf("bad hex: exit %d: %s", code, errOut.String())
	}
	if code := run(context.Background(), []string{"key", "import", "--dir", dir, "--hex", "abcd"}, nil, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
		t.Errorf("a key in a flag: exit %d, want 2 (no such flag)", code)
	}

	// Export to geth: a new file with another passphrase, the same key.
	t.Setenv("SLUICE_EXPORT_PASSPHRASE", "export pass")
	out := t.TempDir()
	exported := key([]string{"key", "export", "--keystore", fromHex.Path, "--out", out}, "")
	blob, _ = os.ReadFile(exported.Path)
	k, err := keystore.DecryptKey(blob, "export pass")
	if err != nil || !k.PrivateKey.Equal(raw) {
		t.Fatalf("geth cannot open the exported key with its new passphrase: %v", err)
	}
	if st, _ := os.Stat(exported.Path); st.Mode().Perm() != 0o600 {
		t.Errorf("exported file mode %v", st.Mode())
	}

	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a key"), 0o600)
	var listOut bytes.Buffer
	if code := run(context.Background(), []string{"key", "list", "--dir", dir}, nil, &listOut, &errOut); code != 0 {
		t.Fatalf("list: %s", errOut.String())
	}
	for _, e := range []keyEntry{made, imported, fromHex} {
		if !strings.Contains(listOut.String(), e.Address+"  "+e.Path) {
			t.Errorf("list lacks %s:\n%s", e.Address, listOut.String())
		}
	}
	if n := strings.Count(listOut.String(), "\n"); n != 3 {
		t.Errorf("list has %d lines, want 3:\n%s", n, listOut.String())
	}
}
