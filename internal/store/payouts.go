package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// CreatePayout stores a new queued (or pending_approval) payout with its payout.created event and,
// when idem is not nil, its idempotency record, in one transaction. It sets
// p.Version to 1 and keeps p's times in UTC at microsecond precision, as
// they are stored. On SQLite concurrent calls share one transaction (see
// groupCommitter); one call's conflict does not fail the others.
func (db *DB) CreatePayout(ctx context.Context, p *payout.Payout, idem *payout.IdempotencyRecord) error {
	row, err := db.encodeNew(p, idem)
	if err != nil {
		return err
	}
	return db.withTx(ctx, "create_payout", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		return db.createInTx(ctx, tx, now, row)
	})
}

// newRow is a CreatePayout call encoded before its transaction, so that
// SQLite's single writer only runs statements.
type newRow struct {
	p         *payout.Payout
	idem      *payout.IdempotencyRecord
	args      []any // insertPayout's
	eventID   string
	eventData string
}

// encodeNew checks that p can be stored as a new payout, normalises it and
// encodes its row and its event.
func (db *DB) encodeNew(p *payout.Payout, idem *payout.IdempotencyRecord) (*newRow, error) {
	switch {
	case p == nil:
		return nil, errors.New("store: create payout: nil payout")
	case p.ID == "":
		return nil, errors.New("store: create payout: empty id")
	case p.Amount == nil || p.Amount.Sign() <= 0:
		return nil, fmt.Errorf("store: create payout %s: amount must be positive", p.ID)
	case p.Status != "" && p.Status != payout.StatusQueued && p.Status != payout.StatusPendingApproval:
		return nil, fmt.Errorf("store: create payout %s: status %q, want queued or pending_approval", p.ID, p.Status)
	case p.CreatedAt.IsZero():
		return nil, fmt.Errorf("store: create payout %s: created_at is not set", p.ID)
	}
	if p.Status == "" {
		p.Status = payout.StatusQueued
	}
	p.Version = 1
	p.CreatedAt = p.CreatedAt.UTC().Truncate(time.Microsecond)
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = p.CreatedAt
	}
	p.UpdatedAt = p.UpdatedAt.UTC().Truncate(time.Microsecond)
	if p.Priority == "" {
		p.Priority = payout.PriorityStandard
	}
	meta, err := metadataText(p.Metadata)
	if err != nil {
		return nil, fmt.Errorf("store: encode metadata: %w", err)
	}
	data, err := p.MarshalJSON() // compact already: json.Marshal would check and copy it again
	if err != nil {
		return nil, fmt.Errorf("store: encode event: %w", err)
	}
	return &newRow{p: p, idem: idem, eventID: payout.DefaultIDs.New("evt_", db.clock()), eventData: string(data),
		args: []any{p.ID, string(p.Status), p.Chain, int64(p.ChainID), p.Asset, addrText(p.To), p.Amount.String(),
			nullString(p.ExternalID), meta, addrText(p.Sender), p.Version, db.d.time(p.CreatedAt), db.d.time(p.UpdatedAt),
			string(p.Priority), nullString(p.BatchID), nullBatchRow(p)},
	}, nil
}

func nullBatchRow(p *payout.Payout) sql.NullInt64 {
	return sql.NullInt64{Int64: int64(p.BatchRow), Valid: p.BatchID != ""}
}

