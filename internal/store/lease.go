package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// AcquireLease takes or renews the lease that makes owner the only sender
// for (chainID, sender) until now+ttl, in one upsert that only overwrites
// an expired lease or the owner's own. It returns payout.ErrLeaseHeld when
// another owner holds an unexpired lease.
func (db *DB) AcquireLease(ctx context.Context, chainID uint64, sender common.Address, owner string, ttl time.Duration) error {
	if owner == "" {
		return errors.New("store: acquire lease: empty owner")
	}
	return db.withTx(ctx, "acquire_lease", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		res, err := db.execTx(ctx, tx, db.d.q.acquireLease, int64(chainID), addrText(sender), owner,
			db.d.time(now.Add(ttl)), db.d.time(now))
		if err != nil {
			return db.wrap("acquire lease", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return db.wrap("acquire lease", err)
		}
		if n == 0 {
			return payout.ErrLeaseHeld
		}
		return nil
	})
}

// ReleaseLease gives the lease up if owner holds it; otherwise it does
// nothing.
func (db *DB) ReleaseLease(ctx context.Context, chainID uint64, sender common.Address, owner string) error {
	return db.withTx(ctx, "release_lease", func(ctx context.Context, tx *sql.Tx, _ time.Time) error {
		_, err := db.execTx(ctx, tx, db.d.q.releaseLease, int64(chainID), addrText(sender), owner)
		return db.wrap("release lease", err)
	})
}
