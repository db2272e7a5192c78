package txm_test

import (
	"context"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/fees"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/txm"
)

// droppingNode is a real node behind a faulty one that accepts some
// transactions and silently drops them, as overloaded providers do.
type droppingNode struct {
	*evm.Client
	mu      sync.Mutex
	drop    func(tx *types.Transaction) bool
	dropped map[common.Hash]bool
}

func (d *droppingNode) SendRaw(ctx context.Context, raws [][]byte) ([]error, error) {
	errs := make([]error, len(raws))
	var pass [][]byte
	var at []int
	d.mu.Lock()
	for i, raw := range raws {
		var tx types.Transaction
		if err := tx.UnmarshalBinary(raw); err == nil && d.drop(&tx) {
			d.dropped[tx.Hash()] = true
			continue
		}
		pass, at = append(pass, raw), append(at, i)
	}
	d.mu.Unlock()
	if len(pass) == 0 {
		return errs, nil
	}
	got, err := d.Client.SendRaw(ctx, pass)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		errs[i] = got[j]
	}
	return errs, nil
}

func (e *env) droppingNode(drop func(tx *types.Transaction) bool) *droppingNode {
	return &droppingNode{Client: e.client, drop: drop, dropped: map[common.Hash]bool{}}
}

// firstAtEachNonce drops the first transaction seen at each nonce (and
// that one whenever it is sent again), letting replacements through.
func firstAtEachNonce() func(tx *types.Transaction) bool {
	first := map[uint64]common.Hash{}
	return func(tx *types.Transaction) bool {
		if h, ok := first[tx.Nonce()]; ok {
			return h == tx.Hash()
		}
		first[tx.Nonce()] = tx.Hash()
		return true
	}
}

// attemptsOf lists a payout's attempts.
func (e *env) attemptsOf(id string) []*payout.Attempt {
	e.t.Helper()
	as, err := e.store.ListAttempts(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return as
}

// eventTypes lists an object's event types, oldest first.
func (e *env) eventTypes(objectID string) []string {
	e.t.Helper()
	evs, err := e.store.ListEvents(context.Background(), 0, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if ev.ObjectID == objectID {
			out = append(out, ev.Type)
		}
	}
	return out
}

func countOf(xs []string, x string) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

// mine commits n blocks, pausing so the sender sees each.
func (e *env) mine(n int) {
	for range n {
		time.Sleep(60 * time.Millisecond)
		e.chain.Commit()
	}
}

func TestDroppedTransactionIsReplaced(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// The node drops the first transaction it gets at each nonce: the
		// chain never sees it, the wallet's queue stalls, and after the
		// standard wait (3 blocks) the sender signs a replacement with
		// both fees raised by at least geth's 10%.
		node := e.droppingNode(firstAtEachNonce())
		p := e.create("ETH", common.HexToAddress("0x00000000000000000000000000000000000b0001"), big.NewInt(1e15))
		s := e.senderWith(txm.Config{Owner: "a", Client: node})
		s.Start(ctx)
		defer s.Stop()
		got := e.mineUntil([]string{p.ID}, 30*time.Second)[p.ID]
		as := e.attemptsOf(p.ID)
		if got.Status != payout.StatusCompleted || len(as) < 2 {
			t.Fatalf("payout %s with %d attempts, want completed after a replacement", got.Status, len(as))
		}
		a0, a1 := as[0], as[1]
		if a1.Nonce != a0.Nonce || a1.Kind != payout.AttemptTransfer {
			t.Errorf("replacement at nonce %d (%s), want nonce %d transfer", a1.Nonce, a1.Kind, a0.Nonce)
		}
		if a1.MaxFeePerGas.Cmp(fees.MinReplacement(a0.MaxFeePerGas)) < 0 || a1.MaxPriorityFeePerGas.Cmp(fees.MinReplacement(a0.MaxPriorityFeePerGas)) < 0 {
			t.Errorf("replacement fees %s/%s, want at least 110%% of %s/%s", a1.MaxFeePerGas, a1.MaxPriorityFeePerGas, a0.MaxFeePerGas, a0.MaxPriorityFeePerGas)
		}
		if *got.TxHash != as[len(as)-1].TxHash || !node.dropped[a0.TxHash] {
			t.Errorf("mined %s; want the last attempt (the first was dropped: %v)", got.TxHash.Hex(), node.dropped[a0.TxHash])
		}
		if n := countOf(e.eventTypes(p.ID), payout.EventReplaced); n != len(as)-1 {
			t.Errorf("%d payout.replaced events, want %d", n, len(as)-1)
		}
		if bal, _ := e.eth.BalanceAt(ctx, p.To, nil); bal.Cmp(p.Amount) != 0 {
			t.Errorf("recipient holds %s, want %s (paid once)", bal, p.Amount)
		}
	})
}

