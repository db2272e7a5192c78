package doctor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/rpcpool"
	"github.com/sluicepay/sluice/internal/store"
)

func TestHealthyConfigIsAllOK(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t, f.rpcURL)
	rep := Run(t.Context(), cfg, Options{})
	for _, r := range rep.Results {
		if r.Status != OK {
			t.Errorf("%s: %s %s (%s)", r.Check, r.Status, r.Detail, r.Advice)
		}
	}
	if got := rep.ExitCode(); got != 0 {
		t.Errorf("exit code %d, want 0", got)
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CHECK", "upstream sandbox", "signer sandbox", "balance sandbox", "database", "oldest unfinished payout", "OK: "} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestFaultyUpstreamsAndStuckPayout(t *testing.T) {
	f := newFixture(t)
	for range 8 {
		if _, err := f.chain.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	wrong := faultUpstream(t, f.rpcURL, answer("eth_chainId", `"0x5"`))
	limited := faultUpstream(t, f.rpcURL, tooManyRequests)
	stale := faultUpstream(t, f.rpcURL, answer("eth_blockNumber", `"0x1"`))
	provider := faultUpstream(t, f.rpcURL, func(w http.ResponseWriter, _ string) bool {
		fmt.Fprint(w, `{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"daily request count exceeded, request rate limited"}}`)
		return true
	})
	refused := refusedURL(t)
	cfg := f.config(t, f.rpcURL, wrong.URL, limited.URL, stale.URL, provider.URL, refused)
	// More than the wallet's 1,000,000 ETH, queued two hours ago.
	huge, _ := new(big.Int).SetString("2000000000000000000000000", 10)
	f.addPayout(t, huge, time.Now().Add(-2*time.Hour))

	rep := Run(t.Context(), cfg, Options{Timeout: 3 * time.Second})
	cases := []struct {
		check, status, detail, advice string
	}{
		{"upstream sandbox " + f.rpcURL, "OK", "chain 1337", ""},
		{"upstream sandbox " + wrong.URL, "FAIL", "on chain 5", "is on chain 5, not 1337: fix its URL"},
		{"upstream sandbox " + limited.URL, "WARN", "HTTP 429 (Retry-After 30)", "rate limiting"},
		{"upstream sandbox " + provider.URL, "WARN", "request count exceeded", "rate limiting"},
		{"upstream sandbox " + stale.URL, "WARN", "blocks behind", "blocks behind the best head"},
		{"upstream sandbox " + rpcpool.RedactURL(refused), "FAIL", "unreachable", "does not answer"},
		{"signer sandbox", "OK", "recovers to the wallet", ""},
		{"balance sandbox", "FAIL", "1 pending payouts need 2000000.", "is short: send it at least 1000000."},
		{"oldest unfinished payout", "FAIL", "queued", "check its sender's upstreams"},
	}
	for _, c := range cases {
		got := find(t, rep, c.check)
		if string(got.Status) != c.status || !strings.Contains(got.Detail, c.detail) || !strings.Contains(got.Advice, c.advice) {
			t.Errorf("%s: got %s %q (%q), want %s %q (%q)", c.check, got.Status, got.Detail, got.Advice, c.status, c.detail, c.advice)
		}
	}
	if rep.ExitCode() != 2 {
		t.Errorf("exit code %d, want 2", rep.ExitCode())
	}
	var table bytes.Buffer
	_ = rep.WriteTable(&table)
	t.Logf("report:\n%s", table.String())
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "0123456789abcdef0123456789abcdef") {
		t.Errorf("the provider key is printed:\n%s", buf.String())
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.Status != Fail {
		t.Errorf("json: %v, status %s", err, back.Status)
	}
}

func TestMissingDatabaseAndPassphrase(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t, f.rpcURL)
	cfg.Database = "sqlite:" + t.TempDir() + "/none.db"
	cfg.Chains[0].HotWallets[0].Signer.PassphraseFile = ""
	cfg.Chains[0].HotWallets[0].Signer.PassphraseEnv = "SLUICE_DOCTOR_TEST_UNSET"
	rep := Run(t.Context(), cfg, Options{})
	if r := find(t, rep, "database"); r.Status != Fail || !strings.Contains(r.Advice, "none.db") {
		t.Errorf("database: %+v", r)
	}
	if r := find(t, rep, "signer sandbox"); r.Status != Fail || !strings.Contains(r.Advice, "$SLUICE_DOCTOR_TEST_UNSET") {
		t.Errorf("signer: %+v", r)
	}
	if r := find(t, rep, "balance sandbox"); r.Status != OK || !strings.Contains(r.Detail, "pending payouts unknown") {
		t.Errorf("balance: %+v", r)
	}
}

