package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
)

func TestStartFundsHotWalletAndDeploysSUSD(t *testing.T) {
	t.Parallel()
	c := startChain(t, Config{DataDir: t.TempDir()})
	cl := dial(t, c)
	ctx := context.Background()

	id, err := cl.ChainID(ctx)
	if err != nil || id.Uint64() != 1337 {
		t.Fatalf("chain id = %v, %v; want 1337", id, err)
	}
	bal, err := cl.BalanceAt(ctx, c.HotWallet(), big.NewInt(0))
	if err != nil {
		t.Fatal(err)
	}
	if want := new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(params.Ether)); bal.Cmp(want) != 0 {
		t.Errorf("hot wallet genesis balance = %s, want %s", bal, want)
	}
	if got := susdBalance(t, cl, c.SUSD(), c.HotWallet()); got.Cmp(SUSDSupply()) != 0 {
		t.Errorf("hot wallet SUSD = %s, want %s", got, SUSDSupply())
	}
	to := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	ethTx := sendTx(t, cl, testKey, 1, to, big.NewInt(12345), nil, 21000)
	tokTx := sendTx(t, cl, testKey, 2, c.SUSD(), nil, susdTransferData(t, to, big.NewInt(777)), 100_000)
	commit(t, c)
	for _, tx := range []*types.Transaction{ethTx, tokTx} {
		if r := receipt(t, cl, tx); r.Status != types.ReceiptStatusSuccessful {
			t.Errorf("tx %s status %d", tx.Hash(), r.Status)
		}
	}
	if got, _ := cl.BalanceAt(ctx, to, nil); got.Int64() != 12345 {
		t.Errorf("recipient ETH = %v, want 12345", got)
	}
	if got := susdBalance(t, cl, c.SUSD(), to); got.Int64() != 777 {
		t.Errorf("recipient SUSD = %v, want 777", got)
	}
}

