package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"gopkg.in/yaml.v3"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/sandbox"
	"github.com/sluicepay/sluice/internal/signer"
)

// TestReconcile pays from a hot wallet, tops it up from an outside
// account, and reconciles: the books match, the native top-up is named as
// coin from outside and the token one by its Transfer; so does the
// engine's own reconciliation. Then, while the engine is down, the
// wallet's key spends SUSD outside Sluice: `sluice reconcile` exits 1
// naming the nonce, the transaction and the SUSD that left without a
// payout, and the engine, started again, raises wallet.drift for it.
func TestReconcile(t *testing.T) {
	ctx := context.Background()
	// The outside account is funded by the hot wallet before the books open.
	chain, hotKey, outKey, log := startFundedPair(t, 250*time.Millisecond)
	hot, outside := crypto.PubkeyToAddress(hotKey.PublicKey), crypto.PubkeyToAddress(outKey.PublicKey)
	apiKey := "sk_test_reconcile"
	cfg := sandboxConfig(t, chain, apiKey, handedIn(hot))
	cfg.Engine.ReconcileEvery = 100 * time.Millisecond
	eng, err := startEngine(ctx, cfg, log, engineOptions{Signers: map[common.Address]payout.Signer{hot: evm.KeySigner{Key: hotKey}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() }) // the engine started last
	cfgPath := writeConfigFile(t, cfg)
	client, err := evm.Dial(ctx, chain.RPCURL(), "sandbox", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	opened := blockNumber(t, client)

	var ids []string
	paid := map[string]*big.Int{"ETH": new(big.Int), "SUSD": new(big.Int)}
	for i := range 6 {
		w := wanted{asset: "ETH", to: common.BigToAddress(big.NewInt(int64(0xB0000 + i))), amount: big.NewInt(int64(1_000_000 + i))}
		if i%2 == 1 {
			w.asset, w.amount = "SUSD", big.NewInt(int64(20_000+i))
		}
		ids = append(ids, createWithRetry(t, eng.URL, apiKey, w, fmt.Sprintf("rec-%d", i)))
		paid[w.asset].Add(paid[w.asset], w.amount)
	}
	waitAllCompleted(t, eng.URL(), apiKey, ids, time.Minute)
	fees := new(big.Int)
	for _, id := range ids {
		var p struct{ Fee string }
		if code := getStatusJSON(t, eng.URL()+"/v1/payouts/"+id, apiKey, &p); code != 200 {
			t.Fatalf("get %s: %d", id, code)
		}
		f, _ := new(big.Int).SetString(p.Fee, 10)
		fees.Add(fees, f)
	}
	topETH, topSUSD := big.NewInt(3e15), big.NewInt(5_000_000)
	susd := chain.SUSD()
	sendFrom(t, ctx, client, chain, outKey, evm.TransferCall(outside, nil, hot, topETH), evm.TransferCall(outside, &susd, hot, topSUSD))
	closed := blockNumber(t, client)

	out, errOut, code := runCLI(ctx, "reconcile", "--config", cfgPath, "--from-block", strconv.FormatUint(opened, 10),
		"--to-block", strconv.FormatUint(closed, 10), "--json")
	if code != 0 {
		t.Fatalf("reconcile: exit %d\n%s%s", code, out, errOut)
	}
	var rep struct {
		Reports []struct {
			Wallet       common.Address
			Balanced     bool
			Transactions int
			Foreign      []json.RawMessage
			Assets       []struct {
				Asset, Paid, Unexplained string
				Fees, Received           *string
				Payouts                  int
				TransfersIn              int `json:"transfers_in"`
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Reports) != 1 || !strings.Contains(out, `"foreign": []`) ||
		!strings.Contains(out, `"unrecorded_payouts": []`) {
		t.Fatalf("reconcile --json: %v, want one report with empty lists as []\n%s", err, out)
	}
	r := rep.Reports[0]
	if r.Wallet != hot || !r.Balanced || r.Transactions != 6 || len(r.Foreign) != 0 || len(r.Assets) != 2 {
		t.Fatalf("report %+v, want the hot wallet balanced with its 6 transactions", r)
	}
	eth, tok := r.Assets[0], r.Assets[1]
	if eth.Asset != "ETH" || eth.Paid != paid["ETH"].String() || eth.Payouts != 3 || eth.Fees == nil || *eth.Fees != fees.String() ||
		eth.Unexplained != topETH.String() {
		t.Errorf("ETH line %+v: want paid %s by 3 payouts, fees %s (the payouts'), the top-up %s unexplained", eth, paid["ETH"], fees, topETH)
	}
	if tok.Asset != "SUSD" || tok.Paid != paid["SUSD"].String() || tok.Payouts != 3 || tok.Received == nil || *tok.Received != topSUSD.String() ||
		tok.TransfersIn != 1 || tok.Unexplained != "0" {
		t.Errorf("SUSD line %+v: want paid %s by 3 payouts, %s received in one transfer, nothing unexplained", tok, paid["SUSD"], topSUSD)
	}

	// From genesis, before SUSD existed (its balance reads as 0 there): the
	// deployment and the funding of the outside account were sent with the
	// wallet's key, not by Sluice.
	out, errOut, code = runCLI(ctx, "reconcile", "--config", cfgPath, "--from-block", "0", "--to-block", strconv.FormatUint(opened, 10))
	if code != 1 || !strings.Contains(out, "DRIFT: nonce 0 was used by transaction") || !strings.Contains(out, "which Sluice did not sign") {
		t.Errorf("reconcile from genesis: exit %d, want 1 naming nonce 0's transaction\n%s%s", code, out, errOut)
	}

	// The engine's own reconciliation found the same, with no drift.
	balancedRuns := `sluice_reconcile_runs_total{chain="sandbox",outcome="balanced",wallet="` + hot.Hex() + `"}`
	waitForSigner(t, 10*time.Second, "a balanced reconciliation past the top-up", func() bool {
		var last float64
		for _, l := range metricLines(t, eng.URL(), `sluice_reconcile_last_block{chain="sandbox",wallet="`+hot.Hex()+`"}`) {
			fmt.Sscanf(l[strings.LastIndex(l, " ")+1:], "%g", &last)
		}
		return uint64(last) >= closed && len(metricLines(t, eng.URL(), balancedRuns)) == 1
	})
	if got := metricLines(t, eng.URL(), `sluice_reconcile_runs_total{chain="sandbox",outcome="drift"`); len(got) != 0 {
		var evs struct{ Data []json.RawMessage }
		getStatusJSON(t, eng.URL()+"/v1/events?type=wallet.drift", apiKey, &evs)
		t.Fatalf("the engine saw drift before any: %v\n%s", got, evs.Data)
	}

	// The wallet's key spends outside Sluice while the engine is down; the
	// engine started again goes on from where its books were closed.
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	stolen := big.NewInt(7_000_000)
	hash := sendFrom(t, ctx, client, chain, hotKey, evm.TransferCall(hot, &susd, outside, stolen))
	if eng, err = startEngine(ctx, cfg, log, engineOptions{Signers: map[common.Address]payout.Signer{hot: evm.KeySigner{Key: hotKey}}}); err != nil {
		t.Fatal(err)
	}
	after := blockNumber(t, client)
	out, errOut, code = runCLI(ctx, "reconcile", "--config", cfgPath, "--from-block", strconv.FormatUint(closed, 10),
		"--to-block", strconv.FormatUint(after, 10))
	if code != 1 {
		t.Fatalf("reconcile after a foreign spend: exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"DRIFT: 7 SUSD left the wallet without a payout", "DRIFT: nonce ", "used by transaction " + hash.Hex(),
		"which Sluice did not sign"} {
		if !strings.Contains(out, want) {
			t.Errorf("reconcile output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "The books match") {
		t.Errorf("reconcile says the books match after a foreign spend:\n%s", out)
	}
	// The engine raises wallet.drift by itself, naming the transaction.
	var drift struct {
		Data []struct {
			ObjectID string `json:"object_id"`
			Data     struct {
				Detail        string
				ForeignNonces []struct {
					TxHash string `json:"tx_hash"`
				} `json:"foreign_nonces"`
				Assets []struct{ Asset, Unexplained string }
			}
		}
	}
	waitForSigner(t, 10*time.Second, "a wallet.drift event", func() bool {
		return getStatusJSON(t, eng.URL()+"/v1/events?type=wallet.drift", apiKey, &drift) == 200 && len(drift.Data) > 0
	})
	d := drift.Data[0]
	if len(drift.Data) != 1 || d.ObjectID != payout.WalletObjectID(chain.ChainID(), hot) || len(d.Data.ForeignNonces) != 1 ||
		d.Data.ForeignNonces[0].TxHash != hash.Hex() || !strings.Contains(d.Data.Detail, "-7 SUSD unexplained") {
		t.Errorf("wallet.drift events %+v: want one, naming %s and the 7 SUSD", drift.Data, hash.Hex())
	}
}

// TestReconcileRefusesBadFlags: bad flags name the flag and change nothing.
func TestReconcileRefusesBadFlags(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--wallet", "0x12"}, `--wallet "0x12"`},
		{[]string{"--from-block", "-5"}, `invalid value "-5" for flag -from-block: "-5" is not a block number`},
		{[]string{"--to-block", "latest"}, `"latest" is not a block number`},
		{[]string{"--config", filepath.Join(t.TempDir(), "none.yaml")}, "none.yaml"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		out, errOut, code := runCLI(ctx, append([]string{"reconcile"}, c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("reconcile %v: exit %d, stderr %q, stdout %q; want 2 naming %q", c.args, code, errOut, out, c.want)
		}
	}
	for _, c := range []struct {
		head, conf     uint64
		from, to       int64
		wantFrom, want uint64
		err            string
	}{
		{head: 500, conf: 12, from: -1, to: -1, wantFrom: 488 - defaultReconcileBlocks, want: 488},
		{head: 20, conf: 12, from: -1, to: -1, wantFrom: 0, want: 8},
		{head: 500, conf: 1, from: 10, to: 20, wantFrom: 10, want: 20},
		{head: 500, conf: 1, from: 20, to: 20, err: "must be below"},
		{head: 500, conf: 1, from: -1, to: 501, err: "past the head"},
		{head: 5, conf: 12, from: -1, to: -1, err: "must be below"},
	} {
		from, to, err := reconcileRange(c.head, c.conf, c.from, c.to)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("range %+v: err %v, want %q", c, err, c.err)
			}
		} else if err != nil || from != c.wantFrom || to != c.want {
			t.Errorf("range %+v: %d-%d %v, want %d-%d", c, from, to, err, c.wantFrom, c.want)
		}
	}
}

// runCLI runs the binary's run in-process.
func runCLI(ctx context.Context, args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := run(ctx, args, nil, &out, &errOut)
	return out.String(), errOut.String(), code
}

// writeConfigFile writes cfg as the YAML a user would write.
func writeConfigFile(t *testing.T, cfg *config.Config) string {
	t.Helper()
	y, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, y, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sendFrom signs calls with key outside Sluice and waits until they are
// mined and one more block is; it returns the last one's hash.
func sendFrom(t *testing.T, ctx context.Context, client *evm.Client, chain *sandbox.Chain, key *ecdsa.PrivateKey, calls ...evm.Call) common.Hash {
	t.Helper()
	ks := signer.FromKey(key)
	fcs := make([]fundingCall, len(calls))
	for i, c := range calls {
		fcs[i] = fundingCall{c, 100_000}
	}
	hashes, err := signAndSend(ctx, client, chain.ChainID(), &devData{wallet: ks}, fcs)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitMined(ctx, client, hashes); err != nil {
		t.Fatal(err)
	}
	rs, err := client.Receipts(ctx, hashes[len(hashes)-1:])
	if err != nil {
		t.Fatal(err)
	}
	for mined := rs[0].BlockNumber; blockNumber(t, client) <= mined; time.Sleep(50 * time.Millisecond) {
	}
	return hashes[len(hashes)-1]
}

func blockNumber(t *testing.T, client *evm.Client) uint64 {
	t.Helper()
	n, err := client.BlockNumber(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkReconciled runs `sluice reconcile` on the config's wallets from
// block opened to the head less the confirmations: the books must match
// the chain, with every nonce of the range Sluice's.
func checkReconciled(t *testing.T, cfg *config.Config, opened uint64) string {
	t.Helper()
	ch := cfg.Chains[0]
	return checkReconciledFile(t, writeConfigFile(t, cfg), ch.Upstreams[len(ch.Upstreams)-1].URL, ch.Confirmations, len(ch.HotWallets), opened)
}

// checkReconciledFile is checkReconciled for a config file whose chain's
// node is at rpcURL and has the wallets given.
func checkReconciledFile(t *testing.T, cfgPath, rpcURL string, confirmations uint64, wallets int, opened uint64) string {
	t.Helper()
	ctx := context.Background()
	client, err := evm.Dial(ctx, rpcURL, "sandbox", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	closed := blockNumber(t, client) - confirmations
	out, errOut, code := runCLI(ctx, "reconcile", "--config", cfgPath, "--from-block", strconv.FormatUint(opened, 10),
		"--to-block", strconv.FormatUint(closed, 10))
	if code != 0 || strings.Count(out, "The books match the chain.") != wallets || strings.Contains(out, " 0 transaction(s)") {
		t.Errorf("reconcile blocks %d-%d: exit %d, want 0 with every wallet's books matching\n%s%s", opened+1, closed, code, out, errOut)
	}
	t.Logf("reconcile:\n%s", out)
	return out
}

// startFundedPair starts a dev chain (a block every blockTime) whose hot
// wallet is a new key, and funds a second new key with ETH and SUSD from
// it; both end with the test.
func startFundedPair(t *testing.T, blockTime time.Duration) (chain *sandbox.Chain, first, second *ecdsa.PrivateKey, log *slog.Logger) {
	t.Helper()
	first, _ = crypto.GenerateKey()
	second, _ = crypto.GenerateKey()
	chain, err := sandbox.Start(context.Background(), sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: first, BlockTime: blockTime})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.Close() })
	log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := fundExtraWallets(context.Background(), chain, &devData{wallet: signer.FromKey(first), extra: []devWallet{{ks: signer.FromKey(second)}}}, log); err != nil {
		t.Fatal(err)
	}
	return chain, first, second, log
}
