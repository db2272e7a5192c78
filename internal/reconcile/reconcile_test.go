package reconcile

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
)

// fakeChain is a chain read from fixed answers: the node's side of a
// reconciliation without a node (the real one runs in cmd/sluice's
// TestReconcile).
type fakeChain struct {
	nonces   map[uint64]uint64   // after block
	balances map[uint64]*big.Int // native, after block
	tokens   map[uint64]*big.Int // token, after block
	in       *big.Int
	receipts map[common.Hash]*evm.Receipt
	lookups  int
	// blockReads counts BlockReceipts calls.
	blockReads int
	// balanceErr, when set, is every balance read's answer.
	balanceErr error
	// prunedBelow: the node keeps no state for blocks below it.
	prunedBelow uint64
}

func (c *fakeChain) NonceAt(_ context.Context, _ common.Address, n uint64) (uint64, error) {
	if n < c.prunedBelow {
		return 0, errors.New("missing trie node 0x12 (path )")
	}
	return c.nonces[n], nil
}
func (c *fakeChain) BalanceAt(_ context.Context, _ common.Address, n uint64) (*big.Int, error) {
	if c.balanceErr != nil {
		return nil, c.balanceErr
	}
	return c.balances[n], nil
}
func (c *fakeChain) TokenBalanceAt(_ context.Context, _, _ common.Address, n uint64) (*big.Int, error) {
	return c.tokens[n], nil
}
func (c *fakeChain) TokenTransfersIn(context.Context, common.Address, common.Address, uint64, uint64) (*big.Int, int, error) {
	return c.in, 1, nil
}
func (c *fakeChain) Receipts(_ context.Context, hs []common.Hash) ([]*evm.Receipt, error) {
	c.lookups++
	out := make([]*evm.Receipt, len(hs))
	for i, h := range hs {
		out[i] = c.receipts[h]
	}
	return out, nil
}
func (c *fakeChain) BlockReceipts(_ context.Context, n uint64) ([]*evm.Receipt, error) {
	c.blockReads++
	var out []*evm.Receipt
	for h, r := range c.receipts {
		if r.BlockNumber == n {
			cp := *r
			cp.TxHash = h
			out = append(out, &cp)
		}
	}
	return out, nil
}
func (c *fakeChain) FindNonceUser(context.Context, common.Address, uint64, uint64) (evm.TxRef, uint64, error) {
	return evm.TxRef{}, 0, evm.ErrNotFound
}

type fakeBooks struct {
	paid     []payout.Paid
	attempts []*payout.Attempt
	// unrecorded: payouts still waiting to be recorded as mined.
	unrecorded map[string]bool
}