func TestBlockTimeMinesOnItsOwn(t *testing.T) {
	t.Parallel()
	c := startChain(t, Config{BlockTime: 100 * time.Millisecond})
	cl := dial(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start, err := cl.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx := sendTx(t, cl, testKey, 1, common.Address{0xee}, big.NewInt(5), nil, 21000)
	r, err := bind.WaitMined(ctx, cl, tx.Hash())
	if err != nil {
		t.Fatalf("not mined without Commit: %v", err)
	}
	if r.Status != types.ReceiptStatusSuccessful || r.BlockNumber.Uint64() <= start {
		t.Errorf("receipt status %d in block %d (start %d)", r.Status, r.BlockNumber, start)
	}
	// Empty blocks keep coming too: confirmations depend on them.
	for {
		n, err := cl.BlockNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n >= r.BlockNumber.Uint64()+3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stuck at block %d", n)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestBatchRPC sends one HTTP request holding 500 JSON-RPC calls, as the
// engine's batched client does, and one above geth's default limit of 1,000.
func TestBatchRPC(t *testing.T) {
	t.Parallel()
	c := startChain(t, Config{})
	for _, n := range []int{500, 1500} {
		t.Run(strconv.Itoa(n), func(t *testing.T) { testBatch(t, c, n) })
	}
}

func testBatch(t *testing.T, c *Chain, n int) {
	calls := make([]map[string]any, n)
	for i := range calls {
		calls[i] = map[string]any{"jsonrpc": "2.0", "id": i, "method": "eth_getBalance",
			"params": []any{c.HotWallet().Hex(), "latest"}}
		if i%2 == 1 {
			calls[i]["method"], calls[i]["params"] = "eth_blockNumber", []any{}
		}
	}
	body, _ := json.Marshal(calls)
	resp, err := http.Post(c.RPCURL(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var results []struct {
		ID     int             `json:"id"`
		Result string          `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&results); err != nil {
		t.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	if len(results) != n {
		t.Fatalf("%d results, want %d", len(results), n)
	}
	seen := map[int]bool{}
	for _, r := range results {
		if r.Error != nil || r.Result == "" {
			t.Fatalf("call %d: error %s", r.ID, r.Error)
		}
		seen[r.ID] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct ids, want %d", len(seen), n)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := startChain(t, Config{Registerer: reg})
	cl := dial(t, c)
	sendTx(t, cl, testKey, 1, common.Address{1}, big.NewInt(1), nil, 21000)
	sendTx(t, cl, testKey, 2, common.Address{2}, big.NewInt(1), nil, 21000)
	commit(t, c)
	commit(t, c)
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		switch {
		case m.Counter != nil:
			got[mf.GetName()] = m.Counter.GetValue()
		case m.Gauge != nil:
			got[mf.GetName()] = m.Gauge.GetValue()
		case m.Histogram != nil:
			got[mf.GetName()+"_sum"] = m.Histogram.GetSampleSum()
		}
	}
	// Three blocks: SUSD's deployment, the two transfers, an empty one.
	want := map[string]float64{
		"sluice_sandbox_blocks_produced_total":  3,
		"sluice_sandbox_block_transactions_sum": 3,
		"sluice_sandbox_head_block_number":      3,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	c.Close()
	if mfs, _ := reg.Gather(); len(mfs) != 0 {
		t.Errorf("%d metric families still registered after Close", len(mfs))
	}
}

func TestForkRefusesPendingTransactions(t *testing.T) {
	t.Parallel()
	c := startChain(t, Config{})
	base := commit(t, c)
	commit(t, c)
	sendTx(t, c.Client(), testKey, 1, common.Address{1}, big.NewInt(1), nil, 21000)
	if err := c.Fork(base); err == nil {
		t.Fatal("Fork accepted a dirty pool")
	}
	commit(t, c)
	if err := c.Fork(base); err != nil {
		t.Fatalf("Fork: %v", err)
	}
	if n, _ := c.Client().BlockNumber(context.Background()); n != 2 {
		t.Errorf("head after Fork = %d, want 2", n)
	}
}

func TestCloseStopsCommit(t *testing.T) {
	t.Parallel()
	c := startChain(t, Config{})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Commit(); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close: %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no key", Config{}, "Config.HotWalletKey"},
		{"negative block time", Config{HotWalletKey: testKey, BlockTime: -1}, "Config.BlockTime"},
		{"tiny gas limit", Config{HotWalletKey: testKey, GasLimit: 100}, "Config.GasLimit"},
		{"bad rpc addr", Config{HotWalletKey: testKey, RPCAddr: "localhost"}, "Config.RPCAddr"},
	}
	for _, tt := range tests {
		_, err := Start(context.Background(), tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to name %s", tt.name, err, tt.want)
		}
	}
}

// TestPoolHoldsThousandsFromOneSender sends 6,000 transfers from the hot
// wallet, more than geth's default pool holds (5,120 executable slots), in
// batched eth_sendRawTransaction calls as the engine does, and checks that
// none is dropped and all are mined.
func TestPoolHoldsThousandsFromOneSender(t *testing.T) {
	t.Parallel()
	c := startChain(t, Config{})
	rc, err := rpc.Dial(c.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	const n = 6000
	signer := types.LatestSignerForChainID(big.NewInt(ChainID))
	batch := make([]rpc.BatchElem, 0, n)
	for i := range n {
		to := common.Address{0xf0, byte(i >> 8), byte(i)}
		tx := types.MustSignNewTx(testKey, signer, &types.DynamicFeeTx{
			ChainID: big.NewInt(ChainID), Nonce: uint64(1 + i), To: &to, Value: big.NewInt(1),
			GasTipCap: big.NewInt(params.GWei), GasFeeCap: big.NewInt(100 * params.GWei), Gas: 21000,
		})
		raw, _ := tx.MarshalBinary()
		batch = append(batch, rpc.BatchElem{Method: "eth_sendRawTransaction", Args: []any{hexutil.Encode(raw)}, Result: new(common.Hash)})
	}
	ctx := context.Background()
	for start := 0; start < n; start += 1000 {
		if err := rc.BatchCallContext(ctx, batch[start:start+1000]); err != nil {
			t.Fatal(err)
		}
	}
	for i, b := range batch {
		if b.Error != nil {
			t.Fatalf("tx %d: %v", i, b.Error)
		}
	}
	cl := ethclient.NewClient(rc)
	if pending, _ := cl.PendingNonceAt(ctx, c.HotWallet()); pending != n+1 {
		t.Fatalf("pending nonce = %d, want %d: the pool dropped transactions", pending, n+1)
	}
	for i := 0; i < 5; i++ {
		commit(t, c)
	}
	if got, _ := cl.NonceAt(ctx, c.HotWallet(), nil); got != n+1 {
		t.Errorf("mined nonce = %d, want %d", got, n+1)
	}
}

// TestRPCModules checks that HTTP serves eth, net and web3, and nothing that
// could change the node (admin, debug, miner, dev).
func TestRPCModules(t *testing.T) {
	t.Parallel()
	c := startChain(t, Config{})
	rc, err := rpc.Dial(c.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ctx := context.Background()
	var version, client string
	if err := rc.CallContext(ctx, &version, "net_version"); err != nil || version != "1337" {
		t.Errorf("net_version = %q, %v; want 1337", version, err)
	}
	if err := rc.CallContext(ctx, &client, "web3_clientVersion"); err != nil || client == "" {
		t.Errorf("web3_clientVersion = %q, %v", client, err)
	}
	for _, method := range []string{"admin_nodeInfo", "debug_setHead", "miner_setGasLimit", "dev_setFeeRecipient"} {
		var out any
		if err := rc.CallContext(ctx, &out, method, "0x1"); err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("%s: err = %v, want method not found", method, err)
		}
	}
}
