package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"

	"github.com/sluicepay/sluice/contracts"
	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// startBatchEngine starts an engine whose dev chain pays batches in mode
// eip7702 (through the genesis executor) or contract (through a
// SluiceBatch the hot wallet deploys first).
func startBatchEngine(t *testing.T, blockTime time.Duration, mode string) *testEngine {
	return startTestEngineWith(t, blockTime, 1, func(node string) []string { return []string{node} },
		func(cfg *config.Config, chain *sandbox.Chain, key *ecdsa.PrivateKey) {
			cfg.Chains[0].Batching = config.Batching{Mode: mode, Executor: chain.BatchExecutor().Hex()}
			if mode == "contract" {
				cfg.Chains[0].Batching.Contract = deployBatchContract(t, chain, key).Hex()
			}
		})
}

// deployBatchContract deploys SluiceBatch from key and waits for it.
func deployBatchContract(t *testing.T, chain *sandbox.Chain, key *ecdsa.PrivateKey) common.Address {
	t.Helper()
	ctx := context.Background()
	eth, err := ethclient.Dial(chain.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := eth.PendingNonceAt(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(big.NewInt(int64(chain.ChainID()))), &types.DynamicFeeTx{
		ChainID: big.NewInt(int64(chain.ChainID())), Nonce: nonce, GasTipCap: big.NewInt(params.GWei),
		GasFeeCap: big.NewInt(100 * params.GWei), Gas: 2_000_000, Data: contracts.Batch().Bytecode,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := eth.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if r, err := eth.TransactionReceipt(ctx, tx.Hash()); err == nil {
			if r.Status != types.ReceiptStatusSuccessful {
				t.Fatal("SluiceBatch deployment reverted")
			}
			return r.ContractAddress
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("SluiceBatch deployment not mined")
	return common.Address{}
}

// apiDo sends a request to the engine's API and decodes a JSON answer
// into out (when not nil); it returns the status and the raw body.
func apiDo(t *testing.T, te *testEngine, method, path, contentType, body, idemKey string, out any) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, te.engine.URL()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+te.apiKey)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode, b
}

// TestBatchPayoutsEndToEnd pays two CSV batches on the dev chain through
// the EIP-7702 executor: SUSD to new then existing holders, ETH to new
// accounts (paid alone) then existing ones, and one recipient whose code
// refuses ETH (taken out of its chunk and failed alone). It checks from the
// chain: every balance, that each Transfer the statement names is the
// payout's, that fee shares add up to each transaction's fee, that the
// completed amounts equal what left the wallet, and gas per payout.
func TestBatchPayoutsEndToEnd(t *testing.T) {
	for _, mode := range []string{"eip7702", "contract"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testBatchPayouts(t, mode)
		})
	}
}