func (b *fakeBooks) UnrecordedPayouts(_ context.Context, ids []string) ([]string, error) {
	var out []string
	for id := range b.unrecorded {
		if slices.Contains(ids, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

func (b *fakeBooks) PaidBetween(context.Context, uint64, common.Address, uint64, uint64) ([]payout.Paid, error) {
	return b.paid, nil
}
func (b *fakeBooks) AttemptsAtNonces(_ context.Context, _ uint64, _ common.Address, from, to uint64) ([]*payout.Attempt, error) {
	var out []*payout.Attempt
	for _, a := range b.attempts {
		if a.Nonce >= from && a.Nonce < to {
			out = append(out, a)
		}
	}
	return out, nil
}

func receipt(block, gas uint64, price int64) *evm.Receipt {
	return &evm.Receipt{BlockNumber: block, GasUsed: gas, EffectiveGasPrice: big.NewInt(price), Success: true}
}

// TestRunExplainsEveryNonceAndFee: a replaced attempt's fee does not
// count, its replacement's does; the nonce an EIP-7702 authorization of the
// wallet's used is Sluice's; a receipt in a block outside the range is not
// the range's; a nonce nobody of Sluice's used is foreign; tokens the
// wallet holds beyond its payouts and transfers in are drift.
func TestRunExplainsEveryNonceAndFee(t *testing.T) {
	key, _ := crypto.GenerateKey()
	wallet := crypto.PubkeyToAddress(key.PublicKey)
	token := common.HexToAddress("0x70")
	delegating := setCodeTx(t, key, 10)
	replaced, mined, outside := common.Hash{1}, common.Hash{2}, common.Hash{3}
	books := &fakeBooks{
		paid: []payout.Paid{{Asset: "ETH", Amount: big.NewInt(1_000), Payouts: 2}, {Asset: "TOK", Amount: big.NewInt(50), Payouts: 1}},
		attempts: []*payout.Attempt{
			{PayoutID: "po_a", Nonce: 10, TxHash: delegating.Hash(), RawTx: rawOf(t, delegating)}, // uses 10 and, by its authorization, 11
			{PayoutID: "po_b", Nonce: 12, TxHash: replaced},
			{PayoutID: "po_b", Nonce: 12, TxHash: mined},
			{PayoutID: "po_c", Nonce: 13, TxHash: outside},
		},
		unrecorded: map[string]bool{"po_c": true}, // mined after the range: not asked about
	}
	chain := &fakeChain{
		nonces:   map[uint64]uint64{100: 10, 110: 15}, // nonces 10-14 used
		balances: map[uint64]*big.Int{100: big.NewInt(1_000_000), 110: big.NewInt(1_000_000 - 1_000 - 21_000*7 - 30_000*7)},
		tokens:   map[uint64]*big.Int{100: big.NewInt(500), 110: big.NewInt(500 - 50 + 20 + 3)},
		in:       big.NewInt(20),
		receipts: map[common.Hash]*evm.Receipt{
			delegating.Hash(): receipt(101, 21_000, 7),
			mined:             receipt(102, 30_000, 7),
			outside:           receipt(111, 99_000, 7), // not in blocks 101-110
		},
	}
	var progress []uint64
	req := Request{Chain: "c", ChainID: 1, Wallet: wallet, From: 100, To: 110,
		Assets:   []payout.Asset{{Symbol: "ETH", Decimals: 18}, {Symbol: "TOK", Decimals: 6, Token: &token}},
		Progress: func(done, total uint64) { progress = append(progress, done, total) }}
	r, err := Run(context.Background(), books, chain, req)
	if err != nil {
		t.Fatal(err)
	}
	if r.Transactions != 2 || len(r.Foreign) != 2 || r.Foreign[0].Nonce != 13 || r.Foreign[1].Nonce != 14 {
		t.Fatalf("transactions %d, foreign %+v: want 2 of Sluice's and nonces 13, 14 foreign", r.Transactions, r.Foreign)
	}
	eth, tok := r.Assets[0], r.Assets[1]
	if eth.Fees.Int64() != (21_000+30_000)*7 || eth.Drift || eth.Unexplained.Sign() != 0 {
		t.Errorf("ETH: fees %s, unexplained %s, drift %v; want the two mined fees and nothing unexplained", eth.Fees, eth.Unexplained, eth.Drift)
	}
	if tok.Unexplained.Int64() != 3 || !tok.Drift || tok.Received.Int64() != 20 {
		t.Errorf("TOK: unexplained %s, drift %v; want 3 of drift", tok.Unexplained, tok.Drift)
	}
	if r.Balanced() || !r.Recorded() {
		t.Errorf("a report with foreign nonces and token drift: balanced %v, recorded %v (%v); want not balanced, recorded", r.Balanced(), r.Recorded(), r.Unrecorded)
	}
	if len(progress) != 2 || progress[0] != 4 || progress[1] != 4 || chain.lookups != 1 || chain.blockReads != 0 {
		t.Errorf("progress %v, %d lookups, %d block reads; want the 4 attempts looked up by hash in one call", progress, chain.lookups, chain.blockReads)
	}

	// Over blocks 101-102 the three attempts at nonces 10-12 are more than
	// the blocks: the blocks' receipts are read instead, with the same books.
	chain.nonces[102], chain.balances[102], chain.tokens[102] = 13, big.NewInt(1_000_000-1_000-21_000*7-30_000*7), big.NewInt(500-50+20)
	chain.lookups, progress = 0, nil
	req.To = 102
	r, err = Run(context.Background(), books, chain, req)
	if err != nil {
		t.Fatal(err)
	}
	if r.Transactions != 2 || len(r.Foreign) != 0 || !r.Balanced() || r.Assets[0].Fees.Int64() != (21_000+30_000)*7 {
		t.Errorf("blocks 101-102: %d transactions, foreign %+v, balanced %v, fees %s; want the same two, nothing foreign", r.Transactions, r.Foreign, r.Balanced(), r.Assets[0].Fees)
	}
	if chain.lookups != 0 || chain.blockReads != 2 || len(progress) != 4 || progress[2] != 2 || progress[3] != 2 {
		t.Errorf("%d lookups, %d block reads, progress %v; want the 2 blocks read, none looked up", chain.lookups, chain.blockReads, progress)
	}

	// The engine has not recorded po_b's transaction yet: the report says
	// so, and its missing amount cannot be called drift with confidence.
	books.unrecorded["po_b"] = true
	if r, err = Run(context.Background(), books, chain, req); err != nil {
		t.Fatal(err)
	}
	if r.Recorded() || len(r.Unrecorded) != 1 || r.Unrecorded[0] != "po_b" {
		t.Errorf("unrecorded %v, want po_b named", r.Unrecorded)
	}
}

// TestRunRefusesAnEmptyRange: from must be below to.
func TestRunRefusesAnEmptyRange(t *testing.T) {
	_, err := Run(context.Background(), &fakeBooks{}, &fakeChain{}, Request{From: 5, To: 5})
	if err == nil || !strings.Contains(err.Error(), "must be below") {
		t.Fatalf("err %v, want the empty range refused", err)
	}
}

// TestPrunedStateSaysWhatToDo: a node without the opening block's state
// gets an error that says to narrow the range or use an archive node.
func TestPrunedStateSaysWhatToDo(t *testing.T) {
	chain := &fakeChain{nonces: map[uint64]uint64{}, balanceErr: errors.New("historical state 0x12 is not available")}
	_, err := Run(context.Background(), &fakeBooks{}, chain, Request{From: 5, To: 900, Assets: []payout.Asset{{Symbol: "ETH"}}})
	if err == nil || !strings.Contains(err.Error(), "no state for block 5") || !strings.Contains(err.Error(), "archive node") {
		t.Fatalf("err %v, want the pruned state named with what to do", err)
	}
}

// TestNativeCoinInIsNotDrift: a native balance above the books is a
// top-up; below them, drift.
func TestNativeCoinInIsNotDrift(t *testing.T) {
	for _, c := range []struct {
		closing int64
		drift   bool
	}{{1_100, false}, {1_000, false}, {999, true}} {
		l := Line{Native: true, Opening: big.NewInt(1_000), Closing: big.NewInt(c.closing), Paid: new(big.Int), Fees: new(big.Int)}
		l.settle()
		if l.Drift != c.drift || l.Unexplained.Int64() != c.closing-1_000 {
			t.Errorf("closing %d: unexplained %s drift %v, want %d %v", c.closing, l.Unexplained, l.Drift, c.closing-1_000, c.drift)
		}
	}
}

// setCodeTx is a transaction at nonce carrying the wallet's own EIP-7702
// authorization (at nonce+1, as a wallet delegating itself signs it).
func setCodeTx(t *testing.T, k *ecdsa.PrivateKey, nonce uint64) *types.Transaction {
	t.Helper()
	auth, err := types.SignSetCode(k, types.SetCodeAuthorization{ChainID: *uint256.NewInt(1), Address: common.HexToAddress("0xe0"), Nonce: nonce + 1})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := types.SignNewTx(k, types.NewPragueSigner(big.NewInt(1)), &types.SetCodeTx{ChainID: uint256.NewInt(1), Nonce: nonce,
		GasTipCap: uint256.NewInt(1), GasFeeCap: uint256.NewInt(10), Gas: 100_000, To: crypto.PubkeyToAddress(k.PublicKey),
		Value: uint256.NewInt(0), AuthList: []types.SetCodeAuthorization{auth}})
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func rawOf(t *testing.T, tx *types.Transaction) []byte {
	t.Helper()
	raw, err := tx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestFeesIncludeTheL1DataFee: on an OP-stack chain the wallet pays each
// receipt's l1Fee on top of the gas; the books count it, so they match.
func TestFeesIncludeTheL1DataFee(t *testing.T) {
	wallet := common.HexToAddress("0xa1")
	tx := common.Hash{7}
	rc := receipt(11, 21_000, 3)
	rc.L1Fee = big.NewInt(500)
	books := &fakeBooks{attempts: []*payout.Attempt{{PayoutID: "po_1", Nonce: 0, TxHash: tx}},
		paid: []payout.Paid{{Asset: "ETH", Amount: big.NewInt(1_000), Payouts: 1}}}
	chain := &fakeChain{nonces: map[uint64]uint64{10: 0, 20: 1},
		balances: map[uint64]*big.Int{10: big.NewInt(1_000_000), 20: big.NewInt(1_000_000 - 1_000 - 21_000*3 - 500)},
		receipts: map[common.Hash]*evm.Receipt{tx: rc}}
	r, err := Run(context.Background(), books, chain, Request{Wallet: wallet, From: 10, To: 20, Assets: []payout.Asset{{Symbol: "ETH"}}})
	if err != nil {
		t.Fatal(err)
	}
	if l := r.Assets[0]; !r.Balanced() || l.Fees.Int64() != 21_000*3+500 || l.Unexplained.Sign() != 0 {
		t.Errorf("fees %s, unexplained %s, balanced %v; want the gas and the l1Fee counted, nothing unexplained", l.Fees, l.Unexplained, r.Balanced())
	}
}
