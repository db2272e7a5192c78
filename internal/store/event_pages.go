package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"

	"github.com/sluicepay/sluice/internal/payout"
)

// GetEvent returns one event by id, or payout.ErrNotFound.
func (db *DB) GetEvent(ctx context.Context, id string) (_ *payout.Event, err error) {
	defer db.track("get_event")(&err)
	q := "SELECT " + eventCols + " FROM events WHERE id = " + db.d.bind(1)
	e, err := scanEvent(db.read.QueryRowContext(ctx, q, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNotFound
	}
	if err != nil {
		return nil, db.wrap("get event", err)
	}
	return &e, nil
}

// ListEventPage returns a page of events, newest first. Cursors are event
// ids, turned into positions in the outbox (seq), so the order is the
// order events committed in, which a reconciler walking forward with
// ending_before relies on: on PostgreSQL the read waits for writers that
// hold a seq, so a page never skips an event that commits later with a
// lower one.
func (db *DB) ListEventPage(ctx context.Context, f payout.EventFilter) (_ []payout.Event, _ bool, err error) {
	defer db.track("list_event_page")(&err)
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	forward := f.EndingBefore != "" && f.StartingAfter == ""
	var cursorSeq int64
	if cursor := cmp.Or(f.StartingAfter, f.EndingBefore); cursor != "" {
		e, err := db.GetEvent(ctx, cursor)
		if err != nil {
			return nil, false, err
		}
		cursorSeq = e.Seq
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, cond+" "+db.d.bind(len(args)))
	}
	if len(f.Types) > 0 {
		binds := make([]string, len(f.Types))
		for i, t := range f.Types {
			args = append(args, t)
			binds[i] = db.d.bind(len(args))
		}
		where = append(where, "type IN ("+strings.Join(binds, ", ")+")")
	}
	if f.ObjectID != "" {
		add("object_id =", f.ObjectID)
	}
	switch {
	case f.StartingAfter != "":
		add("seq <", cursorSeq)
	case f.EndingBefore != "":
		add("seq >", cursorSeq)
	}
	q := "SELECT " + eventCols + " FROM events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if forward {
		q += " ORDER BY seq ASC"
	} else {
		q += " ORDER BY seq DESC"
	}
	args = append(args, limit+1)
	q += " LIMIT " + db.d.bind(len(args))
	var evs []payout.Event
	err = db.readEvents(ctx, func(r querier) error {
		rows, err := r.QueryContext(ctx, q, args...)
		if err != nil {
			return db.wrap("list event page", err)
		}
		evs, err = collect(rows, scanEvent)
		return db.wrap("list event page", err)
	})
	if err != nil {
		return nil, false, err
	}
	more := len(evs) > limit
	evs = evs[:min(len(evs), limit)]
	if forward {
		slices.Reverse(evs)
	}
	return evs, more, nil
}
