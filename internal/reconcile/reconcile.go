// Package reconcile compares Sluice's books with the chain (invariant 6:
// the books match the chain). For one hot wallet over a range of blocks it
// reads the wallet's balances before and after, and explains the change
// with what Sluice recorded: the payouts that paid (the store's ledger),
// the fee of every transaction Sluice signed that was mined (from the
// receipts), and the tokens the wallet received (Transfer logs). What is
// left unexplained is drift: a token balance that moved without a payout,
// a native balance lower than the books say, or a nonce used by a
// transaction Sluice did not sign.
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
)

// receiptsPerCall bounds one batch of receipt lookups.
const receiptsPerCall = 200

// maxForeignLookups bounds how many foreign nonces are looked up on chain
// to name their transaction; the others are listed by nonce only.
const maxForeignLookups = 20

// Books is what a reconciliation reads of Sluice's own records.
type Books interface {
	PaidBetween(ctx context.Context, chainID uint64, wallet common.Address, from, to uint64) ([]payout.Paid, error)
	AttemptsAtNonces(ctx context.Context, chainID uint64, wallet common.Address, from, to uint64) ([]*payout.Attempt, error)
	// UnrecordedPayouts returns which of the payouts still wait for their
	// transaction to be recorded as mined.
	UnrecordedPayouts(ctx context.Context, ids []string) ([]string, error)
}

// Chain is what a reconciliation reads of the chain (an *evm.Client).
type Chain interface {
	NonceAt(ctx context.Context, account common.Address, number uint64) (uint64, error)
	BalanceAt(ctx context.Context, account common.Address, number uint64) (*big.Int, error)
	TokenBalanceAt(ctx context.Context, token, account common.Address, number uint64) (*big.Int, error)
	TokenTransfersIn(ctx context.Context, token, account common.Address, from, to uint64) (*big.Int, int, error)
	Receipts(ctx context.Context, hashes []common.Hash) ([]*evm.Receipt, error)
	BlockReceipts(ctx context.Context, number uint64) ([]*evm.Receipt, error)
	FindNonceUser(ctx context.Context, account common.Address, nonce, head uint64) (evm.TxRef, uint64, error)
}

// Request names the wallet and the blocks: the books of blocks From+1 to
// To, against the balances after From and after To.
type Request struct {
	Chain   string
	ChainID uint64
	Wallet  common.Address
	Assets  []payout.Asset // the native coin first, by convention
	From    uint64
	To      uint64
	// Progress, when set, is told how far the reading of receipts is:
	// attempts looked up, or blocks read.
	Progress func(done, total uint64)
}

// Report is one wallet's reconciliation.
type Report struct {
	Chain     string         `json:"chain"`
	Wallet    common.Address `json:"wallet"`
	FromBlock uint64         `json:"from_block"` // balances after this block
	ToBlock   uint64         `json:"to_block"`
	FromNonce uint64         `json:"from_nonce"` // the wallet's nonce after FromBlock
	ToNonce   uint64         `json:"to_nonce"`
	// Transactions counts Sluice's transactions mined in the range.
	Transactions int `json:"transactions"`
	// Foreign lists the nonces in the range that no transaction Sluice
	// signed used: someone else holds the wallet's key.
	Foreign []Foreign `json:"foreign"`
	// Unrecorded lists the payouts whose transaction the chain mined in
	// the range but the engine has not recorded yet (it is behind, or
	// down): their amounts are missing from the books, so what looks like
	// drift may not be. Reconcile again once the engine has caught up.
	Unrecorded []string `json:"unrecorded_payouts"`
	Assets     []Line   `json:"assets"`
}

// Recorded reports whether every payout mined in the range is in the
// books, so that the comparison says something.
func (r *Report) Recorded() bool { return len(r.Unrecorded) == 0 }

