package txm_test

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/contracts"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/sandbox"
	"github.com/sluicepay/sluice/internal/txm"
)

// toggleInit deploys a contract that accepts the native coin until any
// call with data switches it to refusing it.
const toggleInit = "0x6019600c60003960196000f3" + "3615600b576001600055005b60005415601757600080fd5b00"

// TestRevertedChunkIsPlannedAgain: a batch transaction that simulated fine
// reverts on chain because a recipient changed its mind in the same block.
// Nobody in it was paid, so its payouts go back to the queue; planned
// again, the refusing recipient is taken out and fails alone, and the
// others are paid exactly once.
func TestRevertedChunkIsPlannedAgain(t *testing.T) {
	key, _ := crypto.GenerateKey()
	e := newEnvWith(t, key, "sqlite:"+filepath.Join(t.TempDir(), "sluice.db"),
		sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key})
	ctx := context.Background()
	other, _ := crypto.GenerateKey()
	e.direct(key, crypto.PubkeyToAddress(other.PublicKey), big.NewInt(1e18), nil)
	toggle := e.deploy(other, common.FromHex(toggleInit))
	plain := []common.Address{common.HexToAddress("0x00000000000000000000000000000000000d0001"),
		common.HexToAddress("0x00000000000000000000000000000000000d0002")}
	for _, a := range plain {
		e.direct(key, a, big.NewInt(1), nil) // existing accounts: batched
	}

	now := time.Now()
	b := &payout.Batch{ID: e.ids.New("bat_", now), Policy: payout.BatchAllOrNothing, Source: "json", Rows: 3, CreatedAt: now}
	var ps []*payout.Payout
	for i, to := range []common.Address{plain[0], toggle, plain[1]} {
		ps = append(ps, &payout.Payout{ID: e.ids.New("po_", now), Status: payout.StatusQueued, Chain: "sandbox", ChainID: e.dom.ChainID,
			Asset: "ETH", To: to, Amount: big.NewInt(int64(1e15 + i)), Sender: e.dom.HotWallet, BatchID: b.ID, BatchRow: i + 1,
			Version: 1, CreatedAt: now, UpdatedAt: now})
	}
	if err := e.store.(payout.BatchStore).CreateBatch(ctx, b, ps, nil); err != nil {
		t.Fatal(err)
	}
	s := e.senderWith(txm.Config{Owner: "a", Batching: txm.Batching{Mode: txm.BatchEIP7702, Executor: e.chain.BatchExecutor()}})
	s.Start(ctx)
	defer s.Stop()

	// The chunk is in the pool; the recipient switches first (higher tip).
	e.waitStatus(ps[0].ID, payout.StatusSubmitted, 10*time.Second)
	e.waitPending(e.dom.HotWallet, 0)
	e.send(other, toggle, new(big.Int), []byte{1}, gwei(50))
	time.Sleep(100 * time.Millisecond)
	e.chain.Commit()

	got := e.mineUntil([]string{ps[0].ID, ps[1].ID, ps[2].ID}, 30*time.Second)
	if got[ps[1].ID].Status != payout.StatusFailed || got[ps[1].ID].FailureCode != payout.FailureWouldRevert {
		t.Errorf("refusing recipient = %s %s, want failed transfer_would_revert", got[ps[1].ID].Status, got[ps[1].ID].FailureCode)
	}
	for _, i := range []int{0, 2} {
		p := got[ps[i].ID]
		bal, err := e.eth.BalanceAt(ctx, p.To, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != payout.StatusCompleted || bal.Cmp(new(big.Int).Add(p.Amount, big.NewInt(1))) != 0 {
			t.Errorf("payout %d = %s, recipient holds %s wei, want completed and paid once (%s)", i, p.Status, bal, p.Amount)
		}
	}
	for _, p := range ps {
		if !slices.Contains(e.eventTypes(p.ID), payout.EventRequeued) {
			t.Errorf("payout %s has no %s event: %v", p.ID, payout.EventRequeued, e.eventTypes(p.ID))
		}
	}
}