func TestFeeCapMakesStuckAndSpeedUpUnsticks(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// Every first attempt is dropped; the cap equals today's quote, so
		// no replacement fits under it: the payout becomes stuck with the
		// reason. Raising its fee cap (speed-up) lets the replacement go.
		node := e.droppingNode(firstAtEachNonce())
		probe := e.oracle(fees.Config{})
		q, err := probe.Quote(ctx, fees.Standard)
		if err != nil {
			t.Fatal(err)
		}
		capped := e.oracle(fees.Config{Caps: fees.Caps{MaxFeePerGas: q.MaxFee()}})
		p := e.create("ETH", common.HexToAddress("0x00000000000000000000000000000000000b0002"), big.NewInt(1e15))
		s := e.senderWith(txm.Config{Owner: "a", Client: node, Fees: capped})
		s.Start(ctx)
		defer s.Stop()
		deadline := time.Now().Add(20 * time.Second)
		var stuck *payout.Payout
		for time.Now().Before(deadline) {
			e.mine(1)
			if stuck, _ = e.store.GetPayout(ctx, p.ID); stuck.Status == payout.StatusStuck {
				break
			}
		}
		if stuck.Status != payout.StatusStuck || stuck.Reason != payout.ReasonFeeCapReached || stuck.ReasonDetail == "" {
			t.Fatalf("payout %s %q %q, want stuck with reason %s", stuck.Status, stuck.Reason, stuck.ReasonDetail, payout.ReasonFeeCapReached)
		}
		if n := len(e.attemptsOf(p.ID)); n != 1 {
			t.Errorf("%d attempts while capped, want 1", n)
		}
		e.mine(5) // still stuck: nothing bumps past the cap
		if got, _ := e.store.GetPayout(ctx, p.ID); got.Status != payout.StatusStuck {
			t.Errorf("status %s after more blocks, want stuck", got.Status)
		}
		if _, err := e.store.RaiseFeeCap(ctx, p.ID, big.NewInt(1e17)); err != nil {
			t.Fatal(err)
		}
		got := e.mineUntil([]string{p.ID}, 30*time.Second)[p.ID]
		if got.Status != payout.StatusCompleted || len(e.attemptsOf(p.ID)) < 2 {
			t.Fatalf("after speed-up: %s with %d attempts, want completed by a replacement", got.Status, len(e.attemptsOf(p.ID)))
		}
	})
}