// Foreign is a nonce the wallet used for a transaction Sluice did not sign.
type Foreign struct {
	Nonce uint64       `json:"nonce"`
	Tx    *common.Hash `json:"tx_hash"` // nil when it was not looked up or not found
	Block uint64       `json:"block,omitempty"`
}

// Line is one asset's books: the balance change explained by payouts,
// fees and transfers in, and what is left.
type Line struct {
	Asset    string   `json:"asset"`
	Decimals uint8    `json:"decimals"`
	Native   bool     `json:"native"`
	Opening  *big.Int `json:"opening"` // on chain, after FromBlock
	Closing  *big.Int `json:"closing"` // on chain, after ToBlock
	Paid     *big.Int `json:"paid"`    // by payouts mined in the range (the ledger)
	Payouts  int      `json:"payouts"`
	// Fees is the gas of Sluice's mined transactions (native coin only).
	Fees *big.Int `json:"fees,omitempty"`
	// Received is what Transfer logs brought the wallet (tokens only: a
	// native top-up leaves no log, so it shows as Unexplained > 0).
	Received  *big.Int `json:"received,omitempty"`
	Transfers int      `json:"transfers_in,omitempty"`
	// Unexplained is Closing − Opening + Paid + Fees − Received: zero when
	// the books match; for the native coin, above zero it is coin received.
	Unexplained *big.Int `json:"unexplained"`
	Drift       bool     `json:"drift"`
}

// MarshalJSON writes the amounts as decimal strings of base units, as
// Sluice writes money in JSON.
func (l Line) MarshalJSON() ([]byte, error) {
	type plain Line // Line without this method
	return json.Marshal(struct {
		plain
		Opening     string  `json:"opening"`
		Closing     string  `json:"closing"`
		Paid        string  `json:"paid"`
		Fees        *string `json:"fees,omitempty"`
		Received    *string `json:"received,omitempty"`
		Unexplained string  `json:"unexplained"`
	}{plain(l), l.Opening.String(), l.Closing.String(), l.Paid.String(), decimalOrNil(l.Fees), decimalOrNil(l.Received), l.Unexplained.String()})
}

// decimalOrNil is v as a decimal string, or nil for nil.
func decimalOrNil(v *big.Int) *string {
	if v == nil {
		return nil
	}
	s := v.String()
	return &s
}

// Balanced reports whether the books match the chain: no asset drifts and
// every nonce in the range was Sluice's.
func (r *Report) Balanced() bool {
	if len(r.Foreign) > 0 {
		return false
	}
	for _, l := range r.Assets {
		if l.Drift {
			return false
		}
	}
	return true
}

// Run reconciles one wallet over req's blocks.
func Run(ctx context.Context, books Books, chain Chain, req Request) (*Report, error) {
	if req.From >= req.To {
		return nil, fmt.Errorf("the range is empty: from block %d must be below to block %d", req.From, req.To)
	}
	r := &Report{Chain: req.Chain, Wallet: req.Wallet, FromBlock: req.From, ToBlock: req.To}
	var err error
	if r.FromNonce, err = chain.NonceAt(ctx, req.Wallet, req.From); err != nil {
		return nil, stateHint(fmt.Errorf("nonce after block %d: %w", req.From, err), req.From)
	}
	if r.ToNonce, err = chain.NonceAt(ctx, req.Wallet, req.To); err != nil {
		return nil, fmt.Errorf("nonce after block %d: %w", req.To, err)
	}
	fees, err := r.minedFees(ctx, books, chain, req)
	if err != nil {
		return nil, err
	}
	paid, err := books.PaidBetween(ctx, req.ChainID, req.Wallet, req.From, req.To)
	if err != nil {
		return nil, fmt.Errorf("payouts mined in the range: %w", err)
	}
	for _, a := range req.Assets {
		l, err := assetLine(ctx, chain, req, a, paid)
		if err != nil {
			return nil, err
		}
		if l.Native {
			l.Fees = fees
		}
		l.settle()
		r.Assets = append(r.Assets, l)
	}
	return r, nil
}

