package fees

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// The chain's client satisfies Backend as it is.
var _ Backend = (*ethclient.Client)(nil)

// hotKey is the dev chain's hot wallet in these tests.
var hotKey = mustKey("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")

func mustKey(h string) *ecdsa.PrivateKey {
	k, err := crypto.HexToECDSA(h)
	if err != nil {
		panic(err)
	}
	return k
}

// testChain is a dev chain with the clients a test needs.
type testChain struct {
	*sandbox.Chain
	eth   *ethclient.Client // over HTTP: the oracle's backend
	evm   *evm.Client       // over HTTP: broadcasts and receipts, as the sender does
	key   *ecdsa.PrivateKey
	nonce uint64
}

// gasLimit makes a full block exactly 100 plain transfers.
const gasLimit = 100 * 21_000

// startChain starts a dev chain with blocks made only by Commit.
func startChain(t testing.TB) *testChain {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sandbox.Start(ctx, sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: hotKey, GasLimit: gasLimit})
	if err != nil {
		t.Fatalf("start chain: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	ec, err := ethclient.DialContext(ctx, c.RPCURL())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(ec.Close)
	vc, err := evm.Dial(ctx, c.RPCURL(), "sandbox", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(vc.Close)
	nonce, err := vc.Nonce(ctx, c.HotWallet(), "pending")
	if err != nil {
		t.Fatalf("nonce: %v", err)
	}
	return &testChain{Chain: c, eth: ec, evm: vc, key: hotKey, nonce: nonce}
}

var recipient = common.HexToAddress("0x00000000000000000000000000000000000fee01")

// sign signs a 1-wei transfer at nonce with the given fees.
func (c *testChain) sign(t testing.TB, nonce uint64, f evm.Fees) *types.Transaction {
	t.Helper()
	tx, err := types.SignNewTx(c.key, types.LatestSignerForChainID(big.NewInt(sandbox.ChainID)), &types.DynamicFeeTx{
		ChainID: big.NewInt(sandbox.ChainID), Nonce: nonce, GasTipCap: f.MaxPriorityFeePerGas, GasFeeCap: f.MaxFeePerGas,
		Gas: 21_000, To: &recipient, Value: big.NewInt(1),
	})
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return tx
}

// next signs a transfer at the next nonce.
func (c *testChain) next(t testing.TB, f evm.Fees) *types.Transaction {
	t.Helper()
	tx := c.sign(t, c.nonce, f)
	c.nonce++
	return tx
}

// send broadcasts txs and returns each node answer.
func (c *testChain) send(t testing.TB, txs ...*types.Transaction) []error {
	t.Helper()
	raws := make([][]byte, len(txs))
	for i, tx := range txs {
		raw, err := tx.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		raws[i] = raw
	}
	errs, err := c.evm.SendRaw(context.Background(), raws)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return errs
}

// mustSend broadcasts txs and fails the test on any refusal.
func (c *testChain) mustSend(t testing.TB, txs ...*types.Transaction) {
	t.Helper()
	for i, err := range c.send(t, txs...) {
		if err != nil {
			t.Fatalf("send tx %d: %v", i, err)
		}
	}
}

// waitPending waits until the node's pool holds every transaction sent
// (the pool takes new transactions in asynchronously, so a block sealed at
// once could miss the last of them).
func (c *testChain) waitPending(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := c.evm.Nonce(context.Background(), c.HotWallet(), "pending")
		if err != nil {
			t.Fatalf("pending nonce: %v", err)
		}
		if n >= c.nonce {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending nonce %d after 10s, want %d", n, c.nonce)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// commit seals a block and returns its header.
func (c *testChain) commit(t testing.TB) *types.Header {
	t.Helper()
	if _, err := c.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	h, err := c.eth.HeaderByNumber(context.Background(), nil)
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	return h
}

// mined says whether tx has a receipt.
func (c *testChain) mined(t testing.TB, tx *types.Transaction) bool {
	t.Helper()
	rs, err := c.evm.Receipts(context.Background(), []common.Hash{tx.Hash()})
	if err != nil {
		t.Fatalf("receipt: %v", err)
	}
	return rs[0] != nil
}

func gwei(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1_000_000_000)) }

// counting counts the RPC calls made through a Backend.
type counting struct {
	Backend
	headers, histories, prices atomic.Int64
	noBaseFee                  bool // hide the base fee: a chain without EIP-1559
}

func (c *counting) HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error) {
	c.headers.Add(1)
	h, err := c.Backend.HeaderByNumber(ctx, n)
	if err == nil && c.noBaseFee {
		h = types.CopyHeader(h)
		h.BaseFee = nil
	}
	return h, err
}

func (c *counting) FeeHistory(ctx context.Context, n uint64, last *big.Int, ps []float64) (*ethereum.FeeHistory, error) {
	c.histories.Add(1)
	return c.Backend.FeeHistory(ctx, n, last, ps)
}

func (c *counting) SuggestGasPrice(ctx context.Context) (*big.Int, error) {
	c.prices.Add(1)
	return c.Backend.SuggestGasPrice(ctx)
}

func (c *counting) calls() [3]int64 {
	return [3]int64{c.headers.Load(), c.histories.Load(), c.prices.Load()}
}
