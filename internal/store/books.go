package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"time"

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

// BooksClosedAt returns the block up to which the wallet's books were last
// reconciled; false when they were never opened.
func (db *DB) BooksClosedAt(ctx context.Context, chainID uint64, wallet common.Address) (_ uint64, _ bool, err error) {
	defer db.track("books_closed_at")(&err)
	var block int64
	err = db.queryRowRead(ctx, db.d.q.booksClosed, int64(chainID), addrText(wallet)).Scan(&block)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, db.wrap("books closed at", err)
	}
	return uint64(block), true, nil
}

// OpenBooks marks the wallet's books reconciled up to block, unless they
// are open already (then it changes nothing).
func (db *DB) OpenBooks(ctx context.Context, chainID uint64, wallet common.Address, block uint64) error {
	return db.withTx(ctx, "open_books", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		_, err := db.execTx(ctx, tx, db.d.q.openBooks, int64(chainID), addrText(wallet), int64(block), db.d.time(now))
		return db.wrap("open books", err)
	})
}

// CloseBooks moves the wallet's mark from block from to block to and, when
// drift is not nil, writes the wallet.drift event with it as data, in one
// transaction. It returns false, writing nothing, when the mark is no
// longer at from: another instance reconciled those blocks meanwhile.
func (db *DB) CloseBooks(ctx context.Context, chainID uint64, wallet common.Address, from, to uint64, drift any) (moved bool, err error) {
	err = db.withTx(ctx, "close_books", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		res, err := db.execTx(ctx, tx, db.d.q.closeBooks, int64(to), db.d.time(now), int64(chainID), addrText(wallet), int64(from))
		if err != nil {
			return db.wrap("close books", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return db.wrap("close books", err)
		}
		if moved = n == 1; !moved || drift == nil {
			return nil
		}
		return db.appendEventTx(ctx, tx, now, payout.WalletObjectID(chainID, wallet), payout.EventWalletDrift, drift)
	})
	return moved, err
}

// UnrecordedPayouts returns which of the payouts ids are still waiting for
// their transaction to be recorded as mined (submitted or stuck): a
// reconciliation over blocks where the chain has mined them would take
// their amounts for drift.
func (db *DB) UnrecordedPayouts(ctx context.Context, ids []string) (_ []string, err error) {
	defer db.track("unrecorded_payouts")(&err)
	out, err := db.stringsWhereIn(ctx, `SELECT id FROM payouts WHERE status IN ('submitted', 'stuck') AND id IN (`, ids)
	return out, db.wrap("unrecorded payouts", err)
}
