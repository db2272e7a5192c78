package rpcpool

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/sandbox"
)

// testChain is a dev chain with its funded hot wallet.
type testChain struct {
	*sandbox.Chain
	key   *ecdsa.PrivateKey
	nonce uint64 // the hot wallet's next nonce
}

// startChain starts an in-memory dev chain served over HTTP, a few blocks
// high so that a stale upstream lags by more than MaxLag.
func startChain(t testing.TB) *testChain {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	chain, err := sandbox.Start(ctx, sandbox.Config{RPCAddr: "127.0.0.1:0", HotWalletKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.Close() })
	for range 6 {
		if _, err := chain.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	nonce, err := chain.Client().PendingNonceAt(ctx, chain.HotWallet())
	if err != nil {
		t.Fatal(err)
	}
	return &testChain{Chain: chain, key: key, nonce: nonce}
}

// signTx signs a 1-wei transfer from key with nonce.
func signTx(t testing.TB, key *ecdsa.PrivateKey, nonce uint64) *types.Transaction {
	t.Helper()
	return signTxTo(t, key, nonce, common.HexToAddress("0x00000000000000000000000000000000000b0b"))
}

// signTxTo signs a 1-wei transfer from key with nonce to to.
func signTxTo(t testing.TB, key *ecdsa.PrivateKey, nonce uint64, to common.Address) *types.Transaction {
	t.Helper()
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(big.NewInt(sandbox.ChainID)), &types.DynamicFeeTx{
		ChainID: big.NewInt(sandbox.ChainID), Nonce: nonce, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9),
		Gas: 21000, To: &to, Value: big.NewInt(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// nextTx signs the hot wallet's next transfer.
func (c *testChain) nextTx(t testing.TB) *types.Transaction {
	t.Helper()
	tx := signTx(t, c.key, c.nonce)
	c.nonce++
	return tx
}

func raw(t testing.TB, tx *types.Transaction) []byte {
	t.Helper()
	b, err := tx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testConfig is a pool config with timings short enough for tests.
func testConfig(urls ...string) Config {
	cfg := Config{
		Chain: "sandbox", ChainID: sandbox.ChainID,
		HealthInterval: 100 * time.Millisecond, HealthTimeout: 300 * time.Millisecond,
		AttemptTimeout: 300 * time.Millisecond, RequestTimeout: 5 * time.Second,
		BreakerFailures: 3, BreakerOpenFor: 300 * time.Millisecond,
		Registerer: prometheus.NewRegistry(),
	}
	for i, u := range urls {
		cfg.Upstreams = append(cfg.Upstreams, UpstreamConfig{Name: fmt.Sprintf("u%d", i), URL: u})
	}
	return cfg
}

// startPool builds and starts a pool, stopped at the test's end.
func startPool(t testing.TB, cfg Config) *Pool {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// readLatest reads the hot wallet's balance and the head through the pool
// and checks them against the chain itself.
func readLatest(t *testing.T, p *Pool, c *testChain) {
	t.Helper()
	ctx := context.Background()
	want, err := c.Client().BalanceAt(ctx, c.HotWallet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got hexutil.Big
	if err := p.Call(ctx, &got, "eth_getBalance", c.HotWallet(), "latest"); err != nil {
		t.Fatalf("eth_getBalance: %v", err)
	}
	if got.ToInt().Cmp(want) != 0 {
		t.Fatalf("balance: got %s, want %s", got.ToInt(), want)
	}
	wantHead, err := c.Client().BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var head hexutil.Uint64
	if err := p.Call(ctx, &head, "eth_blockNumber"); err != nil {
		t.Fatalf("eth_blockNumber: %v", err)
	}
	if uint64(head) != wantHead {
		t.Fatalf("head: got %d, want %d", head, wantHead)
	}
}

func statusOf(t testing.TB, p *Pool, name string) UpstreamStatus {
	t.Helper()
	for _, s := range p.Status() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no upstream %q in status", name)
	return UpstreamStatus{}
}

var bigOne = big.NewInt(1)

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func addr(key *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(key.PublicKey) }
