package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicepay/sluice/internal/httpapi"
	"github.com/sluicepay/sluice/internal/signer"
)

func TestRunExitCodesAndMessages(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("chains: []\napi_keys: []\n"), 0o600)
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantOut  string
	}{
		{"no command", nil, "", 2, "Usage:"},
		{"unknown command", []string{"fly"}, "", 2, `unknown command "fly"`},
		{"serve without config", []string{"serve"}, "", 2, "serve needs --config FILE"},
		{"serve with a missing file", []string{"serve", "--config", filepath.Join(dir, "nope.yaml")}, "", 1, "nope.yaml"},
		{"serve with a bad config names the field", []string{"serve", "--config", bad}, "", 1, "config: chains: at least one chain"},
		{"sandbox bad flag", []string{"sandbox", "--block-time", "soon"}, "", 2, "block-time"},
		{"apikey hash", []string{"apikey", "hash"}, "sk_test_abc\n", 0, fmt.Sprintf("%x", httpapi.HashAPIKey("sk_test_abc"))},
		{"apikey hash empty", []string{"apikey", "hash"}, "", 2, "no key on stdin"},
		{"version", []string{"version"}, "", 0, "sluice dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code := run(context.Background(), tt.args, strings.NewReader(tt.stdin), &out, &out)
			if code != tt.wantCode || !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("run(%v) = %d, output:\n%s\nwant %d and %q", tt.args, code, out.String(), tt.wantCode, tt.wantOut)
			}
		})
	}
}

func TestDevConfigParsesAsWritten(t *testing.T) {
	// writeDevConfig re-parses what it writes; a template drift fails here.
	f := &devFlags{dataDir: t.TempDir(), http: "127.0.0.1:0", confirmations: 2, logLevel: "info"}
	keyPath, ks, err := signer.CreateKeystore(t.TempDir(), "pass", signer.ChosenPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	_, ks2, err := signer.CreateKeystore(t.TempDir(), "pass", signer.ChosenPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	d := &devData{dir: f.dataDir, wallet: ks, keystorePath: keyPath, passphraseFile: "/p", apiKey: "sk_test_x",
		extra: []devWallet{{ks: ks2, path: "/second"}}}
	cfg := devConfigFor(f, d, 1337, "http://127.0.0.1:8545", "0x00000000000000000000000000000000000000Bb")
	path := filepath.Join(f.dataDir, "sluice.yaml")
	if err := writeDevConfig(path, cfg); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	for _, want := range []string{"passphrase_file: /p", "keystore: /second", "keystore: " + keyPath, "sha256: " + fmt.Sprintf("%x", httpapi.HashAPIKey("sk_test_x")), "confirmations: 2", "native_decimals: 18"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("sluice.yaml lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "sk_test_x") {
		t.Error("sluice.yaml holds the API key itself")
	}
}