// testBatchPayouts is TestBatchPayoutsEndToEnd in one batching mode. In
// mode contract the native coin goes through the deployed SluiceBatch and
// token rows are paid one by one.
func testBatchPayouts(t *testing.T, mode string) {
	te := startBatchEngine(t, 200*time.Millisecond, mode)
	ctx := context.Background()
	eth, err := ethclient.Dial(te.chain.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	opened, err := eth.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const holders, natives = 120, 30
	addr := func(base, i int) common.Address { return common.BigToAddress(big.NewInt(int64(base + i))) }
	susd := func(i int) string { return fmt.Sprintf("%d.%06d", 1+i%7, 250000+i) }

	// Batch 1: new holders and new (empty) accounts.
	var first strings.Builder
	first.WriteString("to,amount,asset,external_id\r\n")
	for i := range holders {
		fmt.Fprintf(&first, "%s,%s,SUSD,first-%d\r\n", addr(0xA0000, i).Hex(), susd(i), i)
	}
	for i := range natives {
		fmt.Fprintf(&first, "%s,0.00%d,ETH,\r\n", addr(0xB0000, i).Hex(), 1+i%5)
	}
	var b1 payout.Batch
	if code, body := apiDo(t, te, "POST", "/v1/batches", "text/csv", first.String(), "batch-1", &b1); code != 201 {
		t.Fatalf("POST /v1/batches = %d %s", code, body)
	}
	if got := pollBatch(t, te.engine.URL(), te.apiKey, b1.ID, 90*time.Second); got.Status != payout.BatchCompleted || got.Counts[payout.StatusCompleted] != holders+natives {
		t.Fatalf("batch 1 = %s %v, want completed", got.Status, got.Counts)
	}

	// Batch 2: the same holders and accounts again, and one recipient
	// with code that refuses ETH (the beacon-roots system contract).
	var second strings.Builder
	second.WriteString("\ufeffTo,Amount,Asset\n")
	for i := range holders {
		fmt.Fprintf(&second, "%s,%s,SUSD\n", addr(0xA0000, i).Hex(), susd(i))
	}
	for i := range natives {
		fmt.Fprintf(&second, "%s,0.00%d,ETH\n", addr(0xB0000, i).Hex(), 1+i%5)
		if i == natives/2 {
			fmt.Fprintf(&second, "%s,0.001,ETH\n", params.BeaconRootsAddress.Hex())
		}
	}
	// Through the CLI, which follows the batch to its end; running the
	// same submit again answers the same batch and pays nothing twice.
	file := filepath.Join(t.TempDir(), "second.csv")
	if err := os.WriteFile(file, []byte(second.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	submit := func() (payout.Batch, string) {
		var stdout, stderr bytes.Buffer
		code := run(ctx, []string{"batch", "submit", file, "--json", "--api-url", te.engine.URL(), "--api-key", te.apiKey}, nil, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("sluice batch submit = %d: %s", code, stderr.String())
		}
		var b payout.Batch
		if err := json.Unmarshal(stdout.Bytes(), &b); err != nil {
			t.Fatalf("batch submit --json printed %q: %v", stdout.String(), err)
		}
		return b, stderr.String()
	}
	b2, progress := submit()
	if !strings.Contains(progress, "completed") || !strings.Contains(progress, "[##") {
		t.Errorf("submit showed no progress: %q", progress)
	}
	if again, _ := submit(); again.ID != b2.ID {
		t.Errorf("submitting the same file again made batch %s, want %s", again.ID, b2.ID)
	}
	got := pollBatch(t, te.engine.URL(), te.apiKey, b2.ID, 90*time.Second)
	if got.Status != payout.BatchCompletedWithFailures || got.Counts[payout.StatusCompleted] != holders+natives || got.Counts[payout.StatusFailed] != 1 {
		t.Fatalf("batch 2 = %s %v, want completed_with_failures with one failure", got.Status, got.Counts)
	}

	// Every balance is what both batches paid.
	token := te.chain.SUSD()
	for i := range holders {
		want, _ := payout.ParseDecimal(susd(i), 6)
		want.Mul(want, big.NewInt(2))
		if bal := susdBalance(t, eth, token, addr(0xA0000, i)); bal.Cmp(want) != 0 {
			t.Errorf("holder %d has %s SUSD base units, want %s", i, bal, want)
		}
	}
	for i := range natives {
		want, _ := payout.ParseDecimal(fmt.Sprintf("0.00%d", 1+i%5), 18)
		want.Mul(want, big.NewInt(2))
		if bal, _ := eth.BalanceAt(ctx, addr(0xB0000, i), nil); bal.Cmp(want) != 0 {
			t.Errorf("account %d has %s wei, want %s", i, bal, want)
		}
	}
	checkStatement(t, te, eth, b2.ID, holders, natives, mode)
	if mode == "eip7702" {
		checkSinglesShareTransactions(t, te, eth)
	} else {
		checkBatchCommands(t, te, b2.ID)
	}
	checkReconciled(t, te.cfg, opened)
}

// checkBatchCommands runs `sluice batch get|statement` on a finished batch
// and `sluice batch submit` on a file with bad rows.
func checkBatchCommands(t *testing.T, te *testEngine, id string) {
	t.Helper()
	ctx := context.Background()
	cli := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(ctx, append(args, "--api-url", te.engine.URL(), "--api-key", te.apiKey), nil, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	if code, out, errOut := cli("batch", "get", id); code != 0 || !strings.Contains(out, "completed_with_failures") || !strings.Contains(out, "total SUSD") {
		t.Errorf("batch get = %d %q %q", code, out, errOut)
	}
	file := filepath.Join(t.TempDir(), "statement.csv")
	if code, _, errOut := cli("batch", "statement", id, "--out", file); code != 0 {
		t.Errorf("batch statement = %d %q", code, errOut)
	}
	if b, err := os.ReadFile(file); err != nil || !strings.HasPrefix(string(b), strings.Join(payout.StatementHeader, ",")) {
		t.Errorf("statement file: %v %.200q", err, b)
	}
	bad := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(bad, []byte("to,amount,asset\n0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed,1e3,SUSD\n0xnot,1,SUSD\n"), 0o600)
	code, _, errOut := cli("batch", "submit", bad)
	if code != 1 || !strings.Contains(errOut, "row 2, column amount") || !strings.Contains(errOut, "scientific_notation") ||
		!strings.Contains(errOut, "row 3, column to") || !strings.Contains(errOut, "nothing was paid") {
		t.Errorf("batch submit of a bad file = %d %q", code, errOut)
	}
}

// checkSinglesShareTransactions: a delegated wallet sends one transaction
// per block, so single payouts made after a batch ride together in batch
// transactions instead of queueing one per block.
func checkSinglesShareTransactions(t *testing.T, te *testEngine, eth *ethclient.Client) {
	t.Helper()
	const n = 40
	var ids []string
	for i := range n {
		var p payout.Payout
		body := fmt.Sprintf(`{"chain":"sandbox","asset":"SUSD","to":"%s","amount":"%d"}`, common.BigToAddress(big.NewInt(int64(0xC0000+i))).Hex(), 1000+i)
		if code, b := apiDo(t, te, "POST", "/v1/payouts", "application/json", body, fmt.Sprintf("single-%d", i), &p); code != 201 {
			t.Fatalf("create payout = %d %s", code, b)
		}
		ids = append(ids, p.ID)
	}
	start := time.Now()
	waitAllCompleted(t, te.engine.URL(), te.apiKey, ids, 60*time.Second)
	txs := map[common.Hash]bool{}
	for _, id := range ids {
		var p payout.Payout
		apiDo(t, te, "GET", "/v1/payouts/"+id, "", "", "", &p)
		txs[*p.TxHash] = true
	}
	t.Logf("%d single payouts of a delegated wallet: %d transactions, %s", n, len(txs), time.Since(start).Round(time.Millisecond))
	if len(txs) > 10 {
		t.Errorf("%d single payouts took %d transactions; a delegated wallet should share them", n, len(txs))
	}
}

func susdBalance(t *testing.T, eth *ethclient.Client, token, who common.Address) *big.Int {
	t.Helper()
	data := append(common.FromHex("0x70a08231"), common.LeftPadBytes(who.Bytes(), 32)...)
	out, err := eth.CallContract(context.Background(), ethereum.CallMsg{To: &token, Data: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return new(big.Int).SetBytes(out)
}

// checkStatement reads the batch's statement and reconciles it with the
// chain's receipts and logs.
func checkStatement(t *testing.T, te *testEngine, eth *ethclient.Client, batchID string, holders, natives int, mode string) {
	t.Helper()
	ctx := context.Background()
	code, body := apiDo(t, te, "GET", "/v1/batches/"+batchID+"/statement.csv", "", "", "", nil)
	if code != 200 {
		t.Fatalf("statement = %d %s", code, body)
	}
	lines, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, name := range lines[0] {
		col[name] = i
	}
	transfer := crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)"))
	wallet := crypto.PubkeyToAddress(te.key.PublicKey)
	feeShares, rows := map[common.Hash]*big.Int{}, 0
	completedSUSD, totalSUSD := new(big.Int), new(big.Int)
	receipts := map[common.Hash]int{} // payouts per transaction
	for _, l := range lines[1:] {
		if l[col["row"]] == "total" {
			if l[col["asset"]] == "SUSD" && l[col["status"]] == "completed" {
				totalSUSD.SetString(l[col["amount_base_units"]], 10)
			}
			continue
		}
		rows++
		if row, _ := strconv.Atoi(l[col["row"]]); row != rows+1 {
			t.Fatalf("statement line %d is row %s, want input order (row %d)", rows, l[col["row"]], rows+1)
		}
		if l[col["status"]] != "completed" {
			if l[col["failure_code"]] == "" {
				t.Errorf("row %s %s without a failure code", l[col["row"]], l[col["status"]])
			}
			continue
		}
		h := common.HexToHash(l[col["tx_hash"]])
		receipts[h]++
		fee, _ := new(big.Int).SetString(l[col["fee_wei"]], 10)
		if feeShares[h] == nil {
			feeShares[h] = new(big.Int)
		}
		feeShares[h].Add(feeShares[h], fee)
		if l[col["timestamp"]] == "" || l[col["block"]] == "" {
			t.Errorf("row %s has no block or timestamp", l[col["row"]])
		}
		if l[col["asset"]] != "SUSD" {
			continue
		}
		amount, _ := new(big.Int).SetString(l[col["amount_base_units"]], 10)
		completedSUSD.Add(completedSUSD, amount)
		r, err := eth.TransactionReceipt(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		idx, _ := strconv.Atoi(l[col["log_index"]])
		var found bool
		for _, lg := range r.Logs {
			if lg.Index == uint(idx) {
				found = lg.Topics[0] == transfer && common.BytesToAddress(lg.Topics[1].Bytes()) == wallet &&
					common.BytesToAddress(lg.Topics[2].Bytes()) == common.HexToAddress(l[col["to"]]) &&
					new(big.Int).SetBytes(lg.Data).Cmp(amount) == 0
			}
		}
		if !found {
			t.Errorf("row %s: log %d of %s is not its Transfer", l[col["row"]], idx, h.Hex())
		}
	}
	if rows != holders+natives+1 {
		t.Errorf("statement has %d rows, want %d", rows, holders+natives+1)
	}
	if completedSUSD.Cmp(totalSUSD) != 0 || totalSUSD.Sign() == 0 {
		t.Errorf("SUSD total line %s, rows add up to %s", totalSUSD, completedSUSD)
	}
	// What left the wallet in SUSD for this batch, from the chain's logs.
	left, batched := new(big.Int), 0
	for h, n := range receipts {
		r, err := eth.TransactionReceipt(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		tx, _, err := eth.TransactionByHash(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		fee := new(big.Int).Mul(new(big.Int).SetUint64(r.GasUsed), r.EffectiveGasPrice)
		if feeShares[h].Cmp(fee) != 0 {
			t.Errorf("tx %s: fee shares add up to %s, the receipt's fee is %s", h.Hex(), feeShares[h], fee)
		}
		for _, lg := range r.Logs {
			if lg.Address == te.chain.SUSD() && lg.Topics[0] == transfer && common.BytesToAddress(lg.Topics[1].Bytes()) == wallet {
				left.Add(left, new(big.Int).SetBytes(lg.Data))
			}
		}
		if n > 1 {
			batched++
			t.Logf("batch tx %s: %d payouts, %d gas, %d gas per payout, to %s", h.Hex()[:10], n, r.GasUsed, r.GasUsed/uint64(n), tx.To().Hex())
			if mode == "eip7702" && *tx.To() != wallet {
				t.Errorf("batch tx %s goes to %s, want the wallet itself (EIP-7702)", h.Hex(), tx.To().Hex())
			}
			if mode == "contract" && *tx.To() == wallet {
				t.Errorf("batch tx %s goes to the wallet, want the batch contract", h.Hex())
			}
			if mode == "contract" {
				checkNothingLeft(t, te, eth, *tx.To())
			}
		}
	}
	if left.Cmp(completedSUSD) != 0 {
		t.Errorf("%s SUSD left the wallet in the batch's transactions, the statement's completed rows add up to %s", left, completedSUSD)
	}
	if batched < 2 || len(receipts) > 6 {
		t.Errorf("%d transactions (%d batched) paid %d payouts, want a few batch transactions", len(receipts), batched, holders+natives)
	}
}

// checkNothingLeft: the batch contract holds no coin, no token, and no
// allowance from the wallet remains after its batches (each approval was
// exactly a batch's total).
func checkNothingLeft(t *testing.T, te *testEngine, eth *ethclient.Client, contract common.Address) {
	t.Helper()
	ctx := context.Background()
	wallet := crypto.PubkeyToAddress(te.key.PublicKey)
	token := te.chain.SUSD()
	data := append(common.FromHex("0xdd62ed3e"), append(common.LeftPadBytes(wallet.Bytes(), 32), common.LeftPadBytes(contract.Bytes(), 32)...)...)
	out, err := eth.CallContract(ctx, ethereum.CallMsg{To: &token, Data: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if left := new(big.Int).SetBytes(out); left.Sign() != 0 {
		t.Errorf("the wallet still allows the batch contract %s SUSD base units", left)
	}
	if bal := susdBalance(t, eth, token, contract); bal.Sign() != 0 {
		t.Errorf("the batch contract holds %s SUSD base units", bal)
	}
	if bal, _ := eth.BalanceAt(ctx, contract, nil); bal.Sign() != 0 {
		t.Errorf("the batch contract holds %s wei", bal)
	}
}
