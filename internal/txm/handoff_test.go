package txm_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/signer"
	"github.com/sluicepay/sluice/internal/txm"
)

// senderHandoff hands payouts to one other sender when it can cover them.
type senderHandoff struct {
	to   *txm.Sender
	addr common.Address
}

func (h senderHandoff) Target(p *payout.Payout) (common.Address, bool) {
	avail, known := h.to.Available(p.Asset)
	return h.addr, known && avail.Cmp(p.Amount) >= 0
}

func (h senderHandoff) Moved(string, common.Address) { h.to.Wake() }

// TestDryWalletHandsPayoutsToAnother: a hot wallet that cannot cover its
// queued payouts hands them to a wallet of the chain that can, which pays
// them; the dry wallet uses no nonce and nothing is paid twice.
func TestDryWalletHandsPayoutsToAnother(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		dryKey, _ := crypto.GenerateKey()
		dry := crypto.PubkeyToAddress(dryKey.PublicKey)
		eth := func(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e18)) }
		e.direct(e.key, dry, eth(1), nil)
		e.direct(e.key, e.chain.SUSD(), new(big.Int), erc20Call("0xa9059cbb", dry, big.NewInt(100e6)))
		dom := e.dom
		dom.HotWallets = []common.Address{e.dom.HotWallet, dry}

		rich := e.senderWith(txm.Config{Owner: "a", Chain: dom})
		rich.Start(ctx)
		defer rich.Stop()
		deadline := time.Now().Add(10 * time.Second)
		for _, ok := rich.Available("SUSD"); !ok; _, ok = rich.Available("SUSD") {
			if time.Now().After(deadline) {
				t.Fatal("the rich wallet's sender never read its balances")
			}
			e.mine(1)
		}

		var ps []*payout.Payout
		for i, c := range []struct {
			asset  string
			amount *big.Int
		}{{"ETH", eth(2)}, {"SUSD", big.NewInt(200e6)}, {"ETH", big.NewInt(1e15)}} {
			now := time.Now()
			p := &payout.Payout{ID: e.ids.New("po_", now), Status: payout.StatusQueued, Chain: "sandbox", ChainID: dom.ChainID,
				Asset: c.asset, To: common.BigToAddress(big.NewInt(int64(0xAD0000 + i))), Amount: c.amount, Sender: dry,
				Version: 1, CreatedAt: now, UpdatedAt: now}
			if err := e.store.CreatePayout(ctx, p, nil); err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		drySender := e.senderWith(txm.Config{Owner: "a", Chain: dom, Signer: evm.KeySigner{Key: dryKey},
			Handoff: senderHandoff{to: rich, addr: e.dom.HotWallet}})
		drySender.Start(ctx)
		defer drySender.Stop()

		got := e.mineUntil([]string{ps[0].ID, ps[1].ID, ps[2].ID}, 30*time.Second)
		for i, p := range ps {
			g := got[p.ID]
			wantFrom := e.dom.HotWallet
			if i == 2 {
				wantFrom = dry // the dry wallet covers this one itself
			}
			if g.Status != payout.StatusCompleted || g.Sender != wantFrom {
				t.Errorf("%s %s payout: %s from %s, want completed from %s", p.Amount, p.Asset, g.Status, g.Sender.Hex(), wantFrom.Hex())
			}
			wantMoves := 1
			if i == 2 {
				wantMoves = 0
			}
			if n := countOf(e.eventTypes(p.ID), payout.EventReassigned); n != wantMoves {
				t.Errorf("%s %s payout: %d payout.reassigned events, want %d", p.Amount, p.Asset, n, wantMoves)
			}
		}
		if bal, _ := e.eth.BalanceAt(ctx, ps[0].To, nil); bal.Cmp(ps[0].Amount) != 0 {
			t.Errorf("ETH recipient holds %s, want %s (paid once)", bal, ps[0].Amount)
		}
		if bal := e.tokenBalance(ps[1].To); bal.Cmp(ps[1].Amount) != 0 {
			t.Errorf("SUSD recipient holds %s, want %s (paid once)", bal, ps[1].Amount)
		}
		if n, used, _ := e.store.MaxNonce(ctx, dom.ChainID, dry); !used || n != 0 {
			t.Errorf("the dry wallet's highest nonce %d (used %v), want 0: only its own small payout", n, used)
		}
	})
}