// assetLine reads an asset's balances (and, for a token, the transfers
// in) and takes its payouts from paid.
func assetLine(ctx context.Context, chain Chain, req Request, a payout.Asset, paid []payout.Paid) (Line, error) {
	l := Line{Asset: a.Symbol, Decimals: a.Decimals, Native: a.Native(), Paid: new(big.Int)}
	for _, p := range paid {
		if p.Asset == a.Symbol {
			l.Paid, l.Payouts = p.Amount, p.Payouts
		}
	}
	var err error
	if l.Native {
		if l.Opening, err = chain.BalanceAt(ctx, req.Wallet, req.From); err != nil {
			return l, stateHint(err, req.From)
		}
		l.Closing, err = chain.BalanceAt(ctx, req.Wallet, req.To)
		return l, err
	}
	if l.Opening, err = chain.TokenBalanceAt(ctx, *a.Token, req.Wallet, req.From); err != nil {
		return l, stateHint(err, req.From)
	}
	if l.Closing, err = chain.TokenBalanceAt(ctx, *a.Token, req.Wallet, req.To); err != nil {
		return l, err
	}
	l.Received, l.Transfers, err = chain.TokenTransfersIn(ctx, *a.Token, req.Wallet, req.From+1, req.To)
	return l, err
}

// stateHint adds what to do to a read of a block's state that the node
// no longer keeps.
func stateHint(err error, block uint64) error {
	if prunedState(err) {
		return fmt.Errorf("%w: the node keeps no state for block %d (a full node keeps about the last 128 blocks): "+
			"reconcile a more recent range, or add an archive node as an upstream", err, block)
	}
	return err
}

// prunedState reports whether err is a node's answer that it no longer
// keeps a block's state.
func prunedState(err error) bool {
	kind, _ := evm.Classify(err)
	return kind == evm.KindNodeBehind
}

// settle computes what the books leave unexplained, and whether it is
// drift: any difference for a token (its transfers in are all seen), a
// native balance below what the books say (coin left the wallet without a
// payout or a fee of Sluice's).
func (l *Line) settle() {
	u := new(big.Int).Sub(l.Closing, l.Opening)
	u.Add(u, l.Paid)
	if l.Fees != nil {
		u.Add(u, l.Fees)
	}
	if l.Received != nil {
		u.Sub(u, l.Received)
	}
	l.Unexplained = u
	if l.Native {
		l.Drift = u.Sign() < 0
	} else {
		l.Drift = u.Sign() != 0
	}
}

// minedFees finds, for each nonce the wallet used in the range, the
// attempt of Sluice's that was mined there, and sums their fees. A nonce
// used by no attempt's transaction, nor by the EIP-7702 authorization a
// mined attempt carried for the wallet, is foreign.
func (r *Report) minedFees(ctx context.Context, books Books, chain Chain, req Request) (*big.Int, error) {
	fees := new(big.Int)
	if r.ToNonce <= r.FromNonce {
		return fees, nil
	}
	attempts, err := books.AttemptsAtNonces(ctx, req.ChainID, req.Wallet, r.FromNonce, r.ToNonce)
	if err != nil {
		return nil, fmt.Errorf("attempts at nonces %d-%d: %w", r.FromNonce, r.ToNonce-1, err)
	}
	mined, err := minedReceipts(ctx, chain, req, attempts)
	if err != nil {
		return nil, err
	}
	used := map[uint64]bool{}
	var payouts []string
	for _, a := range attempts {
		rc := mined[a.TxHash]
		if rc == nil {
			continue // a replaced attempt
		}
		payouts = append(payouts, a.PayoutID)
		if rc.EffectiveGasPrice == nil {
			return nil, fmt.Errorf("receipt of %s has no effective gas price", a.TxHash.Hex())
		}
		fees.Add(fees, rc.Fee())
		used[a.Nonce] = true
		r.Transactions++
		for _, n := range authorizedNonces(a, req.Wallet) {
			used[n] = true
		}
	}
	if r.Unrecorded, err = books.UnrecordedPayouts(ctx, payouts); err != nil {
		return nil, fmt.Errorf("payouts mined in the range: %w", err)
	}
	for n := r.FromNonce; n < r.ToNonce; n++ {
		if !used[n] {
			r.Foreign = append(r.Foreign, Foreign{Nonce: n})
		}
	}
	for i := range r.Foreign[:min(len(r.Foreign), maxForeignLookups)] {
		f := &r.Foreign[i]
		ref, block, err := chain.FindNonceUser(ctx, req.Wallet, f.Nonce, req.To)
		if err != nil && !errors.Is(err, evm.ErrNotFound) {
			continue // named by nonce only; the node may not keep old state
		}
		if err == nil {
			h := ref.Hash
			f.Tx, f.Block = &h, block
		}
	}
	return fees, nil
}

