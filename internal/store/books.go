package store

import (
	"context"
	"fmt"
	"math/big"
	"sort"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// PaidBetween returns, per asset, what the sender's payouts mined in
// blocks from+1 to to paid: payouts confirming or completed whose
// transaction succeeded and was not the cancel. Assets are sorted.
func (db *DB) PaidBetween(ctx context.Context, chainID uint64, sender common.Address, from, to uint64) (_ []payout.Paid, err error) {
	defer db.track("paid_between")(&err)
	rows, err := db.queryRead(ctx, db.d.q.paidBetween, int64(chainID), addrText(sender), int64(from), int64(to))
	if err != nil {
		return nil, db.wrap("paid between", err)
	}
	defer func() { _ = rows.Close() }()
	byAsset := map[string]*payout.Paid{}
	for rows.Next() {
		var asset, amount string
		if err := rows.Scan(&asset, &amount); err != nil {
			return nil, db.wrap("paid between", err)
		}
		v, ok := new(big.Int).SetString(amount, 10)
		if !ok {
			return nil, fmt.Errorf("store: paid between: amount %q of a %s payout is not an integer", amount, asset)
		}
		p := byAsset[asset]
		if p == nil {
			p = &payout.Paid{Asset: asset, Amount: new(big.Int)}
			byAsset[asset] = p
		}
		p.Amount.Add(p.Amount, v)
		p.Payouts++
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("paid between", err)
	}
	out := make([]payout.Paid, 0, len(byAsset))
	for _, p := range byAsset {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Asset < out[j].Asset })
	return out, nil
}

// AttemptsAtNonces returns every attempt the sender signed at nonces from
// (included) to to (excluded), by nonce: at most one of a nonce's attempts
// is mined.
func (db *DB) AttemptsAtNonces(ctx context.Context, chainID uint64, sender common.Address, from, to uint64) (_ []*payout.Attempt, err error) {
	defer db.track("attempts_at_nonces")(&err)
	rows, err := db.queryRead(ctx, db.d.q.attemptsAtNonces, int64(chainID), addrText(sender), int64(from), int64(to))
	if err != nil {
		return nil, db.wrap("attempts at nonces", err)
	}
	as, err := collect(rows, scanAttempt)
	return as, db.wrap("attempts at nonces", err)
}
