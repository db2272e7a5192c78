package txm_test

import (
	"context"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/txm"
)

// slowReceipts is the node, except that reading the receipts of a block
// holding a watched transaction waits until the test lets it answer: a
// node slow to build a busy block's receipts.
type slowReceipts struct {
	*evm.Client
	txWatch
	gate *gate // opened to let the held read answer
}

func (c *slowReceipts) BlockReceipts(ctx context.Context, number uint64) ([]*evm.Receipt, error) {
	rs, err := c.Client.BlockReceipts(ctx, number)
	if c.in(rs) {
		if err := c.gate.wait(ctx); err != nil {
			return nil, err
		}
	}
	return rs, err
}

// TestPayoutIsSentWhileABlocksReceiptsAreRead: while the node takes its
// time to answer for a new block's receipts, the sender goes on sending:
// a payout accepted meanwhile is broadcast before those receipts arrive,
// and the payout in that block completes once they do.
func TestPayoutIsSentWhileABlocksReceiptsAreRead(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	first := e.create("ETH", common.HexToAddress("0x5f01"), big.NewInt(1e15))
	node := &slowReceipts{Client: e.client, gate: newGate(t)}
	dom := e.dom
	dom.Confirmations = 1
	s := e.senderWith(txm.Config{Owner: "a", Chain: dom, Client: node})
	s.Start(ctx)
	defer s.Stop()
	submitted := e.waitStatus(first.ID, payout.StatusSubmitted, 10*time.Second)
	node.watchFor(*submitted.TxHash)
	if _, err := e.chain.Commit(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sender to read the block's receipts", node.gate.reached)

	second := e.create("ETH", common.HexToAddress("0x5f02"), big.NewInt(2e15))
	s.Wake()
	e.waitStatus(second.ID, payout.StatusSubmitted, 5*time.Second)
	if p, err := e.store.GetPayout(ctx, first.ID); err != nil || p.Status != payout.StatusSubmitted {
		t.Fatalf("first payout %v (%v) while its block's receipts are held: want still submitted", p.Status, err)
	}

	node.gate.open()
	got := e.mineUntil([]string{first.ID, second.ID}, 30*time.Second)
	for _, id := range []string{first.ID, second.ID} {
		if got[id].Status != payout.StatusCompleted {
			t.Fatalf("payout %s is %s, want completed", id, got[id].Status)
		}
	}
}

// minedOnBroadcast is slowReceipts whose first broadcast is mined at once
// (and its first transaction watched), so that the sender meets that block
// at the tracking right after the round that sent it.
type minedOnBroadcast struct {
	*slowReceipts
	mine func()

	once sync.Once
}

func (c *minedOnBroadcast) SendRaw(ctx context.Context, raws [][]byte) ([]error, error) {
	errs, err := c.slowReceipts.SendRaw(ctx, raws)
	c.once.Do(func() {
		var tx types.Transaction
		if tx.UnmarshalBinary(raws[0]) == nil {
			c.watchFor(tx.Hash())
		}
		c.mine()
	})
	return errs, err
}

// TestBulkRoundWaitsForTheBlocksReceipts: after a round of many payouts
// (payouts arrive faster than small rounds pay off) the sender waits for a
// block's receipts instead of sending on in small rounds; a payout accepted
// meanwhile goes in the round after them.
func TestBulkRoundWaitsForTheBlocksReceipts(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	bulk := e.createNative(20, 0x5d00, big.NewInt(1e12))
	slow := &slowReceipts{Client: e.client, gate: newGate(t)}
	node := &minedOnBroadcast{slowReceipts: slow, mine: func() { e.chain.Commit() }}
	s := e.senderWith(txm.Config{Owner: "a", Client: node})
	s.Start(ctx)
	defer s.Stop()
	waitFor(t, "the sender to read the block's receipts", slow.gate.reached)

	late := e.create("ETH", common.HexToAddress("0x5d99"), big.NewInt(1e12))
	s.Wake()
	time.Sleep(time.Second)
	if p, err := e.store.GetPayout(ctx, late.ID); err != nil || p.Status != payout.StatusQueued {
		t.Fatalf("payout accepted while the receipts after a bulk round are read is %v (%v): want queued until they arrive", p.Status, err)
	}
	slow.gate.open()
	got := e.mineUntil(append(bulk, late.ID), 30*time.Second)
	for id, p := range got {
		if p.Status != payout.StatusCompleted {
			t.Fatalf("payout %s is %s, want completed", id, p.Status)
		}
	}
}
