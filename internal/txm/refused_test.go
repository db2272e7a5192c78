package txm_test

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/txm"
)

// refusingNode is a real node behind one that refuses some transactions
// with an error a fee bump does not cure (geth's --rpc.txfeecap answer).
type refusingNode struct {
	*evm.Client
	refuse func(tx *types.Transaction) bool
}

const nodeCapRefusal = "tx fee (2.10 ether) exceeds the configured cap (1.00 ether)"

func (r *refusingNode) SendRaw(ctx context.Context, raws [][]byte) ([]error, error) {
	errs := make([]error, len(raws))
	var pass [][]byte
	var at []int
	for i, raw := range raws {
		var tx types.Transaction
		if err := tx.UnmarshalBinary(raw); err == nil && r.refuse(&tx) {
			errs[i] = errors.New(nodeCapRefusal)
			continue
		}
		pass, at = append(pass, raw), append(at, i)
	}
	if len(pass) > 0 {
		got, err := r.Client.SendRaw(ctx, pass)
		if err != nil {
			return nil, err
		}
		for j, i := range at {
			errs[i] = got[j]
		}
	}
	return errs, nil
}

// waitStuckMining mines a block at a time until p is stuck.
func (e *env) waitStuckMining(id string, timeout time.Duration) *payout.Payout {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		e.mine(1)
		if p, _ := e.store.GetPayout(context.Background(), id); p.Status == payout.StatusStuck {
			return p
		}
	}
	p, _ := e.store.GetPayout(context.Background(), id)
	e.t.Fatalf("payout %s is %s after %s, want stuck", id, p.Status, timeout)
	return nil
}

// TestRefusedBroadcastIsExplainedAndRecovers: while every node refuses the
// payout's transaction, it becomes stuck with the node's words; once a
// node takes it, it goes back to submitted and completes, paid once.
func TestRefusedBroadcastIsExplainedAndRecovers(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var refusing atomic.Bool
		refusing.Store(true)
		node := &refusingNode{Client: e.client, refuse: func(*types.Transaction) bool { return refusing.Load() }}
		p := e.create("ETH", common.HexToAddress("0x00000000000000000000000000000000000d0001"), big.NewInt(1e15))
		s := e.senderWith(txm.Config{Owner: "a", Client: node})
		s.Start(ctx)
		defer s.Stop()

		stuck := e.waitStuckMining(p.ID, 20*time.Second)
		if stuck.Reason != payout.ReasonBroadcastRefused || !strings.Contains(stuck.ReasonDetail, nodeCapRefusal) ||
			!strings.Contains(stuck.ReasonDetail, "fee_exceeds_node_cap") {
			t.Fatalf("stuck with %q: %q; want %s quoting the node", stuck.Reason, stuck.ReasonDetail, payout.ReasonBroadcastRefused)
		}
		if n := len(e.attemptsOf(p.ID)); n != 1 {
			t.Errorf("%d attempts while refused, want 1: a fee bump does not cure this", n)
		}

		refusing.Store(false)
		got := e.mineUntil([]string{p.ID}, 30*time.Second)[p.ID]
		if got.Status != payout.StatusCompleted || got.Reason != "" {
			t.Fatalf("after the node took it: %s %q, want completed with no reason", got.Status, got.Reason)
		}
		types := e.eventTypes(p.ID)
		if countOf(types, "payout.stuck") != 1 || countOf(types, "payout.submitted") != 2 {
			t.Errorf("events %v; want one payout.stuck and two payout.submitted (sent, then taken)", types)
		}
		if bal, _ := e.eth.BalanceAt(ctx, p.To, nil); bal.Cmp(p.Amount) != 0 {
			t.Errorf("recipient holds %s, want %s (paid once)", bal, p.Amount)
		}
	})
}

// TestCancelFillsARefusedNonce: a transaction the nodes never take blocks
// every later nonce of the wallet. Cancelling its payout fills the nonce
// with a zero-value self-transfer, and the payout behind it completes.
func TestCancelFillsARefusedNonce(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		self := e.dom.HotWallet
		blocked := e.create("ETH", common.HexToAddress("0x00000000000000000000000000000000000d0002"), big.NewInt(1e15))
		var blockedNonce atomic.Int64
		blockedNonce.Store(-1)
		node := &refusingNode{Client: e.client, refuse: func(tx *types.Transaction) bool {
			toSelf := tx.To() != nil && *tx.To() == self
			return !toSelf && int64(tx.Nonce()) == blockedNonce.Load()
		}}
		n, err := e.eth.PendingNonceAt(ctx, self)
		if err != nil {
			t.Fatal(err)
		}
		blockedNonce.Store(int64(n))
		s := e.senderWith(txm.Config{Owner: "a", Client: node})
		s.Start(ctx)
		defer s.Stop()
		e.waitStuckMining(blocked.ID, 20*time.Second)

		behind := e.create("ETH", common.HexToAddress("0x00000000000000000000000000000000000d0003"), big.NewInt(2e15))
		s.Wake()
		e.waitStatus(behind.ID, payout.StatusSubmitted, 20*time.Second)
		e.mine(3)
		if got, _ := e.store.GetPayout(ctx, behind.ID); got.Status != payout.StatusSubmitted {
			t.Fatalf("the payout behind the refused nonce is %s, want submitted (waiting for the gap)", got.Status)
		}

		if p, err := e.store.CancelPayout(ctx, blocked.ID); err != nil || !p.CancelRequested {
			t.Fatalf("CancelPayout = %v, %v", p, err)
		}
		got := e.mineUntil([]string{blocked.ID, behind.ID}, 30*time.Second)
		as := e.attemptsOf(blocked.ID)
		if b := got[blocked.ID]; b.Status != payout.StatusCancelled || as[len(as)-1].Kind != payout.AttemptCancel {
			t.Errorf("the refused payout is %s (last attempt %s), want cancelled by a self-transfer", b.Status, as[len(as)-1].Kind)
		}
		if b := got[behind.ID]; b.Status != payout.StatusCompleted || b.Nonce == nil || *b.Nonce != uint64(blockedNonce.Load())+1 {
			t.Errorf("the payout behind is %s at nonce %v, want completed at %d", b.Status, b.Nonce, blockedNonce.Load()+1)
		}
		if bal, _ := e.eth.BalanceAt(ctx, blocked.To, nil); bal.Sign() != 0 {
			t.Errorf("the cancelled payout's recipient holds %s", bal)
		}
	})
}
