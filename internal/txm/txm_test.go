package txm_test

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/fees"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/rpcpool/rpcfault"
	"github.com/sluicepay/sluice/internal/sandbox"
	"github.com/sluicepay/sluice/internal/store"
	"github.com/sluicepay/sluice/internal/store/storetest"
	"github.com/sluicepay/sluice/internal/txm"
)

// env is a real dev chain, a real SQLite store and a sender between them.
type env struct {
	t      testing.TB
	chain  *sandbox.Chain
	store  payout.Store
	client *evm.Client
	eth    *ethclient.Client
	key    *ecdsa.PrivateKey
	dom    payout.Chain
	ids    *payout.IDGenerator
}

// forEachStore runs a test on SQLite, and on PostgreSQL when
// SLUICE_TEST_DATABASE_URL is set.
func forEachStore(t *testing.T, test func(t *testing.T, e *env)) {
	for _, db := range []struct {
		name string
		url  func(t testing.TB) string
	}{
		{"sqlite", func(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "sluice.db") }},
		{"postgres", storetest.PostgresURL},
	} {
		t.Run(db.name, func(t *testing.T) {
			key, _ := crypto.GenerateKey()
			test(t, newEnvWith(t, key, db.url(t), sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key}))
		})
	}
}

// newSQLiteEnv is a dev chain funding a new hot wallet, with a SQLite store.
func newSQLiteEnv(t testing.TB) *env {
	key, _ := crypto.GenerateKey()
	return newEnvWith(t, key, "sqlite:"+filepath.Join(t.TempDir(), "sluice.db"),
		sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key})
}

func newEnvWith(t testing.TB, key *ecdsa.PrivateKey, dbURL string, cfg sandbox.Config) *env {
	t.Helper()
	ctx := context.Background()
	chain, err := sandbox.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.Close() })
	st, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	client, err := evm.Dial(ctx, chain.RPCURL(), "sandbox", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	eth, err := ethclient.Dial(chain.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eth.Close)
	susd := chain.SUSD()
	wallet := crypto.PubkeyToAddress(key.PublicKey)
	dom := payout.Chain{Name: "sandbox", ChainID: chain.ChainID(), Confirmations: 2, HotWallet: wallet,
		Assets: map[string]payout.Asset{"ETH": {Symbol: "ETH", Decimals: 18}, "SUSD": {Symbol: "SUSD", Token: &susd, Decimals: 6}}}
	return &env{t: t, chain: chain, store: st, client: client, eth: eth, key: key, dom: dom, ids: &payout.IDGenerator{}}
}

func (e *env) sender(owner string) *txm.Sender {
	e.t.Helper()
	return e.senderWith(txm.Config{Owner: owner})
}

