package main

import (
	"context"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/rpcpool/rpcfault"
)

// TestLegacyChainEndToEnd runs the engine against a chain that looks as if
// it had no EIP-1559 (no base fee in blocks, no eth_feeHistory), and whose
// block hashes are not go-ethereum's hash of the headers it decodes: the
// engine must price with eth_gasPrice, sign legacy (type 0, EIP-155)
// transactions, confirm them by the node's block hashes, and record the
// fee as gas used × gas price.
func TestLegacyChainEndToEnd(t *testing.T) {
	t.Parallel()
	var node *rpcfault.Upstream
	te := startTestEngineVia(t, 200*time.Millisecond, 2, func(url string) []string {
		node = rpcfault.New(t, url, rpcfault.PreLondon)
		return []string{node.URL}
	})
	var want []wanted
	var ids []string
	for i := range 6 {
		w := wanted{asset: "ETH", to: common.BigToAddress(big.NewInt(int64(0x1E6AC0 + i))), amount: big.NewInt(int64(9000 + i))}
		if i%2 == 1 {
			w.asset = "SUSD"
		}
		want = append(want, w)
		ids = append(ids, createWithRetry(t, te.engine.URL, te.apiKey, w, fmt.Sprintf("legacy-%d", i)))
	}
	waitAllCompleted(t, te.engine.URL(), te.apiKey, ids, 60*time.Second)

	ctx := context.Background()
	c := client.New(te.engine.URL(), te.apiKey)
	eth, err := ethclient.Dial(te.chain.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	for _, id := range ids {
		p, err := c.GetPayout(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		tx, _, err := eth.TransactionByHash(ctx, common.HexToHash(p.TxHash))
		if err != nil {
			t.Fatalf("payout %s: its transaction %s: %v", id, p.TxHash, err)
		}
		if tx.Type() != types.LegacyTxType || tx.ChainId().Uint64() != te.chain.ChainID() {
			t.Fatalf("payout %s was sent as a type %d transaction for chain %v; want legacy (0) with EIP-155 chain id %d",
				id, tx.Type(), tx.ChainId(), te.chain.ChainID())
		}
		r, err := eth.TransactionReceipt(ctx, tx.Hash())
		if err != nil {
			t.Fatal(err)
		}
		fee := new(big.Int).Mul(new(big.Int).SetUint64(r.GasUsed), tx.GasPrice())
		if p.Fee == nil || p.Fee.Cmp(fee) != 0 {
			t.Errorf("payout %s fee %v, want gas used × gas price = %v", id, p.Fee, fee)
		}
	}
	if n := node.Count("eth_gasPrice"); n == 0 {
		t.Error("the engine never asked eth_gasPrice: it did not price as on a legacy chain")
	}
	checkBalances(t, devInfo{RPCURL: te.chain.RPCURL(), Assets: map[string]assetInfo{"SUSD": {Address: ptr(te.chain.SUSD().Hex())}}}, want)
}
