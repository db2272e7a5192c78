package rpcpool

import (
	"context"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/rpcpool/rpcfault"
)

// TestBroadcastBatchReachesEveryUpstream sends a batch of transactions
// while two of three upstreams fail: every transaction is accepted, each
// usable upstream got the batch, and a transaction no node accepts gets
// the node's deterministic answer.
func TestBroadcastBatchReachesEveryUpstream(t *testing.T) {
	c := startChain(t)
	broken := rpcfault.New(t, c.RPCURL(), rpcfault.ServerError)
	good1 := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	good2 := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	p := startPool(t, testConfig(broken.URL, good1.URL, good2.URL))

	var raws [][]byte
	for range 5 {
		raws = append(raws, raw(t, c.nextTx(t)))
	}
	poor, _ := crypto.GenerateKey() // holds nothing: insufficient funds everywhere
	raws = append(raws, raw(t, signTx(t, poor, 0)))

	errs, err := p.BroadcastBatch(context.Background(), raws)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if errs[i] != nil {
			t.Errorf("transaction %d: %v", i, errs[i])
		}
	}
	if kind, _ := evm.Classify(errs[5]); kind != evm.KindInsufficientFunds {
		t.Errorf("unfunded transaction: err = %v, want insufficient funds", errs[5])
	}
	p.Stop() // waits for the upstreams still answering
	for _, u := range []*rpcfault.Upstream{good1, good2} {
		if got := u.Count("eth_sendRawTransaction"); got != len(raws) {
			t.Errorf("a usable upstream got %d of %d transactions", got, len(raws))
		}
	}
	if _, err := c.Commit(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if r, err := c.Client().TransactionReceipt(context.Background(), txHash(t, raws[i])); err != nil || r.Status != 1 {
			t.Errorf("transaction %d not mined: %v", i, err)
		}
	}
}

func txHash(t *testing.T, b []byte) common.Hash {
	t.Helper()
	var tx types.Transaction
	if err := tx.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return tx.Hash()
}