// minedReceipts returns the receipts of the attempts mined in the range,
// by transaction hash. With fewer attempts than blocks it looks each one
// up; otherwise it reads every block's receipts once: a node finds one
// transaction's receipt by decoding its whole block's, so thousands of
// lookups in full blocks cost the node thousands of blocks' work
// (BenchmarkReconcile: 1,900 attempts/s by hash).
func minedReceipts(ctx context.Context, chain Chain, req Request, attempts []*payout.Attempt) (map[common.Hash]*evm.Receipt, error) {
	mined := map[common.Hash]*evm.Receipt{}
	inRange := func(rc *evm.Receipt) bool {
		return rc != nil && rc.BlockNumber > req.From && rc.BlockNumber <= req.To
	}
	if blocks := req.To - req.From; uint64(len(attempts)) >= blocks {
		ours := make(map[common.Hash]bool, len(attempts))
		for _, a := range attempts {
			ours[a.TxHash] = true
		}
		for n := req.From + 1; n <= req.To; n++ {
			receipts, err := chain.BlockReceipts(ctx, n)
			if err != nil {
				return nil, fmt.Errorf("receipts of block %d: %w", n, err)
			}
			for _, rc := range receipts {
				if ours[rc.TxHash] && inRange(rc) {
					mined[rc.TxHash] = rc
				}
			}
			if req.Progress != nil {
				req.Progress(n-req.From, blocks)
			}
		}
		return mined, nil
	}
	for start := 0; start < len(attempts); start += receiptsPerCall {
		batch := attempts[start:min(len(attempts), start+receiptsPerCall)]
		hashes := make([]common.Hash, len(batch))
		for i, a := range batch {
			hashes[i] = a.TxHash
		}
		receipts, err := chain.Receipts(ctx, hashes)
		if err != nil {
			return nil, fmt.Errorf("receipts of nonces %d-%d: %w", batch[0].Nonce, batch[len(batch)-1].Nonce, err)
		}
		for i, rc := range receipts {
			if inRange(rc) {
				mined[hashes[i]] = rc
			}
		}
		if req.Progress != nil {
			req.Progress(uint64(start+len(batch)), uint64(len(attempts)))
		}
	}
	return mined, nil
}

// authorizedNonces returns the nonces of the wallet's own EIP-7702
// authorizations that an attempt's transaction carried: applying one uses
// the wallet's next nonce.
func authorizedNonces(a *payout.Attempt, wallet common.Address) []uint64 {
	var tx types.Transaction
	if err := tx.UnmarshalBinary(a.RawTx); err != nil || tx.Type() != types.SetCodeTxType {
		return nil
	}
	var out []uint64
	for _, auth := range tx.SetCodeAuthorizations() {
		if who, err := auth.Authority(); err == nil && who == wallet {
			out = append(out, auth.Nonce)
		}
	}
	return out
}