// createInTx writes the idempotency record first so that a replayed key
// is found before anything else is tried, then the payout and its event.
func (db *DB) createInTx(ctx context.Context, tx *sql.Tx, now time.Time, r *newRow) error {
	if r.idem != nil {
		if err := db.insertIdem(ctx, tx, now, r.idem); err != nil {
			return err
		}
	}
	res, err := db.execTx(ctx, tx, db.d.q.insertPayout, r.args...)
	if err != nil {
		return db.wrap("insert payout", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return db.duplicateExternalID(ctx, tx, r.p.ExternalID, err)
	}
	_, err = db.execTx(ctx, tx, db.d.q.insertEvent, r.eventID, payout.EventCreated, r.p.ID, r.p.Version,
		r.eventData, db.d.time(now))
	if err != nil {
		return db.wrap("insert event", err)
	}
	db.wrote(ctx, r.p)
	return nil
}

// duplicateExternalID explains an insert that did nothing: its external_id
// belongs to an existing payout.
func (db *DB) duplicateExternalID(ctx context.Context, tx *sql.Tx, extID string, err error) error {
	if err != nil {
		return db.wrap("insert payout", err)
	}
	var existing string
	if err := db.queryRowTx(ctx, tx, db.d.q.payoutByExtID, extID).Scan(&existing); err != nil {
		return db.wrap("find external id", err)
	}
	return &payout.DuplicateExternalIDError{ExternalID: extID, ExistingID: existing}
}

// GetPayout returns payout.ErrNotFound when there is no such payout.
func (db *DB) GetPayout(ctx context.Context, id string) (_ *payout.Payout, err error) {
	defer db.track("get_payout")(&err)
	p, err := scanPayout(db.queryRowRead(ctx, db.d.q.selectPayout, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNotFound
	}
	return p, db.wrap("get payout", err)
}

// OldestUnfinished returns the oldest payout not in a terminal status (ids
// are time-ordered), or payout.ErrNotFound when there is none.
func (db *DB) OldestUnfinished(ctx context.Context) (_ *payout.Payout, err error) {
	defer db.track("oldest_unfinished")(&err)
	p, err := scanPayout(db.read.QueryRowContext(ctx, db.d.q.oldestUnfinished))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNotFound
	}
	return p, db.wrap("oldest unfinished payout", err)
}

// Page sizes of ListPayouts.
const (
	DefaultListLimit = 10
	MaxListLimit     = 100
)

// ListPayouts returns payouts newest first. StartingAfter pages towards
// older payouts, EndingBefore towards newer ones; the bool says whether
// more exist beyond the page in that direction. A Limit outside
// 1..MaxListLimit is clamped (DefaultListLimit when not positive).
func (db *DB) ListPayouts(ctx context.Context, f payout.ListFilter) (_ []*payout.Payout, _ bool, err error) {
	defer db.track("list_payouts")(&err)
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	forward := f.EndingBefore != "" && f.StartingAfter == "" // walking towards newer payouts
	query, args := db.listQuery(f, forward, limit+1)
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, false, db.wrap("list payouts", err)
	}
	ps, err := collect(rows, scanPayout)
	if err != nil {
		return nil, false, db.wrap("list payouts", err)
	}
	more := len(ps) > limit
	ps = ps[:min(len(ps), limit)]
	if forward {
		slices.Reverse(ps)
	}
	return ps, more, nil
}

// listQuery builds ListPayouts' query: the filters, the cursors as id
// bounds (ids sort in creation order), and the walking direction.
func (db *DB) listQuery(f payout.ListFilter, forward bool, limit int) (string, []any) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, cond+" "+db.d.bind(len(args)))
	}
	if f.Status != "" {
		add("status =", string(f.Status))
	}
	if f.ExternalID != "" {
		add("external_id =", f.ExternalID)
	}
	if f.BatchID != "" {
		add("batch_id =", f.BatchID)
	}
	if f.StartingAfter != "" {
		add("id <", f.StartingAfter)
	}
	if f.EndingBefore != "" {
		add("id >", f.EndingBefore)
	}
	q := "SELECT " + db.d.q.payoutCols + " FROM payouts"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if forward {
		q += " ORDER BY id ASC"
	} else {
		q += " ORDER BY id DESC"
	}
	args = append(args, limit)
	return q + " LIMIT " + db.d.bind(len(args)), args
}

// CancelPayout moves a queued payout to cancelled; a payout in flight gets
// CancelRequested (its sender races a cancel transaction for the nonce).
// It returns payout.ErrNotFound, or payout.ErrNotCancellable when the
// payout is mined or finished (a concurrent SubmitAttempts either sees the
// cancellation or wins, and then the request is recorded instead).
func (db *DB) CancelPayout(ctx context.Context, id string) (*payout.Payout, error) {
	return db.changeOne(ctx, "cancel_payout", id, func(p *payout.Payout) (string, error) {
		switch {
		case p.Status.InFlight() && p.CarrierID != "":
			// One transaction pays the whole chunk: a cancel would race
			// it for every payout in it. It is cancelled by its carrier.
			return "", fmt.Errorf("%w: it is paid by the batch transaction of payout %s", payout.ErrNotCancellable, p.CarrierID)
		case p.Status.InFlight() && p.ChunkAmount != nil && p.Reason != payout.ReasonForeignNonce:
			return "", fmt.Errorf("%w: its batch transaction pays other payouts too", payout.ErrNotCancellable)
		case p.Status == payout.StatusQueued || p.Status == payout.StatusPendingApproval:
			p.Status, p.Reason, p.ReasonDetail = payout.StatusCancelled, "", ""
			return p.Status.EventType(), nil
		case p.Status == payout.StatusStuck && p.Reason == payout.ReasonForeignNonce:
			// Its nonce is gone to someone else's transaction: no cancel
			// can race it, and Sluice never paid it. The reason stays.
			p.Status = payout.StatusCancelled
			return p.Status.EventType(), nil
		case !p.Status.InFlight():
			return "", payout.ErrNotCancellable
		case p.CancelRequested:
			return "", nil
		}
		p.CancelRequested = true
		return payout.EventCancelRequested, nil
	})
}

