package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/signer"
)

// apikey runs `sluice apikey ARGS` against e's API with its flags added.
func (e *cliEnv) apikey(args ...string) (string, error) {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	err := runAPIKey(context.Background(), append(args, e.base...), nil, &stdout, &stderr)
	return stdout.String(), err
}

// as returns e calling with another API key.
func (e *cliEnv) as(key string) *cliEnv {
	base := append([]string(nil), e.base...)
	for i := range base {
		if base[i] == "--api-key" {
			base[i+1] = key
		}
	}
	return &cliEnv{t: e.t, db: e.db, base: base}
}

func TestAPIKeyCommands(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	out, err := e.apikey("create", "--name", "reporting", "--scope", "payouts:read", "--scope", "webhooks:manage")
	if err != nil {
		t.Fatal(err)
	}
	secret := regexp.MustCompile(`sk_live_[0-9a-f]{64}`).FindString(out)
	if secret == "" || !strings.Contains(out, "shown only now") || !strings.Contains(out, "payouts:read, webhooks:manage") {
		t.Fatalf("create printed:\n%s", out)
	}
	out, err = e.apikey("create", "--name", "payroll", "--scope", "payouts:write", "--label", "team=payroll", "--label", "region=eu")
	if err != nil || !strings.Contains(out, "labels region=eu,team=payroll") {
		t.Fatalf("create --label: %v\n%s", err, out)
	}
	out, err = e.apikey("create", "--name", "signer", "--scope", "admin", "--require-signing", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var signer struct {
		ID, Secret     string
		RequireSigning bool `json:"require_signing"`
	}
	if err := json.Unmarshal([]byte(out), &signer); err != nil || !signer.RequireSigning || signer.Secret == "" {
		t.Fatalf("create --json printed %s (%v)", out, err)
	}

	out, err = e.apikey("list")
	if !regexp.MustCompile(`payroll .*region=eu,team=payroll`).MatchString(out) {
		t.Errorf("list does not show the labels:\n%s", out)
	}
	if err != nil || !strings.Contains(out, "reporting") || !strings.Contains(out, signer.ID) || strings.Contains(out, secret) || strings.Contains(out, signer.Secret) {
		t.Errorf("list (%v):\n%s", err, out)
	}
	// The signing admin key lists only when it signs.
	if _, err := e.as(signer.Secret).apikey("list"); err == nil || !strings.Contains(err.Error(), "signature_missing") {
		t.Errorf("list with a signing key, unsigned: %v, want signature_missing", err)
	}
	if out, err := e.as(signer.Secret).apikey("list", "--sign", "--json"); err != nil || !strings.Contains(out, `"data"`) {
		t.Errorf("list --sign: %v\n%s", err, out)
	}

	out, err = e.apikey("revoke", signer.ID)
	if err != nil || !strings.Contains(out, "Revoked API key "+signer.ID) {
		t.Errorf("revoke: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "--scope", "admin"}, "needs --name"},
		{[]string{"create", "--name", "x"}, "at least one --scope"},
		{[]string{"create", "--name", "x", "--scope", "payouts:delete"}, `invalid value "payouts:delete" for flag -scope`},
		{[]string{"create", "--name", "x", "--scope", "admin", "--api-version", "1999-01-01"}, `--api-version "1999-01-01"`},
		{[]string{"list", "--limit", "0"}, "--limit 0"},
		{[]string{"list", "--starting-after", "po_1"}, `--starting-after "po_1"`},
		{[]string{"revoke"}, "needs the key's id"},
		{[]string{"revoke", "key_nope"}, `API key "key_nope"`},
		{[]string{"rotate"}, `unknown subcommand "rotate"`},
		{[]string{"create", "--name", "x", "--scope", "admin", "--label", "team"}, `invalid value "team" for flag -label: "team" is not NAME=VALUE`},
		{[]string{"create", "--name", "x", "--scope", "admin", "--label", "Team=x"}, `label name "Team"`},
		{[]string{"create", "--name", "x", "--scope", "admin", "--label", "a=1", "--label", "a=2"}, "label a is given twice"},
	} {
		if _, err := e.apikey(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("sluice apikey %s: %v, want it to name %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// The config `sluice devchain` writes makes the API's keys sk_test_ and
// lifts the rate limit for load tests.
func TestDevConfigIsTestMode(t *testing.T) {
	t.Parallel()
	f := &devFlags{dataDir: t.TempDir(), http: "127.0.0.1:0", confirmations: 2, logLevel: "info"}
	keyPath, ks, err := signer.CreateKeystore(t.TempDir(), "pass", signer.ChosenPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	d := &devData{dir: f.dataDir, wallet: ks, keystorePath: keyPath, passphraseFile: "/p", apiKey: "sk_test_x"}
	path := filepath.Join(f.dataDir, "sluice.yaml")
	if err := writeDevConfig(path, devConfigFor(f, d, 1337, "http://127.0.0.1:8545", "0x00000000000000000000000000000000000000Bb")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b, nil)
	if err != nil || !cfg.TestMode || cfg.RateLimit != devRateLimit {
		t.Fatalf("the devchain config parses to %+v (%v), want test_mode and the dev rate limit:\n%s", cfg, err, b)
	}
}
