package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// insertEvent writes the outbox row reporting p's change to its current
// Version, in the transaction that made the change.
func (db *DB) insertEvent(ctx context.Context, tx *sql.Tx, now time.Time, typ string, p *payout.Payout) error {
	data, err := p.MarshalJSON() // compact already: json.Marshal would check and copy it again
	if err != nil {
		return fmt.Errorf("store: encode event: %w", err)
	}
	id := payout.DefaultIDs.New("evt_", now)
	_, err = db.execTx(ctx, tx, db.d.q.insertEvent, id, typ, p.ID, p.Version, string(data), db.d.time(now))
	return db.wrap("insert event", err)
}

// AppendEvent writes an event about an object that is not a payout (a hot
// wallet, say), numbered after that object's previous events.
func (db *DB) AppendEvent(ctx context.Context, objectID, eventType string, data any) error {
	return db.withTx(ctx, "append_event", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		return db.appendEventTx(ctx, tx, now, objectID, eventType, data)
	})
}

// appendEventTx writes an event about any object in tx, with the object's
// next sequence number.
func (db *DB) appendEventTx(ctx context.Context, tx *sql.Tx, now time.Time, objectID, eventType string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("store: encode event: %w", err)
	}
	var seq int64
	if err := db.queryRowTx(ctx, tx, db.d.q.nextObjectSeq, objectID).Scan(&seq); err != nil {
		return db.wrap("next event seq", err)
	}
	id := payout.DefaultIDs.New("evt_", now)
	_, err = db.execTx(ctx, tx, db.d.q.insertEvent, id, eventType, objectID, seq, string(b), db.d.time(now))
	return db.wrap("insert event", err)
}

// ListEvents returns events with Seq > afterSeq, oldest first; limit is
// clamped to 1..1000 (100 when not positive). A reader that moves its
// position to the last Seq it got never misses an event: on PostgreSQL,
// where a sequence hands out seqs before commit, it first waits for the
// transactions that hold one to end.
func (db *DB) ListEvents(ctx context.Context, afterSeq int64, limit int) (_ []payout.Event, err error) {
	defer db.track("list_events")(&err)
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var evs []payout.Event
	err = db.readEvents(ctx, func(q querier) (err error) {
		evs, err = db.listEvents(ctx, q, afterSeq, limit)
		return err
	})
	return evs, err
}

// LastEventSeq returns the seq of the newest event (0: none); every event
// up to it is committed, as ListEvents sees them.
func (db *DB) LastEventSeq(ctx context.Context) (last int64, err error) {
	defer db.track("last_event_seq")(&err)
	err = db.readEvents(ctx, func(q querier) error {
		return q.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&last)
	})
	return last, db.wrap("last event seq", err)
}

// readEvents runs read in a snapshot that holds every event given a seq
// before it began: on PostgreSQL it first waits for the transactions that
// hold one to end (eventsBarrier); SQLite has one writer and needs nothing.
func (db *DB) readEvents(ctx context.Context, read func(querier) error) error {
	if db.d.q.eventsBarrier == "" {
		return read(preparedReads{db})
	}
	tx, err := db.read.BeginTx(ctx, nil)
	if err != nil {
		return db.wrap("read events", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, db.d.q.eventsBarrier); err != nil {
		return db.wrap("read events: wait for writers", err)
	}
	if err := read(tx); err != nil {
		return err
	}
	return db.wrap("read events", tx.Commit())
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (db *DB) listEvents(ctx context.Context, q querier, afterSeq int64, limit int) ([]payout.Event, error) {
	rows, err := q.QueryContext(ctx, db.d.q.listEvents, afterSeq, limit)
	if err != nil {
		return nil, db.wrap("list events", err)
	}
	evs, err := collect(rows, scanEvent)
	return evs, db.wrap("list events", err)
}

// eventCols are the columns scanEvent reads, in its order.
const eventCols = "seq, id, type, object_id, object_seq, data, created_at"

func scanEvent(s scanner) (payout.Event, error) {
	var (
		e       payout.Event
		data    string
		created dbTime
	)
	err := s.Scan(&e.Seq, &e.ID, &e.Type, &e.ObjectID, &e.ObjectSeq, &data, &created)
	e.Data, e.CreatedAt = json.RawMessage(data), created.t
	return e, err
}

// CountByStatus counts payouts per status; every known status is present,
// with 0 when no payout has it.
func (db *DB) CountByStatus(ctx context.Context) (_ map[payout.Status]int64, err error) {
	defer db.track("count_by_status")(&err)
	rows, err := db.queryRead(ctx, db.d.q.countByStatus)
	if err != nil {
		return nil, db.wrap("count by status", err)
	}
	defer func() { _ = rows.Close() }()
	counts := make(map[payout.Status]int64, len(payout.Statuses))
	for _, s := range payout.Statuses {
		counts[s] = 0
	}
	for rows.Next() {
		var (
			s string
			n int64
		)
		if err := rows.Scan(&s, &n); err != nil {
			return nil, db.wrap("count by status", err)
		}
		counts[payout.Status(s)] = n
	}
	return counts, db.wrap("count by status", rows.Err())
}