// RaiseFeeCap sets the fee cap of a payout in flight; a stuck payout goes
// back to submitted. It returns payout.ErrNotFound or payout.ErrNotInFlight.
func (db *DB) RaiseFeeCap(ctx context.Context, id string, feeCap *big.Int) (*payout.Payout, error) {
	if feeCap == nil || feeCap.Sign() <= 0 {
		return nil, fmt.Errorf("store: raise fee cap of %s: the cap must be positive", id)
	}
	if p, err := db.GetPayout(ctx, id); err == nil && p.CarrierID != "" {
		// The fee is its batch transaction's: raise the carrier's cap.
		if _, err := db.RaiseFeeCap(ctx, p.CarrierID, feeCap); err != nil {
			return nil, err
		}
		return db.GetPayout(ctx, id)
	}
	return db.changeOne(ctx, "raise_fee_cap", id, func(p *payout.Payout) (string, error) {
		if !p.Status.InFlight() {
			return "", payout.ErrNotInFlight
		}
		p.FeeCap = new(big.Int).Set(feeCap)
		if p.Status == payout.StatusStuck && p.Reason == payout.ReasonFeeCapReached {
			p.Status, p.Reason, p.ReasonDetail = payout.StatusSubmitted, "", ""
		}
		return payout.EventFeeCapRaised, nil
	})
}

// changeOne locks one payout, lets change edit it and name the event to
// write ("" to write nothing and return the payout as it is), and saves it.
func (db *DB) changeOne(ctx context.Context, op, id string, change func(p *payout.Payout) (string, error)) (*payout.Payout, error) {
	var out *payout.Payout
	err := db.withTx(ctx, op, func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		p, err := scanPayout(db.queryRowTx(ctx, tx, db.d.q.lockPayout, id))
		if errors.Is(err, sql.ErrNoRows) {
			return payout.ErrNotFound
		}
		if err != nil {
			return db.wrap("lock payout", err)
		}
		eventType, err := change(p)
		if err != nil {
			return err
		}
		if eventType != "" {
			if err := db.saveAs(ctx, tx, now, p, eventType); err != nil {
				return err
			}
			if err := db.followOne(ctx, tx, now, p, eventType); err != nil {
				return err
			}
		}
		out = p
		return nil
	})
	return out, err
}

// followOne moves the payouts a changed carrier pays with it, and settles
// p's batch when p ended it.
func (db *DB) followOne(ctx context.Context, tx *sql.Tx, now time.Time, p *payout.Payout, eventType string) error {
	if p.ChunkAmount != nil {
		carried, err := db.lockCarried(ctx, tx, []string{p.ID})
		if err != nil {
			return err
		}
		mirrorCarrier(p, carried[p.ID])
		for _, c := range carried[p.ID] {
			if err := db.saveAs(ctx, tx, now, c, eventType); err != nil {
				return err
			}
		}
	}
	if p.BatchID != "" && p.Status.Terminal() {
		return db.settleBatches(ctx, tx, now, map[string]bool{p.BatchID: true})
	}
	return nil
}

// save writes p's new state, bumping its version, and the event for the
// status it is now in. p must have been read in tx (locked on PostgreSQL).
func (db *DB) save(ctx context.Context, tx *sql.Tx, now time.Time, p *payout.Payout) error {
	return db.saveAs(ctx, tx, now, p, "")
}

// saveAs is save with an event type other than the new status's ("" for
// the status's own).
func (db *DB) saveAs(ctx context.Context, tx *sql.Tx, now time.Time, p *payout.Payout, eventType string) error {
	if eventType == "" {
		eventType = p.Status.EventType()
	}
	prev := p.Version
	p.Version++
	p.UpdatedAt = now
	res, err := db.execTx(ctx, tx, db.d.q.updatePayout, db.d.stateArgs(p, prev)...)
	if err != nil {
		return db.wrap("update payout", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return db.versionChanged("update payout", p.ID, prev, n, err)
	}
	if err := db.insertEvent(ctx, tx, now, eventType, p); err != nil {
		return err
	}
	db.wrote(ctx, p)
	return nil
}

// versionChanged explains a conditional write of payout id that changed
// no row: its version is no longer prev. On SQLite the copy this process
// held was stale (errStaleRow): it is forgotten, so the transaction run
// again reads the row. On PostgreSQL the row was read locked, so this is
// a bug.
func (db *DB) versionChanged(what, id string, prev, n int64, err error) error {
	if db.rows != nil {
		db.rows.forget(id)
		db.metrics.heldRows.WithLabelValues("stale").Inc()
		return fmt.Errorf("store: %s %s: version %d: %w", what, id, prev, errStaleRow)
	}
	return fmt.Errorf("store: %s %s: version %d changed concurrently (%d rows, %v)", what, id, prev, n, err)
}