// senderWith returns a sender on e configured by cfg, whose zero fields
// take e's chain, store, node, key and fee oracle.
func (e *env) senderWith(cfg txm.Config) *txm.Sender {
	e.t.Helper()
	if cfg.Chain.ChainID == 0 {
		cfg.Chain = e.dom
	}
	if cfg.Store == nil {
		cfg.Store = e.store
	}
	if cfg.Client == nil {
		cfg.Client = e.client
	}
	if cfg.Signer == nil {
		cfg.Signer = evm.KeySigner{Key: e.key}
	}
	if cfg.Fees == nil {
		cfg.Fees = e.oracle(fees.Config{})
	}
	if cfg.Poll == 0 {
		cfg.Poll = 20 * time.Millisecond
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 3 * time.Second
	}
	s, err := txm.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// oracle returns a fee oracle on e's chain.
func (e *env) oracle(cfg fees.Config) *fees.Oracle {
	e.t.Helper()
	cfg.Chain = "sandbox"
	o, err := fees.New(e.client, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

func (e *env) create(asset string, to common.Address, amount *big.Int) *payout.Payout {
	e.t.Helper()
	now := time.Now()
	p := &payout.Payout{ID: e.ids.New("po_", now), Status: payout.StatusQueued, Chain: "sandbox", ChainID: e.dom.ChainID,
		Asset: asset, To: to, Amount: amount, Sender: e.dom.HotWallet, Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreatePayout(context.Background(), p, nil); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// mineUntil commits blocks until every payout is terminal or time runs out.
func (e *env) mineUntil(ids []string, timeout time.Duration) map[string]*payout.Payout {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := map[string]*payout.Payout{}
		done := true
		for _, id := range ids {
			p, err := e.store.GetPayout(context.Background(), id)
			if err != nil {
				e.t.Fatal(err)
			}
			got[id] = p
			done = done && p.Status.Terminal()
		}
		if done {
			return got
		}
		if time.Now().After(deadline) {
			for id, p := range got {
				e.t.Logf("%s: %s", id, p.Status)
			}
			e.t.Fatalf("payouts not terminal after %s", timeout)
		}
		time.Sleep(60 * time.Millisecond)
		e.chain.Commit()
	}
}

func (e *env) tokenBalance(holder common.Address) *big.Int {
	e.t.Helper()
	data := append(common.FromHex("0x70a08231"), common.LeftPadBytes(holder.Bytes(), 32)...)
	susd := e.chain.SUSD()
	out, err := e.eth.CallContract(context.Background(), ethereumCall(susd, data), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return new(big.Int).SetBytes(out)
}

func TestPaysNativeAndTokenEndToEnd(t *testing.T) { forEachStore(t, testPaysNativeAndTokenEndToEnd) }

func testPaysNativeAndTokenEndToEnd(t *testing.T, e *env) {
	ctx := context.Background()
	var ids []string
	want := map[common.Address]*big.Int{}
	for i := range 40 {
		to := common.BigToAddress(big.NewInt(int64(0x10000 + i)))
		asset, amount := "ETH", big.NewInt(int64(1e15+i))
		if i%2 == 1 {
			asset, amount = "SUSD", big.NewInt(int64(1_500_000+i))
		}
		want[to] = amount
		ids = append(ids, e.create(asset, to, amount).ID)
	}
	s := e.sender("a")
	if _, _, known := s.Outstanding(); known {
		t.Fatal("a sender that never ran has counted its outstanding payouts")
	}
	s.Start(ctx)
	defer s.Stop()
	// Nothing is mined until mineUntil commits blocks: once sent, all 40
	// are outstanding (payout.Catalog weighs wallets by this count).
	waitFor(t, "the sender's first count", func() bool { _, _, known := s.Outstanding(); return known })
	if n, seq, _ := s.Outstanding(); n != 40 || seq == 0 {
		t.Errorf("outstanding after sending 40, none mined = %d (count %d), want 40", n, seq)
	}
	got := e.mineUntil(ids, 60*time.Second)
	waitFor(t, "nothing outstanding once all are mined", func() bool { n, _, _ := s.Outstanding(); return n == 0 })

	for i, id := range ids {
		p := got[id]
		if p.Status != payout.StatusCompleted || p.TxHash == nil || p.Fee == nil || p.Fee.Sign() <= 0 {
			t.Fatalf("payout %d = %s tx %v fee %v (%s)", i, p.Status, p.TxHash, p.Fee, p.FailureMessage)
		}
		r, err := e.eth.TransactionReceipt(ctx, *p.TxHash)
		if err != nil {
			t.Fatal(err)
		}
		if fee := new(big.Int).Mul(new(big.Int).SetUint64(r.GasUsed), r.EffectiveGasPrice); fee.Cmp(p.Fee) != 0 {
			t.Errorf("payout %d fee = %s, receipt says %s", i, p.Fee, fee)
		}
		if r.BlockNumber.Uint64() != p.BlockNumber {
			t.Errorf("payout %d block = %d, receipt says %d", i, p.BlockNumber, r.BlockNumber)
		}
		var bal *big.Int
		if p.Asset == "ETH" {
			bal, _ = e.eth.BalanceAt(ctx, p.To, nil)
		} else {
			bal = e.tokenBalance(p.To)
		}
		if bal.Cmp(want[p.To]) != 0 {
			t.Errorf("recipient %s holds %s %s, want %s", p.To.Hex(), bal, p.Asset, want[p.To])
		}
	}
	// Every change wrote its event, in order, per payout.
	evs, err := e.store.ListEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string][]string{}
	for _, ev := range evs {
		seen[ev.ObjectID] = append(seen[ev.ObjectID], ev.Type)
	}
	wantTypes := fmt.Sprint([]string{"payout.created", "payout.submitted", "payout.confirming", "payout.completed"})
	for _, id := range ids {
		if fmt.Sprint(seen[id]) != wantTypes {
			t.Errorf("events of %s = %v, want %s", id, seen[id], wantTypes)
		}
	}
}

func TestWouldRevertFailsBeforeANonceIsUsed(t *testing.T) {
	forEachStore(t, testWouldRevertFailsBeforeANonceIsUsed)
}

func testWouldRevertFailsBeforeANonceIsUsed(t *testing.T, e *env) {
	ctx := context.Background()
	// SUSD refuses transfers to the zero address (the API refuses them
	// too; the store does not, so the sender must cope).
	p := e.create("SUSD", common.Address{}, big.NewInt(1))
	before, _ := e.eth.NonceAt(ctx, e.dom.HotWallet, nil)
	s := e.sender("a")
	s.Start(ctx)
	defer s.Stop()
	got := e.mineUntil([]string{p.ID}, 20*time.Second)[p.ID]
	if got.Status != payout.StatusFailed || got.FailureCode != payout.FailureWouldRevert || got.TxHash != nil {
		t.Fatalf("payout = %s %s tx %v", got.Status, got.FailureCode, got.TxHash)
	}
	if _, ok, _ := e.store.MaxNonce(ctx, e.dom.ChainID, e.dom.HotWallet); ok {
		t.Error("a nonce was allocated for a payout that failed simulation")
	}
	e.chain.Commit()
	if after, _ := e.eth.NonceAt(ctx, e.dom.HotWallet, nil); after != before {
		t.Errorf("chain nonce moved from %d to %d", before, after)
	}
}

func TestRevertOnChainRecordsFee(t *testing.T) { forEachStore(t, testRevertOnChainRecordsFee) }

func testRevertOnChainRecordsFee(t *testing.T, e *env) {
	ctx := context.Background()
	// Both payouts fit the wallet's 10^15 SUSD and simulate fine. Before
	// they are mined, a spender the wallet approved earlier takes 6×10^14
	// with a higher tip, so its transfer comes first in the block and the
	// first payout (6×10^14) reverts on chain; the second (4×10^14) fits.
	spenderKey, _ := crypto.GenerateKey()
	spender := crypto.PubkeyToAddress(spenderKey.PublicKey)
	big6 := new(big.Int).Mul(big.NewInt(6), new(big.Int).Exp(big.NewInt(10), big.NewInt(14), nil))
	big4 := new(big.Int).Mul(big.NewInt(4), new(big.Int).Exp(big.NewInt(10), big.NewInt(14), nil))
	e.direct(e.key, spender, big.NewInt(1e18), nil)
	e.direct(e.key, e.chain.SUSD(), new(big.Int), erc20Call("0x095ea7b3", spender, big6)) // approve
	a := e.create("SUSD", common.HexToAddress("0x000000000000000000000000000000000000a001"), big6)
	b := e.create("SUSD", common.HexToAddress("0x000000000000000000000000000000000000a002"), big4)
	s := e.sender("a")
	s.Start(ctx)
	defer s.Stop()
	e.waitStatus(a.ID, payout.StatusSubmitted, 20*time.Second)
	e.waitStatus(b.ID, payout.StatusSubmitted, 20*time.Second)
	e.waitPending(e.dom.HotWallet, 2)
	take := append(common.FromHex("0x23b872dd"), common.LeftPadBytes(e.dom.HotWallet.Bytes(), 32)...) // transferFrom
	take = append(take, erc20Call("", spender, big6)...)
	e.send(spenderKey, e.chain.SUSD(), new(big.Int), take, gwei(50))
	got := e.mineUntil([]string{a.ID, b.ID}, 30*time.Second)
	pa := got[a.ID]
	if pa.Status != payout.StatusFailed || pa.FailureCode != payout.FailureRevertedOnChain || pa.Fee == nil || pa.Fee.Sign() <= 0 || pa.TxHash == nil {
		t.Fatalf("first = %s %s fee %v tx %v", pa.Status, pa.FailureCode, pa.Fee, pa.TxHash)
	}
	if got[b.ID].Status != payout.StatusCompleted {
		t.Fatalf("second = %s %s", got[b.ID].Status, got[b.ID].FailureMessage)
	}
	if bal := e.tokenBalance(pa.To); bal.Sign() != 0 {
		t.Errorf("reverted recipient holds %s", bal)
	}
}

func TestRestartResumesWithoutPayingTwice(t *testing.T) {
	forEachStore(t, testRestartResumesWithoutPayingTwice)
}

func testRestartResumesWithoutPayingTwice(t *testing.T, e *env) {
	ctx := context.Background()
	ids := e.createNative(30, 0x20000, big.NewInt(1000))
	s1 := e.sender("first")
	s1.Start(ctx)
	// Wait until everything is signed and sent, then stop before any block.
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, _ := e.store.CountByStatus(ctx)
		if n[payout.StatusSubmitted] == 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not submitted: %v", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s1.Stop()
	// A new owner (another instance, or the same one restarted) takes over.
	s2 := e.sender("second")
	s2.Start(ctx)
	defer s2.Stop()
	got := e.mineUntil(ids, 30*time.Second)
	for _, id := range ids {
		p := got[id]
		bal, _ := e.eth.BalanceAt(ctx, p.To, nil)
		if p.Status != payout.StatusCompleted || bal.Int64() != 1000 {
			t.Errorf("%s: %s, recipient holds %s wei, want 1000", id, p.Status, bal)
		}
	}
}

func TestTwoInstancesNeverBothSend(t *testing.T) { forEachStore(t, testTwoInstancesNeverBothSend) }

// testTwoInstancesNeverBothSend runs two senders for the same wallet, as
// two engine instances on one database would: the lease lets one send, and
// when it dies without releasing the lease the other takes over after the
// lease expires. Every recipient is paid exactly once.
func testTwoInstancesNeverBothSend(t *testing.T, e *env) {
	ctx := context.Background()
	ids := e.createNative(20, 0x30000, big.NewInt(777))
	a, b := e.sender("instance-a"), e.sender("instance-b")
	a.Start(ctx)
	e.mineUntil(ids, 30*time.Second) // a holds the lease now
	b.Start(ctx)
	defer b.Stop()
	time.Sleep(100 * time.Millisecond) // b tries, and is refused the lease
	// a dies without releasing its lease (a crash); b takes over once it expires.
	a.Kill()
	killedAt := time.Now()
	ids = append(ids, e.createNative(20, 0x31000, big.NewInt(777))...)
	got := e.mineUntil(ids, 30*time.Second)
	if waited := time.Since(killedAt); waited < 2*time.Second {
		t.Errorf("the second instance sent after %s, before the crashed one's 3 s lease expired", waited)
	}
	for _, id := range ids {
		p := got[id]
		bal, _ := e.eth.BalanceAt(ctx, p.To, nil)
		if p.Status != payout.StatusCompleted || bal.Int64() != 777 {
			t.Errorf("%s: %s, recipient holds %s wei, want 777", id, p.Status, bal)
		}
	}
	n, _ := e.eth.NonceAt(ctx, e.dom.HotWallet, nil)
	if max, _, _ := e.store.MaxNonce(ctx, e.dom.ChainID, e.dom.HotWallet); n != max+1 {
		t.Errorf("chain nonce %d, stored max nonce %d: a nonce was used twice or skipped", n, max)
	}
}

func TestReorgSendsBackAndCompletesOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) { testReorgSendsBackAndCompletesOnce(t, e, false) })
}

// TestReorgAfterRestart reorgs payouts that a previous session saw mined
// (the new session has them as confirming only), then sends more: the
// reorged ones are rebuilt whole from the store and everything completes.
func TestReorgAfterRestart(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) { testReorgSendsBackAndCompletesOnce(t, e, true) })
}

