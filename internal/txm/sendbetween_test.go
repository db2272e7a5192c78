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

// arrivingDuringScan is the node, except that the first time the sender
// reads a block's receipts holding a transaction it waits for, a new payout
// is accepted and the sender woken: a payout arriving while the sender
// tracks a new head.
type arrivingDuringScan struct {
	*evm.Client
	txWatch
	arrive func() *payout.Payout

	mu      sync.Mutex
	arrived *payout.Payout
}

func (c *arrivingDuringScan) BlockReceipts(ctx context.Context, number uint64) ([]*evm.Receipt, error) {
	rs, err := c.Client.BlockReceipts(ctx, number)
	if c.in(rs) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.arrived == nil {
			c.arrived = c.arrive()
		}
	}
	return rs, err
}

func (c *arrivingDuringScan) arrivedPayout() *payout.Payout {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.arrived
}

// txWatch is the transaction a test node looks for in the receipts it
// serves, set from the test's goroutine.
type txWatch struct {
	lock sync.Mutex
	hash common.Hash
}

func (w *txWatch) watchFor(h common.Hash) {
	w.lock.Lock()
	defer w.lock.Unlock()
	w.hash = h
}

// in reports whether rs holds the watched transaction.
func (w *txWatch) in(rs []*evm.Receipt) bool {
	w.lock.Lock()
	defer w.lock.Unlock()
	for _, r := range rs {
		if r != nil && r.TxHash == w.hash {
			return true
		}
	}
	return false
}

// TestPayoutArrivingDuringTrackIsSentBeforeConfirmations: with one
// confirmation, the sender marks a payout mined and completes it in the same
// tracking of a head. A payout that arrives while it reads that block's
// receipts is submitted between the two, not after both.
func TestPayoutArrivingDuringTrackIsSentBeforeConfirmations(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	first := e.create("ETH", common.HexToAddress("0x5e01"), big.NewInt(1e15))
	node := &arrivingDuringScan{Client: e.client}
	dom := e.dom
	dom.Confirmations = 1
	s := e.senderWith(txm.Config{Owner: "a", Chain: dom, Client: node})
	node.arrive = func() *payout.Payout {
		p := e.create("ETH", common.HexToAddress("0x5e02"), big.NewInt(2e15))
		s.Wake()
		return p
	}
	s.Start(ctx)
	defer s.Stop()
	submitted := e.waitStatus(first.ID, payout.StatusSubmitted, 10*time.Second)
	node.watchFor(*submitted.TxHash)
	got := e.mineUntil([]string{first.ID}, 30*time.Second)
	second := node.arrivedPayout()
	if got[first.ID].Status != payout.StatusCompleted || second == nil {
		t.Fatalf("first payout %s, second created %v: want completed, and the second created during the scan", got[first.ID].Status, second != nil)
	}
	e.mineUntil([]string{second.ID}, 30*time.Second)
	evs, err := e.store.ListEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	seq := map[string]int64{}
	for _, ev := range evs {
		seq[ev.ObjectID+" "+ev.Type] = ev.Seq
	}
	sent, completed := seq[second.ID+" payout.submitted"], seq[first.ID+" payout.completed"]
	if sent == 0 || completed == 0 || sent > completed {
		t.Fatalf("second payout submitted at event %d, first completed at event %d: want the submit first", sent, completed)
	}
}
