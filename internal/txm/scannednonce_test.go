package txm_test

import (
	"context"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/txm"
)

// minedBeforeNonceRead is the node, except that a block is mined just
// before the sender's first broadcast (so that the next head does not hold
// it) and another just before the sender next reads its latest nonce: that
// block, holding the broadcast transactions, arrives between the head's
// receipt scan and the nonce read, as it does when tracking a head takes
// part of a block time. It counts the receipts looked up by hash.
type minedBeforeNonceRead struct {
	*evm.Client
	mine func()

	mu       sync.Mutex
	sent     bool
	mined    bool
	lookedUp int
}

func (c *minedBeforeNonceRead) SendRaw(ctx context.Context, raws [][]byte) ([]error, error) {
	c.mu.Lock()
	if !c.sent {
		c.sent = true
		c.mine()
	}
	c.mu.Unlock()
	return c.Client.SendRaw(ctx, raws)
}

func (c *minedBeforeNonceRead) Nonce(ctx context.Context, account common.Address, tag string) (uint64, error) {
	c.mu.Lock()
	if c.sent && !c.mined && tag == "latest" {
		c.mined = true
		c.mine()
	}
	c.mu.Unlock()
	return c.Client.Nonce(ctx, account, tag)
}

func (c *minedBeforeNonceRead) Receipts(ctx context.Context, hashes []common.Hash) ([]*evm.Receipt, error) {
	c.mu.Lock()
	c.lookedUp += len(hashes)
	c.mu.Unlock()
	return c.Client.Receipts(ctx, hashes)
}

func (c *minedBeforeNonceRead) counts() (mined bool, lookedUp int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mined, c.lookedUp
}

// TestBlockMinedAfterTheScanIsNotLookedUpByHash: payouts mined in a block
// that appears after the sender scanned its head, but before it read the
// wallet's nonce, are settled by the next head's scan. Their nonces are
// used but the sender has not read their block yet: looking each receipt
// up by hash would cost the node a walk of the block per payout.
func TestBlockMinedAfterTheScanIsNotLookedUpByHash(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	ids := e.createNative(5, 0x5c00, big.NewInt(1e15))
	node := &minedBeforeNonceRead{Client: e.client, mine: func() { e.chain.Commit() }}
	s := e.senderWith(txm.Config{Owner: "a", Client: node})
	s.Start(ctx)
	defer s.Stop()
	waitFor(t, "a block mined before a nonce read", func() bool { mined, _ := node.counts(); return mined })
	got := e.mineUntil(ids, 30*time.Second)
	for _, id := range ids {
		if got[id].Status != payout.StatusCompleted {
			t.Fatalf("payout %s is %s, want completed", id, got[id].Status)
		}
	}
	if _, n := node.counts(); n != 0 {
		t.Fatalf("the sender looked up %d receipts by hash; the block scan settles every payout", n)
	}
}
