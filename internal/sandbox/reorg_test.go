package sandbox

import (
	"context"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// TestReorgWithPendingTransactions drops two blocks while the pool holds a
// pending transaction (Fork would refuse) and checks that the dropped
// block's transaction is mined again on the new chain, with the pending one.
func TestReorgWithPendingTransactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := startChain(t, Config{})
	cl := c.Client()
	to := common.Address{0xAB}
	mined := sendTx(t, cl, testKey, 1, to, big.NewInt(5), nil, 21000)
	commit(t, c)
	old := receipt(t, cl, mined)
	commit(t, c)
	head, _ := cl.BlockNumber(ctx)
	pending := sendTx(t, cl, testKey, 2, to, big.NewInt(7), nil, 21000)

	dropped, err := c.Reorg(2)
	if err != nil {
		t.Fatalf("Reorg: %v", err)
	}
	if len(dropped) != 2 || dropped[0].NumberU64() != head-1 || dropped[0].Hash() != old.BlockHash {
		t.Fatalf("dropped %d blocks, first %v; want the 2 top blocks, the first holding the transaction", len(dropped), dropped)
	}
	if n, _ := cl.BlockNumber(ctx); n != head-2 {
		t.Fatalf("head after Reorg(2) = %d, want %d", n, head-2)
	}
	if bal, _ := cl.BalanceAt(ctx, to, nil); bal.Sign() != 0 {
		t.Fatalf("the reorged transfer still counts: balance %s", bal)
	}
	commit(t, c)
	again := receipt(t, cl, mined)
	if again.BlockHash == old.BlockHash {
		t.Error("the transaction is still in the dropped block")
	}
	receipt(t, cl, pending)
	if bal, _ := cl.BalanceAt(ctx, to, nil); bal.Int64() != 12 {
		t.Errorf("balance after the reorg = %s, want 12 (both transfers once)", bal)
	}
	if _, err := c.Reorg(100); err == nil {
		t.Error("Reorg deeper than the chain succeeded")
	}
}