// TestWalletWithKeyStillOpeningHandsPayoutsOn: a wallet whose key is still
// opening (a restarted engine decrypting its keystores) hands its queued
// payouts to a wallet that can sign now instead of making them wait; when
// its key opens it pays what is still its own.
func TestWalletWithKeyStillOpeningHandsPayoutsOn(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		slowKey, _ := crypto.GenerateKey()
		slow := crypto.PubkeyToAddress(slowKey.PublicKey)
		e.direct(e.key, slow, new(big.Int).Mul(big.NewInt(5), big.NewInt(1e18)), nil)
		dom := e.dom
		dom.HotWallets = []common.Address{e.dom.HotWallet, slow}

		ready := e.senderWith(txm.Config{Owner: "a", Chain: dom})
		ready.Start(ctx)
		defer ready.Stop()
		deadline := time.Now().Add(10 * time.Second)
		for _, ok := ready.Available("ETH"); !ok; _, ok = ready.Available("ETH") {
			if time.Now().After(deadline) {
				t.Fatal("the ready wallet's sender never read its balances")
			}
			e.mine(1)
		}
		create := func(i int) *payout.Payout {
			now := time.Now()
			p := &payout.Payout{ID: e.ids.New("po_", now), Status: payout.StatusQueued, Chain: "sandbox", ChainID: dom.ChainID,
				Asset: "ETH", To: common.BigToAddress(big.NewInt(int64(0xAE0000 + i))), Amount: big.NewInt(1e15), Sender: slow,
				Version: 1, CreatedAt: now, UpdatedAt: now}
			if err := e.store.CreatePayout(ctx, p, nil); err != nil {
				t.Fatal(err)
			}
			return p
		}
		// Queued before the sender started: a backlog, which stays.
		backlog := create(0)
		opening := signer.NewOpening(slow)
		slowSender := e.senderWith(txm.Config{Owner: "a", Chain: dom, Signer: opening, SignerReady: opening.Ready,
			SignerOpened: opening.Done(), Handoff: senderHandoff{to: ready, addr: e.dom.HotWallet}})
		slowSender.Start(ctx)
		defer slowSender.Stop()
		first := create(1) // arrived since: handed on
		got := e.mineUntil([]string{first.ID}, 30*time.Second)[first.ID]
		if got.Status != payout.StatusCompleted || got.Sender != e.dom.HotWallet {
			t.Fatalf("while the key opens: %s from %s, want completed by the ready wallet", got.Status, got.Sender.Hex())
		}

		if p, _ := e.store.GetPayout(ctx, backlog.ID); p.Status != payout.StatusQueued || p.Sender != slow {
			t.Fatalf("the backlog while the key opens: %s at %s, want queued at its own wallet", p.Status, p.Sender.Hex())
		}

		// The key opens: the backlog is sent by its own wallet at once, with
		// no new head and no other wake-up, and paid.
		opening.Set(evm.KeySigner{Key: slowKey}, nil)
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			p, err := e.store.GetPayout(ctx, backlog.ID)
			if err != nil {
				t.Fatal(err)
			}
			if p.Status == payout.StatusSubmitted {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("5 s after the key opened, with no new block: the backlog is %s, want submitted", p.Status)
			}
		}
		got = e.mineUntil([]string{backlog.ID}, 30*time.Second)[backlog.ID]
		if got.Status != payout.StatusCompleted || got.Sender != slow {
			t.Fatalf("after the key opened: %s from %s, want completed by its own wallet", got.Status, got.Sender.Hex())
		}
	})
}