func TestCancelAfterBroadcast(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		self := e.dom.HotWallet
		// won: its transfer never reaches the chain, so the cancel takes
		// the nonce. lost: the cancel never reaches the chain, so the
		// transfer is mined and the payout completes, saying so.
		won := e.create("ETH", common.HexToAddress("0x00000000000000000000000000000000000c0001"), big.NewInt(1e15))
		wonNonce := uint64(0)
		node := e.droppingNode(func(tx *types.Transaction) bool {
			toSelf := tx.To() != nil && *tx.To() == self
			if tx.Nonce() == wonNonce {
				return !toSelf
			}
			return toSelf
		})
		n, err := e.eth.PendingNonceAt(ctx, self)
		if err != nil {
			t.Fatal(err)
		}
		wonNonce = n
		s := e.senderWith(txm.Config{Owner: "a", Client: node})
		s.Start(ctx)
		defer s.Stop()
		e.waitStatus(won.ID, payout.StatusSubmitted, 20*time.Second)
		lost := e.create("ETH", common.HexToAddress("0x00000000000000000000000000000000000c0002"), big.NewInt(1e15))
		s.Wake()
		e.waitStatus(lost.ID, payout.StatusSubmitted, 20*time.Second)
		for _, id := range []string{won.ID, lost.ID} {
			if p, err := e.store.CancelPayout(ctx, id); err != nil || !p.CancelRequested {
				t.Fatalf("CancelPayout(%s) = %v, %v", id, p, err)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(e.attemptsOf(won.ID)) < 2 || len(e.attemptsOf(lost.ID)) < 2 {
			if time.Now().After(deadline) {
				t.Fatal("no cancel attempts signed within 10s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		got := e.mineUntil([]string{won.ID, lost.ID}, 30*time.Second)
		w := got[won.ID]
		as := e.attemptsOf(won.ID)
		if w.Status != payout.StatusCancelled || as[len(as)-1].Kind != payout.AttemptCancel || *w.TxHash != as[len(as)-1].TxHash {
			t.Errorf("won: %s tx %s, want cancelled by its cancel attempt", w.Status, w.TxHash.Hex())
		}
		if bal, _ := e.eth.BalanceAt(ctx, won.To, nil); bal.Sign() != 0 {
			t.Errorf("a cancelled payout's recipient holds %s", bal)
		}
		l := got[lost.ID]
		if l.Status != payout.StatusCompleted || l.Reason != payout.ReasonCancelFailed {
			t.Errorf("lost: %s %q, want completed with reason %s", l.Status, l.Reason, payout.ReasonCancelFailed)
		}
		if bal, _ := e.eth.BalanceAt(ctx, lost.To, nil); bal.Cmp(lost.Amount) != 0 {
			t.Errorf("the completed payout's recipient holds %s, want %s", bal, lost.Amount)
		}
	})
}

func TestForeignNonceStopsTheSender(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// The payout's transaction never reaches the chain; meanwhile
		// someone else with the key uses its nonce. The payout is marked
		// stuck naming that transaction, an alert is written, nothing new
		// is sent until an operator cancels it, then sending resumes.
		var victim uint64
		var once sync.Once
		node := e.droppingNode(func(tx *types.Transaction) bool {
			once.Do(func() { victim = tx.Nonce() })
			return tx.Nonce() == victim
		})
		p := e.create("ETH", common.HexToAddress("0x00000000000000000000000000000000000d0001"), big.NewInt(1e15))
		s := e.senderWith(txm.Config{Owner: "a", Client: node})
		s.Start(ctx)
		defer s.Stop()
		e.waitStatus(p.ID, payout.StatusSubmitted, 20*time.Second)
		foreign := e.sendAt(e.key, victim, common.HexToAddress("0x00000000000000000000000000000000000d0bad"), big.NewInt(1), nil, gwei(1))
		e.waitPending(e.dom.HotWallet, 1)
		e.chain.Commit()
		deadline := time.Now().Add(20 * time.Second)
		got := e.store
		var stuck *payout.Payout
		for time.Now().Before(deadline) {
			e.mine(1)
			if stuck, _ = got.GetPayout(ctx, p.ID); stuck.Status == payout.StatusStuck {
				break
			}
		}
		if stuck.Status != payout.StatusStuck || stuck.Reason != payout.ReasonForeignNonce || !containsHash(stuck.ReasonDetail, foreign.Hash()) {
			t.Fatalf("payout %s %q %q, want stuck naming %s", stuck.Status, stuck.Reason, stuck.ReasonDetail, foreign.Hash().Hex())
		}
		if n := countOf(e.eventTypes(payout.WalletObjectID(e.dom.ChainID, e.dom.HotWallet)), payout.EventWalletForeignNonce); n != 1 {
			t.Errorf("%d %s events, want 1", n, payout.EventWalletForeignNonce)
		}
		next := e.create("ETH", common.HexToAddress("0x00000000000000000000000000000000000d0002"), big.NewInt(1e15))
		s.Wake()
		e.mine(5)
		if q, _ := e.store.GetPayout(ctx, next.ID); q.Status != payout.StatusQueued {
			t.Fatalf("a halted sender sent a new payout: %s", q.Status)
		}
		if c, err := e.store.CancelPayout(ctx, p.ID); err != nil || c.Status != payout.StatusCancelled {
			t.Fatalf("cancel the payout whose nonce was taken: %v, %v", c, err)
		}
		final := e.mineUntil([]string{next.ID}, 30*time.Second)[next.ID]
		if final.Status != payout.StatusCompleted {
			t.Errorf("after the operator cancelled: %s, want completed", final.Status)
		}
		if bal, _ := e.eth.BalanceAt(ctx, p.To, nil); bal.Sign() != 0 {
			t.Errorf("the displaced payout's recipient holds %s, want nothing", bal)
		}
	})
}

func containsHash(s string, h common.Hash) bool {
	return len(s) > 0 && (contains(s, h.Hex()))
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestInsufficientFundsWaitsForTopUp(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// A second wallet holds 1 ETH and 100 SUSD; payouts of 2 ETH and
		// 200 SUSD wait with insufficient_funds (no nonce used, one
		// payout.waiting event each), the low-balance alert fires, and a
		// top-up lets both go.
		key2, _ := crypto.GenerateKey()
		w2 := crypto.PubkeyToAddress(key2.PublicKey)
		eth := func(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e18)) }
		e.direct(e.key, w2, eth(1), nil)
		e.direct(e.key, e.chain.SUSD(), new(big.Int), erc20Call("0xa9059cbb", w2, big.NewInt(100e6)))
		dom := e.dom
		dom.HotWallet, dom.HotWallets = w2, nil
		create := func(asset string, to string, amount *big.Int) *payout.Payout {
			now := time.Now()
			p := &payout.Payout{ID: e.ids.New("po_", now), Status: payout.StatusQueued, Chain: "sandbox", ChainID: dom.ChainID,
				Asset: asset, To: common.HexToAddress(to), Amount: amount, Sender: w2, Version: 1, CreatedAt: now, UpdatedAt: now}
			if err := e.store.CreatePayout(ctx, p, nil); err != nil {
				t.Fatal(err)
			}
			return p
		}
		native := create("ETH", "0x00000000000000000000000000000000000e0001", eth(2))
		token := create("SUSD", "0x00000000000000000000000000000000000e0002", big.NewInt(200e6))
		s := e.senderWith(txm.Config{Owner: "a", Chain: dom, Signer: evm.KeySigner{Key: key2},
			LowBalance: map[string]*big.Int{"ETH": eth(3)}})
		s.Start(ctx)
		defer s.Stop()
		e.mine(4)
		for _, p := range []*payout.Payout{native, token} {
			got, _ := e.store.GetPayout(ctx, p.ID)
			if got.Status != payout.StatusQueued || got.Reason != payout.ReasonInsufficientFunds || got.ReasonDetail == "" {
				t.Errorf("%s payout: %s %q, want queued with %s", p.Asset, got.Status, got.Reason, payout.ReasonInsufficientFunds)
			}
			if n := countOf(e.eventTypes(p.ID), payout.EventWaiting); n != 1 {
				t.Errorf("%s payout: %d payout.waiting events over 4 blocks, want 1", p.Asset, n)
			}
		}
		if _, used, _ := e.store.MaxNonce(ctx, dom.ChainID, w2); used {
			t.Error("a nonce was used for a payout the wallet cannot cover")
		}
		if n := countOf(e.eventTypes(payout.WalletObjectID(dom.ChainID, w2)), payout.EventWalletLowBalance); n != 1 {
			t.Errorf("%d wallet.low_balance events, want 1", n)
		}
		if v, ok := s.Available("SUSD"); !ok || v.Cmp(big.NewInt(100e6)) != 0 {
			t.Errorf("Available(SUSD) = %v, %v; want 100e6 (nothing in flight)", v, ok)
		}
		if v, ok := s.Available("ETH"); !ok || v.Cmp(eth(1)) > 0 || v.Cmp(eth(1)) < 0 {
			t.Errorf("Available(ETH) = %v, %v; want 1 ETH", v, ok)
		}
		e.direct(e.key, w2, eth(5), nil)
		e.direct(e.key, e.chain.SUSD(), new(big.Int), erc20Call("0xa9059cbb", w2, big.NewInt(500e6)))
		got := e.mineUntil([]string{native.ID, token.ID}, 30*time.Second)
		for _, p := range got {
			if p.Status != payout.StatusCompleted || p.Reason != "" {
				t.Errorf("after the top-up: %s %s %q, want completed", p.Asset, p.Status, p.Reason)
			}
		}
		if bal := e.tokenBalance(token.To); bal.Cmp(token.Amount) != 0 {
			t.Errorf("token recipient holds %s, want %s", bal, token.Amount)
		}
	})
}
