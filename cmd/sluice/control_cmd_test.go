package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/httpapi"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

// controlEnv is an API on a SQLite file the test can also open raw, to
// tamper with the audit log as someone with database access would.
type controlEnv struct {
	t      *testing.T
	dbPath string
	config string // a config file naming the database
	base   []string
}

func newControlEnv(t *testing.T) *controlEnv {
	t.Helper()
	return newControlEnvWith(t, nil)
}

// newControlEnvWith is newControlEnv with the API's config changed by mod.
func newControlEnvWith(t *testing.T, mod func(*httpapi.Config)) *controlEnv {
	t.Helper()
	dir := t.TempDir()
	e := &controlEnv{t: t, dbPath: filepath.Join(dir, "sluice.db")}
	db, err := store.Open(context.Background(), "sqlite:"+e.dbPath, store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	cfg := httpapi.Config{
		Store: db, Logger: slog.New(slog.DiscardHandler),
		APIKeys: []httpapi.APIKey{{ID: "key_1", Hash: httpapi.HashAPIKey(cliKey)}},
		Catalog: &payout.Catalog{Chains: map[string]payout.Chain{"sandbox": {
			Name: "sandbox", ChainID: 1337, Confirmations: 1, HotWallet: common.HexToAddress("0xbb"),
			Assets: map[string]payout.Asset{"ETH": {Symbol: "ETH", Decimals: 18}},
		}}},
	}
	if mod != nil {
		mod(&cfg)
	}
	api, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	e.base = []string{"--api-url", srv.URL, "--api-key", cliKey}
	e.config = filepath.Join(dir, "sluice.yaml")
	y := fmt.Sprintf("database: \"sqlite:%s\"\nchains:\n  - name: sandbox\n    chain_id: 1337\n    upstreams:\n      - url: \"http://127.0.0.1:1\"\n"+
		"    hot_wallets:\n      - address: %q\n        signer: {type: keystore, keystore: %q, passphrase_env: SLUICE_NONE}\n"+
		"api_keys:\n  - {name: t, sha256: %q}\n", e.dbPath, common.HexToAddress("0xbb").Hex(), filepath.Join(dir, "none.json"), strings.Repeat("ab", 32))
	if err := os.WriteFile(e.config, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// sluice runs the binary's run with args (API flags added where asked)
// and returns its exit code and output.
func (e *controlEnv) sluice(withAPI bool, args ...string) (int, string, string) {
	e.t.Helper()
	if withAPI {
		args = append(args, e.base...)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, nil, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func (e *controlEnv) tamper(queries ...string) {
	e.t.Helper()
	db, err := sql.Open("sqlite", e.dbPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	for _, q := range queries {
		if _, err := db.Exec(q); err != nil {
			e.t.Fatalf("tamper %q: %v", q, err)
		}
	}
}

func TestPauseCommands(t *testing.T) {
	t.Parallel()
	e := newControlEnv(t)
	code, out, errOut := e.sluice(true, "pause", "--chain", "sandbox", "--asset", "ETH", "--reason", "token incident")
	id := regexp.MustCompile(`pse_[0-9A-Za-z]+`).FindString(out)
	if code != 0 || id == "" || !strings.Contains(out, "ETH on sandbox") {
		t.Fatalf("pause: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ = e.sluice(true, "pause", "list"); code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "token incident") {
		t.Fatalf("pause list: exit %d\n%s", code, out)
	}
	if code, _, errOut = e.sluice(true, "pause", "--chain", "sandbox"); code != 2 || !strings.Contains(errOut, "--reason") {
		t.Errorf("pause without --reason: exit %d %s, want 2 naming --reason", code, errOut)
	}
	if code, _, errOut = e.sluice(true, "pause", "--chain", "moon", "--reason", "x"); code != 1 || !strings.Contains(errOut, "unknown_chain") {
		t.Errorf("pause of an unknown chain: exit %d %s, want 1 unknown_chain", code, errOut)
	}
	if code, out, _ = e.sluice(true, "pause", "--wallet", common.HexToAddress("0xbb").Hex(), "--reason", "key exposed", "--cancel-in-flight"); code != 0 ||
		!strings.Contains(out, "Cancels asked of 0 payout(s)") {
		t.Errorf("pause --cancel-in-flight: exit %d\n%s", code, out)
	} else if code, _, errOut = e.sluice(true, "resume", regexp.MustCompile(`pse_[0-9A-Za-z]+`).FindString(out)); code != 0 {
		t.Errorf("resume the wallet pause: exit %d %s", code, errOut)
	}
	if code, _, errOut = e.sluice(false, "pause", "--reason", "x", "--cancel-in-flight", "--config", e.config); code != 2 || !strings.Contains(errOut, "through the API only") {
		t.Errorf("pause --cancel-in-flight --config: exit %d %s, want 2", code, errOut)
	}
	if code, out, _ = e.sluice(true, "resume", id); code != 0 || !strings.Contains(out, "Resumed "+id) {
		t.Fatalf("resume: exit %d\n%s", code, out)
	}
	if code, _, errOut = e.sluice(true, "resume", id); code != 1 || !strings.Contains(errOut, "pause_already_resumed") {
		t.Errorf("second resume: exit %d %s", code, errOut)
	}
	if code, out, _ = e.sluice(true, "pause", "list"); code != 0 || !strings.Contains(out, "No pause in force") {
		t.Errorf("pause list after resume: exit %d\n%s", code, out)
	}
}

func TestAuditCommands(t *testing.T) {
	t.Parallel()
	e := newControlEnv(t)
	for i := range 3 {
		if code, out, errOut := e.sluice(true, "pause", "--reason", fmt.Sprintf("drill %d", i), "--json"); code != 0 {
			t.Fatalf("pause: exit %d %s%s", code, out, errOut)
		}
	}
	// Through the API and from the database: intact.
	var head string
	for _, via := range [][]string{{"audit", "verify"}, {"audit", "verify", "--config", e.config}} {
		code, out, errOut := e.sluice(len(via) == 2, via...)
		head = regexp.MustCompile(`3:[0-9a-f]{64}`).FindString(out)
		if code != 0 || !strings.Contains(out, "3 entries") || head == "" {
			t.Fatalf("%v: exit %d\n%s%s", via, code, out, errOut)
		}
	}
	code, out, _ := e.sluice(true, "audit", "export")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("export: exit %d, %d lines\n%s", code, len(lines), out)
	}
	var first payout.AuditEntry
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Seq != 1 || first.ComputeHash(first.PrevHash) != first.Hash {
		t.Fatalf("first exported line %s (%v): want entry 1 whose hash recomputes", lines[0], err)
	}
	if code, out, _ = e.sluice(true, "audit", "export", "--since", "2999-01-01T00:00:00Z"); code != 0 || out != "" {
		t.Errorf("export --since the future: exit %d %q, want nothing", code, out)
	}

	// The last entry removed: only the head kept from before shows it.
	e.tamper(`DELETE FROM audit_log WHERE seq = 3`)
	if code, _, errOut := e.sluice(true, "audit", "verify", "--head", head); code != 1 || !strings.Contains(errOut, "audit entry 3 removed") {
		t.Errorf("verify --head after the last entry was removed: exit %d %s, want 1 naming entry 3 removed", code, errOut)
	}
	if code, _, errOut := e.sluice(true, "audit", "verify", "--head", "3:xyz"); code != 2 || !strings.Contains(errOut, "--head") {
		t.Errorf("verify --head 3:xyz: exit %d %s, want 2", code, errOut)
	}
	e.tamper(`UPDATE audit_log SET details = replace(details, 'drill 1', 'nothing happened') WHERE seq = 2`)
	for _, via := range [][]string{{"audit", "verify"}, {"audit", "verify", "--config", e.config}} {
		code, _, errOut := e.sluice(len(via) == 2, via...)
		if code != 1 || !strings.Contains(errOut, "audit entry 2 changed") {
			t.Errorf("%v after tampering with entry 2: exit %d %s, want 1 naming entry 2 changed", via, code, errOut)
		}
	}
}

// TestPauseWithoutTheAPI pauses and resumes straight in the database of a
// config file, as an operator would with the API down; the API sees it.
func TestPauseWithoutTheAPI(t *testing.T) {
	t.Parallel()
	e := newControlEnv(t)
	code, out, errOut := e.sluice(false, "pause", "--chain", "sandbox", "--asset", "ETH", "--reason", "api down", "--config", e.config)
	id := regexp.MustCompile(`pse_[0-9A-Za-z]+`).FindString(out)
	if code != 0 || id == "" {
		t.Fatalf("pause --config: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ = e.sluice(true, "pause", "list", "--json"); code != 0 || !strings.Contains(out, id) || !strings.Contains(out, `"created_by": "cli"`) {
		t.Fatalf("pause list through the API: exit %d\n%s", code, out)
	}
	if code, _, errOut = e.sluice(false, "pause", "--chain", "moon", "--reason", "x", "--config", e.config); code != 2 || !strings.Contains(errOut, "moon") {
		t.Errorf("pause --config of an unknown chain: exit %d %s, want 2 naming it", code, errOut)
	}
	if code, out, _ = e.sluice(false, "resume", id, "--config", e.config); code != 0 || !strings.Contains(out, "Resumed "+id) {
		t.Fatalf("resume --config: exit %d\n%s", code, out)
	}
	if code, _, errOut = e.sluice(false, "resume", id, "--config", e.config); code != 1 || !strings.Contains(errOut, "resumed already") {
		t.Errorf("second resume --config: exit %d %s", code, errOut)
	}
	if code, out, _ = e.sluice(false, "audit", "export", "--config", e.config); code != 0 ||
		strings.Count(out, `"actor":"cli"`) != 2 || !strings.Contains(out, `"action":"pause.resume"`) {
		t.Errorf("audit export: exit %d\n%s, want the pause and the resume by cli", code, out)
	}
}
