package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/httpapi"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
	"github.com/sluicepay/sluice/internal/store/storetest"
)

const (
	cliKey = "sk_cli_test_key"
	cliTo  = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
)

// cliEnv is a real API on a real SQLite store, and the flags that reach it.
type cliEnv struct {
	t    *testing.T
	db   *store.DB
	base []string
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "db"), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	token := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	api, err := httpapi.New(httpapi.Config{
		Store: db, Logger: slog.New(slog.DiscardHandler),
		APIKeys: []httpapi.APIKey{{ID: "key_1", Hash: httpapi.HashAPIKey(cliKey)}},
		Catalog: &payout.Catalog{Chains: map[string]payout.Chain{"sandbox": {
			Name: "sandbox", ChainID: 1337, Confirmations: 1, HotWallet: common.HexToAddress("0xbb"),
			Assets: map[string]payout.Asset{"ETH": {Symbol: "ETH", Decimals: 18}, "SUSD": {Symbol: "SUSD", Token: &token, Decimals: 6}},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &cliEnv{t: t, db: db, base: []string{"--api-url", srv.URL, "--api-key", cliKey}}
}

// run runs `sluice payout ARGS` with the API flags added after them.
func (e *cliEnv) run(args ...string) (string, error) {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	err := runPayout(context.Background(), append(args, e.base...), &stdout, &stderr)
	return stdout.String(), err
}

func (e *cliEnv) mustRun(args ...string) string {
	e.t.Helper()
	out, err := e.run(args...)
	if err != nil {
		e.t.Fatalf("sluice payout %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// createJSON creates a payout with --json and returns its decoded fields.
func (e *cliEnv) createJSON(args ...string) map[string]any {
	e.t.Helper()
	out := e.mustRun(append([]string{"create", "--chain", "sandbox", "--to", cliTo, "--json"}, args...)...)
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		e.t.Fatalf("--json output %q: %v", out, err)
	}
	return got
}

func (e *cliEnv) count() int64 { return storetest.CountAll(e.t, e.db) }

func TestPayoutCreateConvertsAmounts(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	tests := []struct {
		args []string
		want string // base units
	}{
		{[]string{"--asset", "SUSD", "--amount", "1.5"}, "1500000"},
		{[]string{"--asset", "SUSD", "--amount", "0.000001"}, "1"},
		{[]string{"--asset", "SUSD", "--amount", "1000000"}, "1000000000000"},
		{[]string{"--asset", "ETH", "--amount", "0.1"}, "100000000000000000"},
		{[]string{"--asset", "ETH", "--amount", "1.000000000000000001"}, "1000000000000000001"},
		{[]string{"--asset", "SUSD", "--amount", "1500000", "--base-units"}, "1500000"},
	}
	for _, tt := range tests {
		got := e.createJSON(tt.args...)
		if got["amount"] != tt.want || got["status"] != "queued" {
			t.Errorf("create %v: amount %v status %v, want %s queued", tt.args, got["amount"], got["status"], tt.want)
			continue
		}
		stored, err := e.db.GetPayout(context.Background(), got["id"].(string))
		if err != nil || stored.Amount.String() != tt.want {
			t.Errorf("create %v: stored %v (%v), want %s", tt.args, stored, err, tt.want)
		}
	}
}

func TestPayoutCreateRefusesBadInput(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	create := []string{"create", "--chain", "sandbox", "--asset", "SUSD", "--to", cliTo}
	tests := []struct {
		args      []string
		wantUsage bool
		want      string
	}{
		{[]string{"--amount", "1.1234567"}, false, `amount "1.1234567": has 7 decimal places; SUSD has 6`},
		{[]string{"--amount", "-1"}, false, `amount "-1": must be a positive decimal number`},
		{[]string{"--amount", "1e6"}, false, `amount "1e6": must be a positive decimal number`},
		{[]string{"--amount", "0"}, false, `amount "0": must be greater than zero`},
		{[]string{"--amount", "abc"}, false, `amount "abc"`},
		{[]string{"--amount", "1.5", "--base-units"}, false, `amount "1.5": must be a positive whole number`},
		{[]string{"--amount", "0", "--base-units"}, false, `amount "0": must be greater than zero`},
		{[]string{"--amount", "1", "--chain", "mainnet"}, false, `chain "mainnet" is not configured on the server (known: sandbox)`},
		{[]string{"--amount", "1", "--asset", "DOGE"}, false, `asset "DOGE" is not configured on chain "sandbox" (known: ETH, SUSD)`},
		{[]string{"--amount", "1", "--to", "0x1234"}, false, `invalid_address`},
		{[]string{}, true, "needs --amount"},
		{[]string{"--amount", "1", "extra"}, true, "takes no arguments"},
		{[]string{"--amount", "1", "--metadata", "novalue"}, true, "KEY=VALUE"},
		{[]string{"--amount", "1", "--nope"}, true, "flag provided but not defined"},
		{[]string{"--amount", "1", "--priority", "urgent"}, true, `--priority: unknown priority "urgent"`},
	}
	for _, tt := range tests {
		_, err := e.run(append(append([]string{}, create...), tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, errUsage) != tt.wantUsage {
			t.Errorf("create %v: error %v, want one containing %q (usage %v)", tt.args, err, tt.want, tt.wantUsage)
		}
	}
	if n := e.count(); n != 0 {
		t.Errorf("store holds %d payouts after refused commands, want 0", n)
	}
}

func TestPayoutCommands(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	first := e.createJSON("--asset", "SUSD", "--amount", "1.5", "--external-id", "inv-1", "--metadata", "order=7", "--idempotency-key", "k1")
	again := e.createJSON("--asset", "SUSD", "--amount", "1.5", "--external-id", "inv-1", "--metadata", "order=7", "--idempotency-key", "k1")
	if first["id"] != again["id"] || e.count() != 1 {
		t.Errorf("same idempotency key twice: ids %v and %v, %d payouts stored; want one payout", first["id"], again["id"], e.count())
	}
	id := first["id"].(string)
	if diff := cmp.Diff(map[string]any{"order": "7"}, first["metadata"]); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}

	human := e.mustRun("get", id)
	for _, want := range []string{"id:", id, "status:", "queued", "1.5 SUSD (1500000 base units)", "external_id:", "inv-1", "metadata.order:"} {
		if !strings.Contains(human, want) {
			t.Errorf("get output lacks %q:\n%s", want, human)
		}
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(e.mustRun("get", id, "--json")), &got); err != nil || got["id"] != id || got["object"] != "payout" {
		t.Errorf("get --json: %v %v", got, err)
	}

	e.createJSON("--asset", "ETH", "--amount", "2")
	table := e.mustRun("list", "--limit", "1")
	if !strings.Contains(table, "STATUS") || !strings.Contains(table, "2 ETH") || !strings.Contains(table, "more: sluice payout list --starting-after") {
		t.Errorf("list --limit 1 output:\n%s", table)
	}
	var page struct {
		Data    []map[string]any `json:"data"`
		HasMore bool             `json:"has_more"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("list", "--json", "--external-id", "inv-1")), &page); err != nil || len(page.Data) != 1 || page.Data[0]["id"] != id || page.HasMore {
		t.Errorf("list --json --external-id inv-1: %+v %v", page, err)
	}

	if out := e.mustRun("cancel", id, "--json"); !strings.Contains(out, `"status": "cancelled"`) {
		t.Errorf("cancel --json output:\n%s", out)
	}
	if _, err := e.run("cancel", id); err == nil || !strings.Contains(err.Error(), "payout_not_cancellable") {
		t.Errorf("second cancel: %v, want payout_not_cancellable", err)
	}
	if out := e.mustRun("list", "--status", "cancelled"); !strings.Contains(out, id) {
		t.Errorf("list --status cancelled lacks %s:\n%s", id, out)
	}
}

func TestPayoutPriorityCancelAndSpeedUp(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	created := e.createJSON("--asset", "ETH", "--amount", "1", "--priority", "high")
	if created["priority"] != "high" {
		t.Errorf("priority = %v, want high", created["priority"])
	}
	id := created["id"].(string)
	if _, err := e.run("speed-up", id, "--fee-cap", "0.01"); err == nil || !strings.Contains(err.Error(), "payout_not_in_flight") {
		t.Errorf("speed-up of a queued payout: %v, want payout_not_in_flight", err)
	}
	// Sign-and-store as the sender would, so the payout is in flight.
	p, err := e.db.GetPayout(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	err = e.db.SubmitAttempts(context.Background(), []*payout.Attempt{{PayoutID: id, ChainID: p.ChainID, Sender: p.Sender,
		Nonce: 0, TxHash: common.HexToHash("0x01"), RawTx: []byte{1}, GasLimit: 21000,
		MaxFeePerGas: big.NewInt(2e9), MaxPriorityFeePerGas: big.NewInt(1e9)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"speed-up", id}, "needs --fee-cap"},
		{[]string{"speed-up", id, "--fee-cap", "0.0000000000000000001"}, `has 19 decimal places; ETH has 18`},
		{[]string{"speed-up", id, "--fee-cap", "-1"}, `"-1"`},
		{[]string{"speed-up", id, "--fee-cap", "1.5", "--base-units"}, `must be a positive whole number`},
		{[]string{"speed-up", "po_01M85GW9XM1WPMQ6PGRBTY7PT6", "--fee-cap", "1"}, "not_found"},
	} {
		if _, err := e.run(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	out := e.mustRun("speed-up", id, "--fee-cap", "0.01")
	if !strings.Contains(out, "fee_cap:") || !strings.Contains(out, "10000000000000000 wei (0.01 ETH)") {
		t.Errorf("speed-up output lacks the fee cap:\n%s", out)
	}
	out = e.mustRun("cancel", id)
	if !strings.Contains(out, "submitted") || !strings.Contains(out, "cancel:") || !strings.Contains(out, "requested") {
		t.Errorf("cancel of a broadcast payout should say the cancel is requested:\n%s", out)
	}
	got, _ := e.db.GetPayout(context.Background(), id)
	if got.FeeCap == nil || got.FeeCap.String() != "10000000000000000" || !got.CancelRequested {
		t.Errorf("stored: fee cap %v, cancel requested %v", got.FeeCap, got.CancelRequested)
	}
}

func TestPayoutUsage(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	tests := [][]string{
		{},
		{"pay"},
		{"get"},
		{"get", "po_a", "po_b"},
		{"cancel"},
		{"list", "--limit", "0"},
		{"list", "--limit", "101"},
		{"list", "extra"},
	}
	for _, args := range tests {
		var err error
		if len(args) == 0 {
			err = runPayout(context.Background(), nil, &bytes.Buffer{}, &bytes.Buffer{})
		} else {
			_, err = e.run(args...)
		}
		if !errors.Is(err, errUsage) {
			t.Errorf("sluice payout %v: error %v, want a usage error", args, err)
		}
	}
	if _, err := e.run("get", "po_missing"); err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("get of a missing payout: %v, want a not_found API error", err)
	}
}

// The key and URL come from the environment when no flag gives them.
func TestPayoutEnvironment(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("SLUICE_API_URL", e.base[1])
	t.Setenv("SLUICE_API_KEY", cliKey)
	var stdout bytes.Buffer
	err := runPayout(context.Background(), []string{"list", "--json"}, &stdout, &bytes.Buffer{})
	if err != nil || !strings.Contains(stdout.String(), `"data": []`) {
		t.Errorf("list with the environment: %v, output %s", err, stdout.String())
	}
	t.Setenv("SLUICE_API_KEY", "")
	err = runPayout(context.Background(), []string{"list"}, &stdout, &bytes.Buffer{})
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "SLUICE_API_KEY") {
		t.Errorf("list without a key: %v, want a usage error naming SLUICE_API_KEY", err)
	}
}