func TestOldestPayoutAge(t *testing.T) {
	f := newFixture(t)
	f.addPayout(t, big.NewInt(1), time.Now())
	cfg := f.config(t, f.rpcURL)
	for _, c := range []struct {
		after time.Duration
		want  Status
	}{{time.Minute, OK}, {11 * time.Minute, Warn}, {61 * time.Minute, Fail}} {
		now := time.Now().Add(c.after)
		rep := Run(t.Context(), cfg, Options{Now: func() time.Time { return now }})
		if r := find(t, rep, "oldest unfinished payout"); r.Status != c.want {
			t.Errorf("after %s: %+v, want %s", c.after, r, c.want)
		}
		if rep.ExitCode() != c.want.rank() {
			t.Errorf("after %s: exit code %d", c.after, rep.ExitCode())
		}
	}
}

func TestNoUsableUpstream(t *testing.T) {
	f := newFixture(t)
	wrong := faultUpstream(t, f.rpcURL, answer("eth_chainId", `"0x1"`))
	rep := Run(t.Context(), f.config(t, wrong.URL, refusedURL(t)), Options{Timeout: 2 * time.Second})
	if r := find(t, rep, "chain sandbox"); r.Status != Fail || !strings.Contains(r.Advice, "fix or add an upstream on chain 1337") {
		t.Errorf("chain: %+v", r)
	}
	if r := find(t, rep, "balance sandbox"); r.Status != Fail || !strings.Contains(r.Detail, "no usable upstream") {
		t.Errorf("balance: %+v", r)
	}
	if rep.ExitCode() != 2 {
		t.Errorf("exit code %d, want 2", rep.ExitCode())
	}
}

func TestDatabaseBehindTheBinary(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t, f.rpcURL)
	// A database file that exists but was never migrated, as one made by
	// an older binary would be for the newer migrations.
	path := t.TempDir() + "/old.db"
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Database = "sqlite:" + path
	rep := Run(t.Context(), cfg, Options{})
	r := find(t, rep, "database")
	if r.Status != Fail || !strings.Contains(r.Detail, "behind this binary") || !strings.Contains(r.Detail, "0001_init.sql") {
		t.Errorf("database: %+v", r)
	}
	// Doctor only looks: the schema is still unmigrated afterwards.
	db, err := store.Open(t.Context(), "sqlite:"+path, store.Options{NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if pending, err := db.PendingMigrations(t.Context()); err != nil || len(pending) == 0 {
		t.Errorf("after doctor: pending migrations %v, %v; doctor must not migrate", pending, err)
	}
}

func TestAttentionReportsStuckAndWaiting(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t, f.rpcURL)
	if r := find(t, Run(t.Context(), cfg, Options{}), "payouts needing attention"); r.Status != OK {
		t.Fatalf("no payouts: %+v, want OK", r)
	}
	f.addPayout(t, big.NewInt(1), time.Now())
	f.addPayout(t, big.NewInt(2), time.Now())
	db := f.openStore(t)
	defer db.Close()
	queued, _, err := db.ListPayouts(t.Context(), payout.ListFilter{Status: payout.StatusQueued, Limit: 10})
	if err != nil || len(queued) != 2 {
		t.Fatalf("queued payouts: %v, %v", queued, err)
	}
	if err := db.HoldQueued(t.Context(), []payout.Hold{{PayoutID: queued[0].ID, Reason: payout.ReasonInsufficientFunds, Detail: "needs 2, has 1"}}); err != nil {
		t.Fatal(err)
	}
	r := find(t, Run(t.Context(), cfg, Options{}), "payouts needing attention")
	if r.Status != Warn || !strings.Contains(r.Detail, "1 insufficient_funds") || !strings.Contains(r.Advice, "top up") {
		t.Errorf("a payout waiting for funds: %+v, want WARN naming insufficient_funds", r)
	}
	sent := queued[1]
	a := &payout.Attempt{PayoutID: sent.ID, ChainID: sent.ChainID, Sender: sent.Sender, Nonce: 0, TxHash: common.HexToHash("0x01"),
		RawTx: []byte{1}, GasLimit: 21000, MaxFeePerGas: big.NewInt(2), MaxPriorityFeePerGas: big.NewInt(1)}
	if err := db.SubmitAttempts(t.Context(), []*payout.Attempt{a}); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkStuck(t.Context(), []payout.Hold{{PayoutID: sent.ID, Reason: payout.ReasonFeeCapReached, Detail: "needs 5 wei/gas, cap 4"}}); err != nil {
		t.Fatal(err)
	}
	rep := Run(t.Context(), cfg, Options{})
	r = find(t, rep, "payouts needing attention")
	if r.Status != Fail || !strings.Contains(r.Detail, sent.ID) || !strings.Contains(r.Advice, "speed-up "+sent.ID) {
		t.Errorf("a stuck payout: %+v, want FAIL naming it and the speed-up command", r)
	}
	if rep.ExitCode() != 2 {
		t.Errorf("exit code %d with a stuck payout, want 2", rep.ExitCode())
	}
}
