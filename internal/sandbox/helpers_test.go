package sandbox

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"
	"github.com/sluicepay/sluice/contracts"
)

// testKey is the hot wallet of every test chain: a fixed key keeps genesis
// hashes stable across runs.
var testKey = mustKey("8a1f9a8f95be41cd7ccb6168179afb4504aefe388d1e14474d32c45c72ce7b7a")

func mustKey(hexKey string) *ecdsa.PrivateKey {
	k, err := crypto.HexToECDSA(hexKey)
	if err != nil {
		panic(err)
	}
	return k
}

// startChain starts a chain on a free port and closes it when the test ends.
func startChain(t *testing.T, cfg Config) *Chain {
	t.Helper()
	if cfg.HotWalletKey == nil {
		cfg.HotWalletKey = testKey
	}
	if cfg.RPCAddr == "" {
		cfg.RPCAddr = "127.0.0.1:0"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dial connects to the chain over HTTP, as the engine does.
func dial(t *testing.T, c *Chain) *ethclient.Client {
	t.Helper()
	cl, err := ethclient.Dial(c.RPCURL())
	if err != nil {
		t.Fatalf("dial %s: %v", c.RPCURL(), err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// sendTx signs and sends an EIP-1559 transaction from key over cl.
func sendTx(t *testing.T, cl *ethclient.Client, key *ecdsa.PrivateKey, nonce uint64, to common.Address, value *big.Int, data []byte, gas uint64) *types.Transaction {
	t.Helper()
	tip := big.NewInt(params.GWei)
	tx := types.NewTx(&types.DynamicFeeTx{
		ChainID: big.NewInt(ChainID), Nonce: nonce, To: &to, Value: value, Data: data,
		GasTipCap: tip, GasFeeCap: big.NewInt(100 * params.GWei), Gas: gas,
	})
	signed, err := types.SignTx(tx, types.LatestSignerForChainID(big.NewInt(ChainID)), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SendTransaction(context.Background(), signed); err != nil {
		t.Fatalf("send tx nonce %d: %v", nonce, err)
	}
	return signed
}

// receipt returns the receipt of a mined transaction.
func receipt(t *testing.T, cl *ethclient.Client, tx *types.Transaction) *types.Receipt {
	t.Helper()
	r, err := cl.TransactionReceipt(context.Background(), tx.Hash())
	if err != nil {
		t.Fatalf("receipt of %s: %v", tx.Hash(), err)
	}
	return r
}

// commit makes a block and fails the test if it cannot.
func commit(t *testing.T, c *Chain) common.Hash {
	t.Helper()
	h, err := c.Commit()
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return h
}

// susdBalance reads SUSD.balanceOf(who) with eth_call.
func susdBalance(t *testing.T, cl *ethclient.Client, token, who common.Address) *big.Int {
	t.Helper()
	return callUint(t, cl, token, "balanceOf", who)
}

func callUint(t *testing.T, cl *ethclient.Client, token common.Address, method string, args ...any) *big.Int {
	t.Helper()
	a := contracts.SUSDABI()
	data, err := a.Pack(method, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cl.CallContract(context.Background(), ethereum.CallMsg{To: &token, Data: data}, nil)
	if err != nil {
		t.Fatalf("call %s: %v", method, err)
	}
	vals, err := a.Unpack(method, out)
	if err != nil {
		t.Fatalf("unpack %s: %v", method, err)
	}
	return vals[0].(*big.Int)
}

func susdTransferData(t testing.TB, to common.Address, amount *big.Int) []byte {
	t.Helper()
	a := contracts.SUSDABI()
	data, err := a.Pack("transfer", to, amount)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
