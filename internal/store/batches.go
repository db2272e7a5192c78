package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

var _ payout.BatchStore = (*DB)(nil)

const batchCols = `id, status, policy, source, rows_total, rows_invalid, errors, version, created_at, updated_at`

// CreateBatch stores a batch and its payouts, with their events and the
// idempotency record, in one transaction.
func (db *DB) CreateBatch(ctx context.Context, b *payout.Batch, ps []*payout.Payout, idem *payout.IdempotencyRecord) (err error) {
	defer db.track("create_batch")(&err)
	switch {
	case b == nil || b.ID == "":
		return errors.New("store: create batch: no id")
	case b.CreatedAt.IsZero():
		return fmt.Errorf("store: create batch %s: created_at is not set", b.ID)
	}
	b.Start(ps)
	b.CreatedAt = b.CreatedAt.UTC().Truncate(time.Microsecond)
	b.UpdatedAt = b.CreatedAt
	rowErrs, err := json.Marshal(orEmpty(b.Errors))
	if err != nil {
		return fmt.Errorf("store: encode batch errors: %w", err)
	}
	rows := make([]*newRow, len(ps))
	for i, p := range ps {
		if p.BatchID != b.ID {
			return fmt.Errorf("store: create batch %s: payout %s names batch %q", b.ID, p.ID, p.BatchID)
		}
		if rows[i], err = db.encodeNew(p, nil); err != nil {
			return err
		}
	}
	// Thousands of rows: a transaction of its own, bound to ctx, even on
	// SQLite. Grouping would gain it nothing, would make the calls grouped
	// with it wait for all of it, and would bound it by the group's timeout.
	return db.ownDurableTx(ctx, "create_batch", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		if idem != nil {
			if err := db.insertIdem(ctx, tx, now, idem); err != nil {
				return err
			}
		}
		if _, err := db.execTx(ctx, tx, db.q(`INSERT INTO batches (`+batchCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			b.ID, string(b.Status), string(b.Policy), b.Source, b.Rows, b.Invalid, string(rowErrs), b.Version,
			db.d.time(b.CreatedAt), db.d.time(b.UpdatedAt)); err != nil {
			return db.wrap("insert batch", err)
		}
		for _, r := range rows {
			if err := db.createInTx(ctx, tx, now, r); err != nil {
				return err
			}
		}
		return db.appendEventTx(ctx, tx, now, b.ID, payout.EventBatchCreated, b)
	})
}

func orEmpty(errs []payout.RowError) []payout.RowError {
	if errs == nil {
		return []payout.RowError{}
	}
	return errs
}

// GetBatch returns the batch with its counts, totals and fees.
func (db *DB) GetBatch(ctx context.Context, id string) (_ *payout.Batch, err error) {
	defer db.track("get_batch")(&err)
	return db.readBatch(ctx, db.read, id, false)
}

// batchQuerier reads a batch inside or outside a transaction.
type batchQuerier interface {
	querier
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readBatch reads a batch and sums its payouts (amounts are exact decimal
// text on SQLite, so they are added here, not in SQL).
func (db *DB) readBatch(ctx context.Context, q batchQuerier, id string, lock bool) (*payout.Batch, error) {
	query := db.q(`SELECT ` + batchCols + ` FROM batches WHERE id = ?`)
	if lock {
		query += db.d.forUpdate
	}
	var (
		b                payout.Batch
		status, policy   string
		rowErrs          string
		created, updated dbTime
	)
	err := q.QueryRowContext(ctx, query, id).Scan(&b.ID, &status, &policy, &b.Source, &b.Rows, &b.Invalid,
		&rowErrs, &b.Version, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNotFound
	}
	if err != nil {
		return nil, db.wrap("read batch", err)
	}
	b.Status, b.Policy, b.CreatedAt, b.UpdatedAt = payout.BatchStatus(status), payout.BatchPolicy(policy), created.t, updated.t
	if err := json.Unmarshal([]byte(rowErrs), &b.Errors); err != nil {
		return nil, fmt.Errorf("store: batch %s errors: %w", id, err)
	}
	amountCol, feeCol := "amount", "fee"
	if db.d.name == "postgres" {
		amountCol, feeCol = "amount::text", "fee::text"
	}
	rows, err := q.QueryContext(ctx, db.q(`SELECT status, asset, `+amountCol+`, `+feeCol+` FROM payouts WHERE batch_id = ?`), id)
	if err != nil {
		return nil, db.wrap("sum batch", err)
	}
	defer func() { _ = rows.Close() }()
	b.Counts, b.Totals, b.Fees = map[payout.Status]int64{}, map[string]*big.Int{}, new(big.Int)
	for rows.Next() {
		var st, asset, amount string
		var fee sql.NullString
		if err := rows.Scan(&st, &asset, &amount, &fee); err != nil {
			return nil, db.wrap("sum batch", err)
		}
		b.Counts[payout.Status(st)]++
		v, err := parseBig(amount)
		if err != nil {
			return nil, err
		}
		if b.Totals[asset] == nil {
			b.Totals[asset] = new(big.Int)
		}
		b.Totals[asset].Add(b.Totals[asset], v)
		if fee.Valid {
			f, err := parseBig(fee.String)
			if err != nil {
				return nil, err
			}
			b.Fees.Add(b.Fees, f)
		}
	}
	return &b, db.wrap("sum batch", rows.Err())
}

// BatchPayouts returns the batch's payouts in input row order.
func (db *DB) BatchPayouts(ctx context.Context, id string) (_ []*payout.Payout, err error) {
	defer db.track("batch_payouts")(&err)
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT `+db.d.q.payoutCols+` FROM payouts WHERE batch_id = ? ORDER BY batch_row, id`), id)
	if err != nil {
		return nil, db.wrap("batch payouts", err)
	}
	ps, err := collect(rows, scanPayout)
	return ps, db.wrap("batch payouts", err)
}

// TakenExternalIDs returns which of ids belong to stored payouts.
func (db *DB) TakenExternalIDs(ctx context.Context, ids []string) (_ map[string]bool, err error) {
	defer db.track("taken_external_ids")(&err)
	found, err := db.stringsWhereIn(ctx, `SELECT external_id FROM payouts WHERE external_id IN (`, ids)
	if err != nil {
		return nil, db.wrap("taken external ids", err)
	}
	taken := make(map[string]bool, len(found))
	for _, v := range found {
		taken[v] = true
	}
	return taken, nil
}

// stringsWhereIn runs query, which ends in "IN (", for the distinct
// values of in, idChunk at a time, and returns the one text column of
// every row.
func (db *DB) stringsWhereIn(ctx context.Context, query string, in []string) ([]string, error) {
	var out []string
	for chunk := range slices.Chunk(sortedUnique(in), idChunk) {
		args := make([]any, len(chunk))
		for i, v := range chunk {
			args[i] = v
		}
		rows, err := db.read.QueryContext(ctx, query+db.d.placeholders(1, len(chunk))+`)`, args...)
		if err != nil {
			return nil, err
		}
		found, err := collect(rows, func(s scanner) (string, error) {
			var v string
			return v, s.Scan(&v)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	return out, nil
}