// deploy sends a contract creation from key, mines it and returns the
// contract's address.
func (e *env) deploy(key *ecdsa.PrivateKey, code []byte) common.Address {
	e.t.Helper()
	ctx := context.Background()
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := e.eth.PendingNonceAt(ctx, from)
	if err != nil {
		e.t.Fatal(err)
	}
	id := new(big.Int).SetUint64(e.dom.ChainID)
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(id), &types.DynamicFeeTx{
		ChainID: id, Nonce: nonce, GasTipCap: gwei(1), GasFeeCap: gwei(100), Gas: 3_000_000, Data: code,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.eth.SendTransaction(ctx, tx); err != nil {
		e.t.Fatal(err)
	}
	e.waitPending(from, 0)
	e.chain.Commit()
	r, err := e.eth.TransactionReceipt(ctx, tx.Hash())
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		e.t.Fatalf("deploy: %+v %v", r, err)
	}
	return r.ContractAddress
}

// TestRecheckFailsPayoutBeforeSigning: a payout the policy now refuses
// (its destination was put on a deny list after it was accepted) fails
// with the policy's code before any nonce is used; the others are paid.
func TestRecheckFailsPayoutBeforeSigning(t *testing.T) {
	key, _ := crypto.GenerateKey()
	e := newEnvWith(t, key, "sqlite:"+filepath.Join(t.TempDir(), "sluice.db"),
		sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key})
	denied := common.HexToAddress("0x00000000000000000000000000000000000e0001")
	bad := e.create("ETH", denied, big.NewInt(1e15))
	good := e.create("ETH", common.HexToAddress("0x00000000000000000000000000000000000e0002"), big.NewInt(1e15))
	s := e.senderWith(txm.Config{Owner: "a", Recheck: func(_ context.Context, p *payout.Payout) (payout.Code, string, error) {
		if p.To == denied {
			return "sanctioned_destination", "on the deny list since it was accepted", nil
		}
		return "", "", nil
	}})
	s.Start(context.Background())
	defer s.Stop()
	got := e.mineUntil([]string{bad.ID, good.ID}, 20*time.Second)
	if p := got[bad.ID]; p.Status != payout.StatusFailed || p.FailureCode != "sanctioned_destination" || p.Nonce != nil {
		t.Errorf("refused payout = %s %s nonce %v, want failed sanctioned_destination without a nonce", p.Status, p.FailureCode, p.Nonce)
	}
	if p := got[good.ID]; p.Status != payout.StatusCompleted {
		t.Errorf("other payout = %s, want completed", p.Status)
	}
	if as := e.attemptsOf(bad.ID); len(as) != 0 {
		t.Errorf("the refused payout has %d attempts, want none", len(as))
	}
}

// TestContractModeApprovalReplaced: in mode contract a token chunk is an
// exact approval at nonce n and the batch at n+1. The node drops the
// approval (and every resend of it), so the batch cannot be mined; the
// sender bumps the approval, the pair is mined, every payout is paid once
// and no allowance is left.
func TestContractModeApprovalReplaced(t *testing.T) {
	key, _ := crypto.GenerateKey()
	e := newEnvWith(t, key, "sqlite:"+filepath.Join(t.TempDir(), "sluice.db"),
		sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key})
	ctx := context.Background()
	batchContract := e.deploy(key, contracts.Batch().Bytecode)
	susd := e.chain.SUSD()
	var dropped common.Hash
	node := e.droppingNode(func(tx *types.Transaction) bool {
		isApproval := tx.To() != nil && *tx.To() == susd && len(tx.Data()) >= 4 && common.Bytes2Hex(tx.Data()[:4]) == "095ea7b3"
		if isApproval && (dropped == (common.Hash{}) || dropped == tx.Hash()) {
			dropped = tx.Hash()
			return true
		}
		return false
	})
	now := time.Now()
	b := &payout.Batch{ID: e.ids.New("bat_", now), Policy: payout.BatchAllOrNothing, Source: "json", Rows: 3, CreatedAt: now}
	var ps []*payout.Payout
	var ids []string
	for i := range 3 {
		p := &payout.Payout{ID: e.ids.New("po_", now), Status: payout.StatusQueued, Chain: "sandbox", ChainID: e.dom.ChainID,
			Asset: "SUSD", To: common.BigToAddress(big.NewInt(int64(0xF0001 + i))), Amount: big.NewInt(int64(1_000_000 + i)),
			Sender: e.dom.HotWallet, BatchID: b.ID, BatchRow: i + 1, Version: 1, CreatedAt: now, UpdatedAt: now}
		ps, ids = append(ps, p), append(ids, p.ID)
	}
	if err := e.store.(payout.BatchStore).CreateBatch(ctx, b, ps, nil); err != nil {
		t.Fatal(err)
	}
	s := e.senderWith(txm.Config{Owner: "a", Client: node, Batching: txm.Batching{Mode: txm.BatchContract, Contract: batchContract}})
	s.Start(ctx)
	defer s.Stop()
	got := e.mineUntil(ids, 60*time.Second)
	for i, p := range ps {
		if got[p.ID].Status != payout.StatusCompleted || e.tokenBalance(p.To).Cmp(p.Amount) != 0 {
			t.Errorf("payout %d = %s, recipient holds %s", i, got[p.ID].Status, e.tokenBalance(p.To))
		}
	}
	approvals := 0
	for _, a := range e.attemptsOf(ps[0].ID) {
		if a.Kind == payout.AttemptApprove {
			approvals++
		}
	}
	if dropped == (common.Hash{}) || approvals < 2 {
		t.Errorf("%d approval attempts (dropped %s), want the dropped one and its replacement", approvals, dropped.Hex())
	}
	data := append(common.FromHex("0xdd62ed3e"), append(common.LeftPadBytes(e.dom.HotWallet.Bytes(), 32), common.LeftPadBytes(batchContract.Bytes(), 32)...)...)
	out, err := e.eth.CallContract(ctx, ethereumCall(susd, data), nil)
	if err != nil || new(big.Int).SetBytes(out).Sign() != 0 {
		t.Errorf("allowance left to the batch contract: %x (%v)", out, err)
	}
}

