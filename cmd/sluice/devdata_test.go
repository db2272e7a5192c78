package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicepay/sluice/internal/signer"
)

// scryptN reads the scrypt cost a keystore file was written with.
func scryptN(t *testing.T, path string) int {
	t.Helper()
	blob, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Crypto struct {
			KDFParams struct {
				N int `json:"n"`
			} `json:"kdfparams"`
		} `json:"crypto"`
	}
	if err := json.Unmarshal(blob, &f); err != nil {
		t.Fatal(err)
	}
	return f.Crypto.KDFParams.N
}

// The sandbox stretches its keys' passphrase only when a person may have
// chosen it: the one it generates (256 random bits, kept beside the keys)
// gets scrypt's light cost, so a restarted engine opens its keys in
// milliseconds; one from $SLUICE_KEYSTORE_PASSPHRASE, or a file a person
// edited, gets the standard cost. Either opens again with its passphrase.
func TestSandboxKeysScryptCost(t *testing.T) {
	tests := []struct {
		name  string
		env   string // $SLUICE_KEYSTORE_PASSPHRASE
		file  string // the passphrase file's content before the first run ("": none)
		wantN int
	}{
		{"generated", "", "", 1 << 12},
		{"from the environment", "correct horse battery staple", "", 1 << 18},
		{"a file a person wrote", "", "hunter2\n", 1 << 18},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(passphraseEnv, tc.env)
			dir := t.TempDir()
			if tc.file != "" {
				if err := os.MkdirAll(filepath.Join(dir, "keystore"), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "keystore", "passphrase"), []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			d, err := openDevData(dir, "devchain.json", 2, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range d.wallets() {
				if n := scryptN(t, w.path); n != tc.wantN {
					t.Errorf("%s: scrypt N = %d, want %d", w.path, n, tc.wantN)
				}
			}
			pass, err := d.passphrase()
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range d.wallets() {
				ks, err := signer.OpenKeystore(w.path, pass)
				if err != nil || ks.Address() != w.ks.Address() {
					t.Errorf("reopen %s: %v", w.path, err)
				}
			}
		})
	}
}
