package txm_test

import (
	"context"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/txm"
)

// slowBroadcast is the node, except that broadcast number hold (from 1)
// waits until the test lets it through: a node slow to answer
// eth_sendRawTransaction.
type slowBroadcast struct {
	*evm.Client
	hold int
	gate *gate // opened to let the held broadcast through

	mu    sync.Mutex
	calls int
}

func (c *slowBroadcast) SendRaw(ctx context.Context, raws [][]byte) ([]error, error) {
	c.mu.Lock()
	c.calls++
	held := c.calls == c.hold
	c.mu.Unlock()
	if held {
		if err := c.gate.wait(ctx); err != nil {
			return nil, err
		}
	}
	return c.Client.SendRaw(ctx, raws)
}

func (c *slowBroadcast) sends() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// TestNextRoundIsStoredWhileABroadcastIsOut: while the node takes its time
// to answer a small round's broadcast, the sender plans, signs and stores
// the next round; it broadcasts that round only once the first is
// answered, so the node gets the nonces in order. All complete, each with
// the transaction first signed for it.
func TestNextRoundIsStoredWhileABroadcastIsOut(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	node := &slowBroadcast{Client: e.client, hold: 2, gate: newGate(t)}
	// Between reads of the chain (every Poll) the loop does not wait for a
	// broadcast out; a long Poll keeps this test between two of them.
	s := e.senderWith(txm.Config{Owner: "a", Client: node, Poll: 5 * time.Second})
	pay := func(to string, amount int64) *payout.Payout {
		p := e.create("ETH", common.HexToAddress(to), big.NewInt(amount))
		s.Wake()
		return p
	}
	first := pay("0x5e01", 1e15)
	s.Start(ctx)
	defer s.Stop()
	sent := []*payout.Payout{e.waitStatus(first.ID, payout.StatusSubmitted, 10*time.Second)}
	waitFor(t, "the first broadcast", func() bool { return node.sends() == 1 })

	second := pay("0x5e02", 2e15)
	sent = append(sent, e.waitStatus(second.ID, payout.StatusSubmitted, 5*time.Second))
	waitFor(t, "the second broadcast to reach the node", func() bool { return node.sends() == 2 })
	third := pay("0x5e03", 3e15)
	sent = append(sent, e.waitStatus(third.ID, payout.StatusSubmitted, 5*time.Second))
	time.Sleep(200 * time.Millisecond)
	if n := node.sends(); n != 2 {
		t.Fatalf("%d broadcasts while the second is unanswered: want the third round to wait for it", n)
	}

	node.gate.open()
	got := e.mineUntil([]string{first.ID, second.ID, third.ID}, 30*time.Second)
	for _, p := range sent {
		if got[p.ID].Status != payout.StatusCompleted || *got[p.ID].TxHash != *p.TxHash {
			t.Fatalf("payout %s is %s with %s, submitted with %s: want completed with the transaction first signed",
				p.ID, got[p.ID].Status, got[p.ID].TxHash, p.TxHash)
		}
	}
}

// TestBroadcastIsTimedWhenTheNodeAnswers: a payout's accept-to-broadcast
// time is recorded once the node answers its broadcast, not when the loop
// next looks at the answers (up to a Poll later): the figure, and what
// watches it, see the broadcast when it happens.
func TestBroadcastIsTimedWhenTheNodeAnswers(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	node := &slowBroadcast{Client: e.client} // holds nothing; counts
	reg := prometheus.NewRegistry()
	s := e.senderWith(txm.Config{Owner: "a", Client: node, Poll: 5 * time.Second, Metrics: txm.NewMetrics(reg)})
	e.create("ETH", common.HexToAddress("0x5e11"), big.NewInt(1e15))
	s.Start(ctx)
	defer s.Stop()
	waitFor(t, "the first payout's broadcast to be timed", func() bool { return broadcastsTimed(t, reg) == 1 })

	// The loop now waits (no new head, a long Poll) after the next round.
	e.create("ETH", common.HexToAddress("0x5e12"), big.NewInt(1e15))
	s.Wake()
	waitFor(t, "the second broadcast", func() bool { return node.sends() == 2 })
	for deadline := time.Now().Add(time.Second); broadcastsTimed(t, reg) != 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d accept-to-broadcast times a second after the second broadcast, want 2", broadcastsTimed(t, reg))
		}
	}
}

// broadcastsTimed is how many accept-to-broadcast times reg holds.
func broadcastsTimed(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	return uint64(gathered(t, reg, "sluice_payout_accept_to_broadcast_seconds", nil))
}