// TestChunksPipelined: in mode contract one wallet's chunks go out at
// consecutive nonces without waiting for each other (up to MaxInFlight),
// so a batch larger than one transaction is mined in one block.
func TestChunksPipelined(t *testing.T) {
	key, _ := crypto.GenerateKey()
	e := newEnvWith(t, key, "sqlite:"+filepath.Join(t.TempDir(), "sluice.db"),
		sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key})
	ctx := context.Background()
	batchContract := e.deploy(key, contracts.Batch().Bytecode)
	now := time.Now()
	b := &payout.Batch{ID: e.ids.New("bat_", now), Policy: payout.BatchAllOrNothing, Source: "json", Rows: 30, CreatedAt: now}
	var ps []*payout.Payout
	var ids []string
	for i := range 30 {
		to := common.BigToAddress(big.NewInt(int64(0xF1001 + i)))
		e.direct(key, to, big.NewInt(1), nil) // existing accounts: batched
		p := &payout.Payout{ID: e.ids.New("po_", now), Status: payout.StatusQueued, Chain: "sandbox", ChainID: e.dom.ChainID,
			Asset: "ETH", To: to, Amount: big.NewInt(int64(1e12 + i)), Sender: e.dom.HotWallet, BatchID: b.ID, BatchRow: i + 1,
			Version: 1, CreatedAt: now, UpdatedAt: now}
		ps, ids = append(ps, p), append(ids, p.ID)
	}
	if err := e.store.(payout.BatchStore).CreateBatch(ctx, b, ps, nil); err != nil {
		t.Fatal(err)
	}
	// A budget of about 10 payouts a transaction: three chunks.
	s := e.senderWith(txm.Config{Owner: "a", Batching: txm.Batching{Mode: txm.BatchContract, Contract: batchContract,
		GasBudget: 60_000 + 10*10_000, MaxInFlight: 8}})
	s.Start(ctx)
	defer s.Stop()
	e.waitStatus(ps[len(ps)-1].ID, payout.StatusSubmitted, 10*time.Second)
	e.waitPending(e.dom.HotWallet, 3)
	got := e.mineUntil(ids, 20*time.Second)
	txs, blocks := map[common.Hash]bool{}, map[uint64]bool{}
	for _, p := range got {
		if p.Status != payout.StatusCompleted {
			t.Fatalf("payout %s = %s", p.ID, p.Status)
		}
		txs[*p.TxHash], blocks[p.BlockNumber] = true, true
	}
	if len(txs) < 3 || len(blocks) != 1 {
		t.Errorf("30 payouts in %d transactions over %d blocks, want 3 or more chunks mined together in one block", len(txs), len(blocks))
	}
}
