package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
)

// TestWalletRotation retires one of two hot wallets while payouts flow:
// `sluice wallet rotate` follows it to completed. Every payout is paid
// exactly once; none created after the rotation began is sent by the old
// wallet; the old wallet ends with no SUSD and only the fee reserve of
// ETH, both swept to the new wallet by completed sweep payouts. The old
// wallet cannot be rotated again, nor become the target of a rotation.
func TestWalletRotation(t *testing.T) {
	ctx := context.Background()
	chain, oldKey, newKey, log := startFundedPair(t, 200*time.Millisecond)
	oldW, newW := crypto.PubkeyToAddress(oldKey.PublicKey), crypto.PubkeyToAddress(newKey.PublicKey)
	apiKey := "sk_test_rotation"
	cfg := sandboxConfig(t, chain, apiKey, handedIn(oldW), handedIn(newW))
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	eng, err := startEngine(ctx, cfg, log, engineOptions{Signers: map[common.Address]payout.Signer{
		oldW: evm.KeySigner{Key: oldKey}, newW: evm.KeySigner{Key: newKey}}})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	eth, err := ethclient.Dial(chain.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	opened, err := eth.BlockNumber(ctx) // the books open after the funding, which Sluice did not sign
	if err != nil {
		t.Fatal(err)
	}
	newETH0, _ := eth.BalanceAt(ctx, newW, nil)
	newSUSD0 := susdBalance(t, eth, chain.SUSD(), newW)
	oldSUSD0 := susdBalance(t, eth, chain.SUSD(), oldW)

	type sent struct {
		id     string
		asset  string
		to     common.Address
		amount *big.Int
	}
	var mu sync.Mutex
	var before, after []sent
	pay := func(i int, list *[]sent) {
		w := wanted{asset: "ETH", to: common.BigToAddress(big.NewInt(int64(0xA0000 + i))), amount: big.NewInt(int64(1000 + i))}
		if i%2 == 1 {
			w.asset, w.amount = "SUSD", big.NewInt(int64(10_000+i))
		}
		id := createWithRetry(t, eng.URL, apiKey, w, fmt.Sprintf("rot-%d", i))
		mu.Lock()
		*list = append(*list, sent{id, w.asset, w.to, w.amount})
		mu.Unlock()
	}
	cli := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := run(ctx, append(args, "--api-url", eng.URL(), "--api-key", apiKey), nil, &out, &errOut)
		return out.String(), errOut.String(), code
	}
	for i := range 10 { // some are in flight on the old wallet when it is rotated away
		pay(i, &before)
	}
	// The old wallet's key is suspect: pause it, so that the payouts it
	// gets meanwhile wait queued there, to be handed over by the rotation.
	pauseOut, errOut, code := cli("pause", "--wallet", oldW.Hex(), "--reason", "key may be exposed", "--json")
	var pause struct{ ID string }
	if code != 0 || json.Unmarshal([]byte(pauseOut), &pause) != nil {
		t.Fatalf("pause: exit %d\n%s%s", code, pauseOut, errOut)
	}
	for i := 10; i < 20; i++ {
		pay(i, &before)
	}
	var out string
	rotated := make(chan struct{})
	go func() {
		defer close(rotated)
		out, errOut, code = cli("wallet", "rotate", "--chain", "sandbox", "--from", oldW.Hex(), "--to", newW.Hex(), "--timeout", "2m", "--json")
	}()
	waitForSigner(t, 10*time.Second, "the rotation", func() bool {
		var l struct{ Data []json.RawMessage }
		return getStatusJSON(t, eng.URL()+"/v1/wallet_rotations", apiKey, &l) == 200 && len(l.Data) == 1
	})
	for i := 20; i < 30; i++ {
		pay(i, &after)
	}
	waitForSigner(t, 20*time.Second, "the old wallet's queued payouts handed over", func() bool {
		return len(metricLines(t, eng.URL(), `sluice_rotation_steps_total{chain="sandbox",step="handed_over"}`)) == 1
	})
	if _, errOut, code := cli("resume", pause.ID); code != 0 { // the sweeps leave from the old wallet
		t.Fatalf("resume: exit %d, %s", code, errOut)
	}
	<-rotated
	if code != 0 {
		t.Fatalf("wallet rotate: exit %d\n%s%s", code, out, errOut)
	}
	var rot struct {
		ID     string   `json:"id"`
		Status string   `json:"status"`
		Sweeps []string `json:"sweep_payout_ids"`
		Note   string   `json:"note"`
	}
	if err := json.Unmarshal([]byte(out), &rot); err != nil || rot.Status != "completed" || len(rot.Sweeps) != 2 {
		t.Fatalf("rotation: %v %+v\n%s", err, rot, out)
	}
	ids := []string{}
	for _, s := range append(before, after...) {
		ids = append(ids, s.id)
	}
	waitAllCompleted(t, eng.URL(), apiKey, ids, 60*time.Second)
	for _, s := range append(before, after...) {
		var got *big.Int
		if s.asset == "ETH" {
			got, _ = eth.BalanceAt(ctx, s.to, nil)
		} else {
			got = susdBalance(t, eth, chain.SUSD(), s.to)
		}
		if got.Cmp(s.amount) != 0 {
			t.Errorf("payout %s to %s: holds %s %s, want %s (paid once)", s.id, s.to.Hex(), got, s.asset, s.amount)
		}
	}
	for _, s := range after {
		var p struct {
			From string `json:"from"`
		}
		getStatusJSON(t, eng.URL()+"/v1/payouts/"+s.id, apiKey, &p)
		if !strings.EqualFold(p.From, newW.Hex()) {
			t.Errorf("payout %s created after the rotation began was sent by %s, want the new wallet", s.id, p.From)
		}
	}
	// The sweeps: completed, from the old wallet to the new one; the old
	// wallet keeps no SUSD and at most the fee reserve of ETH.
	var swept = map[string]*big.Int{}
	for _, id := range rot.Sweeps {
		var p struct {
			Status, Asset, Amount, From, To string
		}
		getStatusJSON(t, eng.URL()+"/v1/payouts/"+id, apiKey, &p)
		if p.Status != "completed" || !strings.EqualFold(p.From, oldW.Hex()) || !strings.EqualFold(p.To, newW.Hex()) {
			t.Errorf("sweep %s: %+v", id, p)
		}
		swept[p.Asset], _ = new(big.Int).SetString(p.Amount, 10)
	}
	if got := susdBalance(t, eth, chain.SUSD(), oldW); got.Sign() != 0 {
		t.Errorf("the old wallet holds %s SUSD units after the sweep, want 0", got)
	}
	if got, _ := eth.BalanceAt(ctx, oldW, nil); got.Cmp(big.NewInt(1e16)) > 0 {
		t.Errorf("the old wallet holds %s wei after the sweep, want at most the fee reserve (< 0.01 ETH)", got)
	}
	var paidSUSDByOld = new(big.Int).Sub(oldSUSD0, swept["SUSD"])
	if newSUSD := susdBalance(t, eth, chain.SUSD(), newW); swept["SUSD"] == nil ||
		new(big.Int).Sub(newSUSD, newSUSD0).Cmp(new(big.Int).Sub(swept["SUSD"], paidByNew(t, eng.URL(), apiKey, newW, "SUSD"))) != 0 {
		t.Errorf("the new wallet's SUSD moved by %s; swept %v, old wallet paid %s", new(big.Int).Sub(newSUSD, newSUSD0), swept["SUSD"], paidSUSDByOld)
	}
	if newETH, _ := eth.BalanceAt(ctx, newW, nil); swept["ETH"] == nil || newETH.Cmp(newETH0) <= 0 {
		t.Errorf("the new wallet's ETH went from %s to %s with %v swept", newETH0, newETH, swept["ETH"])
	}
	got := strings.Join(metricLines(t, eng.URL(), "sluice_rotation_steps_total"), "\n")
	for _, want := range []string{`step="sweeps_started"} 1`, `step="completed"} 1`} {
		if !strings.Contains(got, want) {
			t.Errorf("sluice_rotation_steps_total has no %s:\n%s", want, got)
		}
	}
	// The books of both wallets match the chain: the sweeps are the old
	// wallet's payouts; the new wallet received them.
	if rec := checkReconciled(t, cfg, opened); !strings.Contains(rec, "came in from outside this wallet's payouts") {
		t.Errorf("reconcile does not name the ETH swept into the new wallet:\n%s", rec)
	}
	// The old wallet is retired for good.
	if _, errOut, code := cli("wallet", "rotate", "--chain", "sandbox", "--from", oldW.Hex(), "--to", newW.Hex(), "--no-wait"); code == 0 || !strings.Contains(errOut, "wallet_already_rotated") {
		t.Errorf("second rotation of the old wallet: exit %d, %s", code, errOut)
	}
	if _, errOut, code := cli("wallet", "rotate", "--chain", "sandbox", "--from", newW.Hex(), "--to", oldW.Hex(), "--no-wait"); code == 0 || !strings.Contains(errOut, "wallet_retired") {
		t.Errorf("rotation to the retired wallet: exit %d, %s", code, errOut)
	}
}

// paidByNew sums what the wallet's completed payouts of asset paid (not
// counting sweeps, which it receives).
func paidByNew(t *testing.T, url, key string, wallet common.Address, asset string) *big.Int {
	t.Helper()
	var list struct {
		Data []struct {
			From, Asset, Amount, Status string
		}
	}
	getStatusJSON(t, url+"/v1/payouts?limit=100", key, &list)
	sum := new(big.Int)
	for _, p := range list.Data {
		if strings.EqualFold(p.From, wallet.Hex()) && p.Asset == asset && p.Status == "completed" {
			n, _ := new(big.Int).SetString(p.Amount, 10)
			sum.Add(sum, n)
		}
	}
	return sum
}