// testReorgSendsBackAndCompletesOnce mines payouts, reorganises the chain
// from below their block (the simulated beacon's Fork), and checks that
// they go back to submitted, are mined again on the new chain, complete
// there, and are paid once.
func testReorgSendsBackAndCompletesOnce(t *testing.T, e *env, restart bool) {
	ctx := context.Background()
	e.dom.Confirmations = 6
	var ids []string
	for i := range 5 {
		ids = append(ids, e.create("SUSD", common.BigToAddress(big.NewInt(int64(0x40000+i))), big.NewInt(2_000_000)).ID)
	}
	s := e.sender("a")
	s.Start(ctx)
	defer s.Stop()
	// Mine until every payout is confirming (mined, not yet final).
	var minedIn uint64
	deadline := time.Now().Add(20 * time.Second)
	for minedIn == 0 {
		c, _ := e.store.CountByStatus(ctx)
		if c[payout.StatusConfirming] == 5 {
			p, _ := e.store.GetPayout(ctx, ids[0])
			minedIn = p.BlockNumber
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not mined: %v", c)
		}
		time.Sleep(30 * time.Millisecond)
		e.chain.Commit()
	}
	old, _ := e.store.GetPayout(ctx, ids[0])
	if restart {
		s.Kill()
		// Balances re-read every round: a reorged flight rebuilt without
		// what it moves would break the reservation at once.
		s = e.senderWith(txm.Config{Owner: "a", FundsEvery: time.Millisecond})
		s.Start(ctx)
		defer s.Stop()
		time.Sleep(200 * time.Millisecond) // the new session reads what is confirming
	}
	parent, err := e.eth.HeaderByNumber(ctx, new(big.Int).SetUint64(minedIn-1))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.chain.Fork(parent.Hash()); err != nil {
		t.Fatal(err)
	}
	if restart {
		// Once the sender has taken the reorged payouts back in flight, a
		// send round reserves funds for every flight, theirs included.
		deadline := time.Now().Add(10 * time.Second)
		for countOf(e.eventTypes(ids[0]), payout.EventReorged) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the restarted sender did not see the reorg in 10s")
			}
			e.mine(1)
		}
		ids = append(ids, e.create("ETH", common.BigToAddress(big.NewInt(0x40100)), big.NewInt(1e15)).ID)
		s.Wake()
	}
	got := e.mineUntil(ids, 30*time.Second)

	evs, _ := e.store.ListEvents(ctx, 0, 1000)
	confirmings, reorgs := map[string]int{}, map[string]int{}
	for _, ev := range evs {
		switch ev.Type {
		case "payout.confirming":
			confirmings[ev.ObjectID]++
		case payout.EventReorged:
			reorgs[ev.ObjectID]++
		}
	}
	for _, id := range ids[:5] {
		p := got[id]
		if p.Status != payout.StatusCompleted {
			t.Fatalf("%s ended %s", id, p.Status)
		}
		h, err := e.eth.HeaderByNumber(ctx, new(big.Int).SetUint64(p.BlockNumber))
		if err != nil || h.Hash() != *p.BlockHash {
			t.Errorf("%s completed in block %d %s, which is not canonical", id, p.BlockNumber, p.BlockHash.Hex())
		}
		if reorgs[id] != 1 {
			t.Errorf("%s has %d payout.reorged events, want 1", id, reorgs[id])
		}
		if confirmings[id] != 2 {
			t.Errorf("%s was mined %d times in its events, want 2 (before and after the reorg)", id, confirmings[id])
		}
		if bal := e.tokenBalance(p.To); bal.Int64() != 2_000_000 {
			t.Errorf("%s: recipient holds %s, want 2000000", id, bal)
		}
	}
	if *got[ids[0]].BlockHash == *old.BlockHash {
		t.Error("the payout still points at the block that was reorged away")
	}
}

