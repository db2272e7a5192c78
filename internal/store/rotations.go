package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

var _ payout.RotationStore = (*DB)(nil)

const rotationCols = `id, chain, chain_id, from_wallet, to_wallet, status, sweeps, note, created_by, created_at, updated_at`

func scanRotation(s scanner) (*payout.Rotation, error) {
	var (
		r                payout.Rotation
		chainID          int64
		from, to, status string
		sweeps           string
		created, updated dbTime
	)
	if err := s.Scan(&r.ID, &r.Chain, &chainID, &from, &to, &status, &sweeps, &r.Note, &r.CreatedBy, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(sweeps), &r.Sweeps); err != nil {
		return nil, fmt.Errorf("rotation %s: sweeps: %w", r.ID, err)
	}
	if r.Sweeps == nil {
		r.Sweeps = []string{}
	}
	r.Object, r.ChainID, r.From, r.To, r.Status = "wallet_rotation", uint64(chainID), common.HexToAddress(from), common.HexToAddress(to),
		payout.RotationStatus(status)
	r.CreatedAt, r.UpdatedAt = created.t, updated.t
	return &r, nil
}

// CreateRotation stores a draining rotation with its audit entry and its
// event, in one transaction.
func (db *DB) CreateRotation(ctx context.Context, r *payout.Rotation) error {
	if r.ID == "" || r.From == r.To {
		return fmt.Errorf("store: create rotation: an id and two different wallets are required")
	}
	return db.withTx(ctx, "create_rotation", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		r.Object, r.Status, r.Sweeps, r.CreatedAt, r.UpdatedAt = "wallet_rotation", payout.RotationDraining, []string{}, now, now
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO wallet_rotations (`+rotationCols+`) VALUES (?, ?, ?, ?, ?, ?, '[]', '', ?, ?, ?)`),
			r.ID, r.Chain, int64(r.ChainID), r.From.Hex(), r.To.Hex(), string(r.Status), r.CreatedBy, db.d.time(now), db.d.time(now))
		if err = db.d.interpret(err); errors.Is(err, errUnique) {
			return payout.ErrRotationExists
		}
		if err != nil {
			return db.wrap("create rotation", err)
		}
		if err := db.auditTx(ctx, tx, now, r.CreatedBy, payout.AuditRotationCreate, r.ID,
			map[string]any{"chain": r.Chain, "from": r.From.Hex(), "to": r.To.Hex()}); err != nil {
			return err
		}
		return db.appendEventTx(ctx, tx, now, r.ID, payout.EventRotationStarted, r)
	})
}

// GetRotation returns a rotation or payout.ErrNotFound.
func (db *DB) GetRotation(ctx context.Context, id string) (_ *payout.Rotation, err error) {
	defer db.track("get_rotation")(&err)
	r, err := scanRotation(db.read.QueryRowContext(ctx, db.q(`SELECT `+rotationCols+` FROM wallet_rotations WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNotFound
	}
	return r, db.wrap("get rotation", err)
}

// Rotations returns every rotation, oldest first.
func (db *DB) Rotations(ctx context.Context) (_ []*payout.Rotation, err error) {
	defer db.track("rotations")(&err)
	rows, err := db.read.QueryContext(ctx, `SELECT `+rotationCols+` FROM wallet_rotations ORDER BY created_at, id`)
	if err != nil {
		return nil, db.wrap("rotations", err)
	}
	rs, err := collect(rows, scanRotation)
	return rs, db.wrap("rotations", err)
}

// lockRotation reads a rotation in tx (locked on PostgreSQL) and checks
// its status.
func (db *DB) lockRotation(ctx context.Context, tx *sql.Tx, id string, want payout.RotationStatus) (*payout.Rotation, error) {
	r, err := scanRotation(tx.QueryRowContext(ctx, db.q(`SELECT `+rotationCols+` FROM wallet_rotations WHERE id = ?`+db.d.forUpdate), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNotFound
	}
	if err != nil {
		return nil, db.wrap("read rotation", err)
	}
	if r.Status != want {
		return nil, fmt.Errorf("store: rotation %s is %s, not %s", id, r.Status, want)
	}
	return r, nil
}

// saveRotation writes a rotation's status, sweeps and note with its event.
func (db *DB) saveRotation(ctx context.Context, tx *sql.Tx, now time.Time, r *payout.Rotation, event string) error {
	sweeps, err := json.Marshal(r.Sweeps)
	if err != nil {
		return err
	}
	r.UpdatedAt = now
	if _, err := db.execTx(ctx, tx, db.q(`UPDATE wallet_rotations SET status = ?, sweeps = ?, note = ?, updated_at = ? WHERE id = ?`),
		string(r.Status), string(sweeps), r.Note, db.d.time(now), r.ID); err != nil {
		return db.wrap("save rotation", err)
	}
	return db.appendEventTx(ctx, tx, now, r.ID, event, r)
}

// StartSweep stores the sweep payouts and moves a draining rotation to
// sweeping, in one transaction; with no sweeps it completes it.
func (db *DB) StartSweep(ctx context.Context, id string, sweeps []*payout.Payout, note string) error {
	rows := make([]*newRow, len(sweeps))
	for i, p := range sweeps {
		if !payout.IsSweepOf(p, id) {
			return fmt.Errorf("store: start sweep of %s: payout %s is not one of its sweeps", id, p.ID)
		}
		var err error
		if rows[i], err = db.encodeNew(p, nil); err != nil {
			return err
		}
	}
	return db.withTx(ctx, "start_sweep", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		r, err := db.lockRotation(ctx, tx, id, payout.RotationDraining)
		if err != nil {
			return err
		}
		for i, row := range rows {
			if sweeps[i].Sender != r.From || sweeps[i].To != r.To || sweeps[i].ChainID != r.ChainID {
				return fmt.Errorf("store: start sweep of %s: payout %s does not go from %s to %s", id, sweeps[i].ID, r.From.Hex(), r.To.Hex())
			}
			if err := db.createInTx(ctx, tx, now, row); err != nil {
				return err
			}
			r.Sweeps = append(r.Sweeps, sweeps[i].ID)
		}
		r.Note = note
		if len(sweeps) == 0 {
			r.Status = payout.RotationCompleted
			return db.saveRotation(ctx, tx, now, r, payout.EventRotationCompleted)
		}
		r.Status = payout.RotationSweeping
		return db.saveRotation(ctx, tx, now, r, payout.EventRotationSweeping)
	})
}

// CompleteRotation moves a sweeping rotation to completed.
func (db *DB) CompleteRotation(ctx context.Context, id, note string) error {
	return db.withTx(ctx, "complete_rotation", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		r, err := db.lockRotation(ctx, tx, id, payout.RotationSweeping)
		if err != nil {
			return err
		}
		r.Status, r.Note = payout.RotationCompleted, note
		return db.saveRotation(ctx, tx, now, r, payout.EventRotationCompleted)
	})
}
