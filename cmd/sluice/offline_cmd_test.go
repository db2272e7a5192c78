package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/httpapi"
	"github.com/sluicepay/sluice/internal/sandbox"
	"github.com/sluicepay/sluice/internal/signer"
)

// TestOfflineSigningEndToEnd: the hot wallet's only signer (a remote
// signer) is down, so payouts wait with signer_unavailable. An operator
// exports them unsigned (nonces reserved), signs them with the wallet's
// keystore file and no network, and submits the signed file; they are
// checked, stored, broadcast and completed, and the payees hold exactly
// what they were sent. A tampered plan is refused before signing; a
// transaction that differs from its plan, or is signed by another key, is
// refused with nothing stored. A plan is voided (its payout queued again)
// only while the chain has used none of its nonces: once one of its
// signed transactions is on the network, the void is refused and the
// plan is submitted instead, and the payout is paid once.
func TestOfflineSigningEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key, _ := crypto.GenerateKey()
	wallet := crypto.PubkeyToAddress(key.PublicKey)
	chain, err := sandbox.Start(ctx, sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key, BlockTime: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	const pass = "offline-pass"
	keyFile, _, err := signer.WriteKeystore(filepath.Join(dir, "keys"), key, pass, signer.ChosenPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLUICE_KEYSTORE_PASSPHRASE", pass)
	t.Setenv("SLUICE_SIGNER_TOKEN", "engine-to-signer-token-0123")
	certFile, tlsKeyFile := selfSigned(t, dir)
	tlsCfg, err := serverTLS(certFile, tlsKeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := signer.NewServer(signer.ServerConfig{Signer: signer.FromKey(key), Token: "engine-to-signer-token-0123", Limits: signer.Limits{
		ChainIDs: []uint64{chain.ChainID()}, MaxFeePerTx: "100000000000000000",
		Assets: map[string]signer.AssetLimit{"native": {PerTx: "1000000000000", Daily: "100000000000000"}}}})
	if err != nil {
		t.Fatal(err)
	}
	remote := &remoteSignerAt{t: t, srv: srv, addr: "127.0.0.1:0", tlsCfg: func() *http.Server {
		return &http.Server{Handler: srv, TLSConfig: tlsCfg.Clone(), ErrorLog: slog.NewLogLogger(slog.DiscardHandler, 0)}
	}}
	remote.start()
	downAddr := remote.addr
	apiKey := "sk_test_offline"
	y := fmt.Sprintf(`database: "sqlite:%s"
http: 127.0.0.1:0
data_dir: %q
chains:
  - name: sandbox
    chain_id: %d
    confirmations: 1
    upstreams: [{url: %q}]
    tokens: [{symbol: SUSD, address: %q, decimals: 6}]
    hot_wallets:
      - address: %q
        signer: {type: remote, url: "https://%s", ca_file: %q, timeout: 1s}
api_keys: [{name: t, sha256: "%x"}]
`, filepath.Join(dir, "sluice.db"), dir, chain.ChainID(), chain.RPCURL(), chain.SUSD().Hex(), wallet.Hex(), downAddr, certFile, httpapi.HashAPIKey(apiKey))
	cfg, err := config.Parse([]byte(y), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	eng, err := startEngine(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), engineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { eng.Close() }() // the engine running at the end
	remote.stop()                  // the signing service goes down
	eth, err := ethclient.Dial(chain.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()

	cli := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		if args[0] != "sign" {
			args = append(args, "--api-url", eng.URL(), "--api-key", apiKey)
		}
		code := run(ctx, args, nil, &out, &errOut)
		return out.String(), errOut.String(), code
	}
	payoutStatus := func(id string) (status, reason string) {
		var p struct {
			Status string `json:"status"`
			Reason string `json:"status_reason"`
		}
		getStatusJSON(t, eng.URL()+"/v1/payouts/"+id, apiKey, &p)
		return p.Status, p.Reason
	}
	waitReason := func(id, reason string) {
		waitForSigner(t, 30*time.Second, "payout "+id+" waiting with "+reason, func() bool {
			st, r := payoutStatus(id)
			return st == "queued" && r == reason
		})
	}

	payees := []common.Address{common.HexToAddress("0x00000000000000000000000000000000000e0001"),
		common.HexToAddress("0x00000000000000000000000000000000000e0002"), common.HexToAddress("0x00000000000000000000000000000000000e0003")}
	ids := []string{
		createWithRetry(t, eng.URL, apiKey, wanted{asset: "ETH", to: payees[0], amount: big.NewInt(1_000_000_007)}, "off-0"),
		createWithRetry(t, eng.URL, apiKey, wanted{asset: "SUSD", to: payees[1], amount: big.NewInt(2_500_000)}, "off-1"),
		createWithRetry(t, eng.URL, apiKey, wanted{asset: "ETH", to: payees[2], amount: big.NewInt(3)}, "off-2"),
	}
	for _, id := range ids {
		waitReason(id, "signer_unavailable")
	}

	// Export: the engine plans the three, nonces reserved, unsigned.
	planFile := filepath.Join(dir, "plan.json")
	out, errOut, code := cli("tx", "export-unsigned", "--chain", "sandbox", "--wallet", wallet.Hex(), "--out", planFile)
	if code != 0 {
		t.Fatalf("export-unsigned: exit %d\n%s%s", code, out, errOut)
	}
	var plan struct {
		ID    string `json:"id"`
		Items []struct {
			PayoutID string `json:"payout_id"`
			Nonce    uint64 `json:"nonce"`
			Unsigned string `json:"unsigned_tx"`
			Digest   string `json:"digest"`
		} `json:"items"`
	}
	b, _ := os.ReadFile(planFile)
	if err := json.Unmarshal(b, &plan); err != nil || len(plan.Items) != 3 {
		t.Fatalf("plan file: %v, %d items\n%s", err, len(plan.Items), b)
	}
	chainNonce, _ := eth.NonceAt(ctx, wallet, nil)
	for i, it := range plan.Items {
		if it.Nonce != chainNonce+uint64(i) {
			t.Errorf("item %d at nonce %d, want %d (consecutive from the chain's)", i, it.Nonce, chainNonce+uint64(i))
		}
		if st, _ := payoutStatus(it.PayoutID); st != "signing_offline" {
			t.Errorf("payout %s is %s while its plan is open, want signing_offline", it.PayoutID, st)
		}
	}
	// Its payouts cannot be cancelled: the signed transaction may exist.
	if _, errOut, code := cli("payout", "cancel", ids[0]); code == 0 || !strings.Contains(errOut, "payout_not_cancellable") {
		t.Errorf("cancel of a payout in an open plan: exit %d, %s", code, errOut)
	}
	// A second plan for the wallet is refused while this one is active.
	if _, errOut, code := cli("tx", "export-unsigned", "--chain", "sandbox", "--wallet", wallet.Hex(), "--out", filepath.Join(dir, "second.json")); code == 0 || !strings.Contains(errOut, "offline_plan_active") {
		t.Errorf("second plan: exit %d, %s", code, errOut)
	}

	// The engine restarts while the signer is still down: it starts (the
	// remote signer is verified once it answers), and the open plan, its
	// reserved nonces and its payouts are as they were.
	eng.Close()
	if eng, err = startEngine(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), engineOptions{}); err != nil {
		t.Fatalf("restart with the signer down: %v", err)
	}
	for _, it := range plan.Items {
		if st, _ := payoutStatus(it.PayoutID); st != "signing_offline" {
			t.Errorf("after the restart payout %s is %s, want signing_offline", it.PayoutID, st)
		}
	}
	var open struct{ Status string }
	if getStatusJSON(t, eng.URL()+"/v1/offline_plans/"+plan.ID, apiKey, &open); open.Status != "open" {
		t.Errorf("after the restart the plan is %q, want open", open.Status)
	}

	// A plan altered after export is refused before any key is used.
	tampered := filepath.Join(dir, "tampered.json")
	os.WriteFile(tampered, bytes.Replace(b, []byte(plan.Items[0].Digest), []byte(strings.Replace(plan.Items[0].Digest, "0x", "0x0", 1)[:66]), 1), 0o600)
	if _, errOut, code := cli("sign", "--offline", "--keystore", keyFile, "--in", tampered, "--out", filepath.Join(dir, "t-signed.json")); code == 0 || !strings.Contains(errOut, "altered") {
		t.Errorf("signing a tampered plan: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "t-signed.json")); err == nil {
		t.Error("signing a tampered plan wrote a file")
	}

	// Wrong submissions change nothing: a transaction with another value,
	// and one signed by another key.
	chainID := big.NewInt(int64(chain.ChainID()))
	txSigner := types.LatestSignerForChainID(chainID)
	first := new(types.Transaction)
	if err := first.UnmarshalBinary(hexutil.MustDecode(plan.Items[0].Unsigned)); err != nil {
		t.Fatal(err)
	}
	other, _ := crypto.GenerateKey()
	moreValue := types.MustSignNewTx(key, txSigner, &types.DynamicFeeTx{ChainID: chainID, Nonce: first.Nonce(), GasTipCap: first.GasTipCap(),
		GasFeeCap: first.GasFeeCap(), Gas: first.Gas(), To: first.To(), Value: new(big.Int).Add(first.Value(), big.NewInt(1))})
	byOther, _ := types.SignTx(first, txSigner, other)
	for name, tx := range map[string]*types.Transaction{"more value": moreValue, "another key": byOther} {
		raw, _ := tx.MarshalBinary()
		f := filepath.Join(dir, "bad.json")
		fb, _ := json.Marshal(signedFile{PlanID: plan.ID, SignedTransactions: []string{hexutil.Encode(raw)}})
		os.WriteFile(f, fb, 0o600)
		if _, errOut, code := cli("tx", "submit-signed", f); code == 0 || !strings.Contains(errOut, "signed_transaction_mismatch") {
			t.Errorf("%s: exit %d, %s", name, code, errOut)
		}
	}
	if st, _ := payoutStatus(ids[0]); st != "signing_offline" {
		t.Fatalf("after refused submissions payout %s is %s, want signing_offline", ids[0], st)
	}

	// Sign offline and submit: checked, stored, broadcast, completed.
	signed := filepath.Join(dir, "signed.json")
	if out, errOut, code := cli("sign", "--offline", "--keystore", keyFile, "--in", planFile, "--out", signed); code != 0 {
		t.Fatalf("sign --offline: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := cli("tx", "submit-signed", signed); code != 0 {
		t.Fatalf("submit-signed: exit %d\n%s%s", code, out, errOut)
	}
	waitAllCompleted(t, eng.URL(), apiKey, ids, 60*time.Second)
	if got, _ := eth.BalanceAt(ctx, payees[0], nil); got.Cmp(big.NewInt(1_000_000_007)) != 0 {
		t.Errorf("payee 0 holds %s wei, want 1000000007", got)
	}
	if got, _ := eth.BalanceAt(ctx, payees[2], nil); got.Cmp(big.NewInt(3)) != 0 {
		t.Errorf("payee 2 holds %s wei, want 3", got)
	}
	if got := susdBalance(t, eth, chain.SUSD(), payees[1]); got.Cmp(big.NewInt(2_500_000)) != 0 {
		t.Errorf("payee 1 holds %s SUSD units, want 2500000", got)
	}

	// A plan nobody signed is voided: its payout is queued again.
	id4 := createWithRetry(t, eng.URL, apiKey, wanted{asset: "ETH", to: payees[0], amount: big.NewInt(5)}, "off-4")
	waitReason(id4, "signer_unavailable")
	plan2 := filepath.Join(dir, "plan2.json")
	if out, errOut, code := cli("tx", "export-unsigned", "--chain", "sandbox", "--wallet", wallet.Hex(), "--out", plan2, "--json"); code != 0 {
		t.Fatalf("export-unsigned 2: exit %d\n%s%s", code, out, errOut)
	} else if err := json.Unmarshal([]byte(out), &plan); err != nil || len(plan.Items) != 1 {
		t.Fatalf("plan 2: %v\n%s", err, out)
	}
	if out, errOut, code := cli("tx", "void-unsigned", plan.ID); code != 0 {
		t.Fatalf("void-unsigned: exit %d\n%s%s", code, out, errOut)
	}
	waitReason(id4, "signer_unavailable")

	// Signed, then broadcast by hand before anyone submits it: the void is
	// refused (paying it again at another nonce would pay twice); the
	// plan is submitted and the payout paid once.
	plan3 := filepath.Join(dir, "plan3.json")
	if out, errOut, code := cli("tx", "export-unsigned", "--chain", "sandbox", "--wallet", wallet.Hex(), "--out", plan3, "--json"); code != 0 {
		t.Fatalf("export-unsigned 3: exit %d\n%s%s", code, out, errOut)
	} else if err := json.Unmarshal([]byte(out), &plan); err != nil || len(plan.Items) != 1 || plan.Items[0].PayoutID != id4 {
		t.Fatalf("plan 3: %v\n%s", err, out)
	}
	signed3 := filepath.Join(dir, "signed3.json")
	if out, errOut, code := cli("sign", "--offline", "--keystore", keyFile, "--in", plan3, "--out", signed3); code != 0 {
		t.Fatalf("sign --offline 3: exit %d\n%s%s", code, out, errOut)
	}
	var sf signedFile
	b, _ = os.ReadFile(signed3)
	json.Unmarshal(b, &sf)
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(hexutil.MustDecode(sf.SignedTransactions[0])); err != nil {
		t.Fatal(err)
	}
	if err := eth.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := cli("tx", "void-unsigned", plan.ID); code == 0 || !strings.Contains(errOut, "void refused") {
		t.Errorf("void of a plan whose transaction is on the network: exit %d, %s", code, errOut)
	}
	if out, errOut, code := cli("tx", "submit-signed", signed3); code != 0 {
		t.Fatalf("submit-signed 3: exit %d\n%s%s", code, out, errOut)
	}
	waitAllCompleted(t, eng.URL(), apiKey, []string{id4}, 60*time.Second)
	if got, _ := eth.BalanceAt(ctx, payees[0], nil); got.Cmp(big.NewInt(1_000_000_012)) != 0 {
		t.Errorf("payee 0 holds %s wei, want 1000000012 (paid once)", got)
	}
	got := strings.Join(metricLines(t, eng.URL(), "sluice_offline_plans_total"), "\n")
	// Counted since the restart: the first plan opened before it.
	for _, want := range []string{`step="open"} 2`, `step="submitted"} 2`, `step="voided"} 1`, `step="void_refused"} 1`} {
		if !strings.Contains(got, want) {
			t.Errorf("sluice_offline_plans_total has no %s:\n%s", want, got)
		}
	}
}

// metricLines returns the lines of the engine's /metrics that start with
// prefix.
func metricLines(t testing.TB, url, prefix string) []string {
	t.Helper()
	body, err := readMetrics(url)
	if err != nil {
		t.Fatal(err)
	}
	return linesWithPrefix(body, prefix)
}

// scrapeClient reads the engine's metrics without asking for gzip:
// compressing 100 KB of metrics 20 times a second was 4% of the engine's
// CPU in a profile, taken from the payouts a benchmark measures.
var scrapeClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

// readMetrics returns the engine's /metrics page.
func readMetrics(url string) (string, error) {
	resp, err := scrapeClient.Get(url + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// linesWithPrefix returns the lines of a metrics page that start with prefix.
func linesWithPrefix(body, prefix string) []string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// metricSum adds up the values of the engine's series whose lines start
// with prefix.
func metricSum(t testing.TB, url, prefix string) float64 {
	t.Helper()
	sum, _ := sumLines(metricLines(t, url, prefix))
	return sum
}

// sumLines adds up the values of metric lines; ok is false when a line has
// none (it counts as zero).
func sumLines(lines []string) (sum float64, ok bool) {
	ok = true
	for _, l := range lines {
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err != nil {
			ok = false
			continue
		}
		sum += v
	}
	return sum, ok
}
