package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// insertIdem stores rec, or returns *payout.IdempotencyConflictError with
// the record already stored under its scope and key. A zero CreatedAt
// becomes now.
func (db *DB) insertIdem(ctx context.Context, tx *sql.Tx, now time.Time, rec *payout.IdempotencyRecord) error {
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = now
	}
	rec.CreatedAt = rec.CreatedAt.UTC().Truncate(time.Microsecond)
	body := rec.ResponseBody
	if body == nil {
		body = []byte{}
	}
	res, err := db.execTx(ctx, tx, db.d.q.insertIdem, rec.Scope, rec.Key, rec.Fingerprint,
		rec.ResponseStatus, body, db.d.time(rec.CreatedAt))
	if err != nil {
		return db.wrap("insert idempotency", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return db.wrap("insert idempotency", err)
	}
	existing, err := scanIdem(db.queryRowTx(ctx, tx, db.d.q.selectIdem, rec.Scope, rec.Key))
	if err != nil {
		return db.wrap("read idempotency", err)
	}
	return &payout.IdempotencyConflictError{Existing: existing}
}

func scanIdem(s scanner) (*payout.IdempotencyRecord, error) {
	var (
		r       payout.IdempotencyRecord
		created dbTime
	)
	if err := s.Scan(&r.Scope, &r.Key, &r.Fingerprint, &r.ResponseStatus, &r.ResponseBody, &created); err != nil {
		return nil, err
	}
	r.CreatedAt = created.t
	return &r, nil
}

// GetIdempotency returns payout.ErrNotFound when the key was never used.
func (db *DB) GetIdempotency(ctx context.Context, scope, key string) (_ *payout.IdempotencyRecord, err error) {
	defer db.track("get_idempotency")(&err)
	r, err := scanIdem(db.queryRowRead(ctx, db.d.q.selectIdem, scope, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNotFound
	}
	return r, db.wrap("get idempotency", err)
}

// DeleteIdempotencyBefore removes records created before t and says how
// many it removed.
func (db *DB) DeleteIdempotencyBefore(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	err := db.withTx(ctx, "delete_idempotency", func(ctx context.Context, tx *sql.Tx, _ time.Time) error {
		res, err := tx.ExecContext(ctx, db.d.q.deleteIdemBefore, db.d.time(t.UTC().Truncate(time.Microsecond)))
		if err != nil {
			return db.wrap("delete idempotency", err)
		}
		n, err = res.RowsAffected()
		return db.wrap("delete idempotency", err)
	})
	return n, err
}