// TestL1DataFeeIsPartOfTheFee: on an OP-stack chain a receipt's l1Fee is
// charged on top of the gas; the payout's recorded fee includes it, read
// from the receipts of the block scan (a node that adds l1Fee to every
// receipt stands in for such a chain).
func TestL1DataFeeIsPartOfTheFee(t *testing.T) {
	key, _ := crypto.GenerateKey()
	e := newEnvWith(t, key, "sqlite:"+filepath.Join(t.TempDir(), "sluice.db"), sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key})
	op := rpcfault.New(t, e.chain.RPCURL(), rpcfault.L1Fee)
	client, err := evm.Dial(context.Background(), op.URL, "sandbox", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	p := e.create("ETH", common.HexToAddress("0x00000000000000000000000000000000000a11fe"), big.NewInt(1_000))
	s := e.senderWith(txm.Config{Owner: "a", Client: client})
	s.Start(context.Background())
	defer s.Stop()
	got := e.mineUntil([]string{p.ID}, 20*time.Second)[p.ID]
	r, err := e.eth.TransactionReceipt(context.Background(), *got.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	gas := new(big.Int).Mul(new(big.Int).SetUint64(r.GasUsed), r.EffectiveGasPrice)
	want := new(big.Int).Add(gas, big.NewInt(rpcfault.L1FeeWei))
	if got.Status != payout.StatusCompleted || got.Fee == nil || got.Fee.Cmp(want) != 0 {
		t.Fatalf("payout %s fee %v, want completed with %s (gas %s + l1Fee %d)", got.Status, got.Fee, want, gas, rpcfault.L1FeeWei)
	}
}
