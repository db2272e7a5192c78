package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

var _ payout.WebhookStore = (*DB)(nil)

// webhookSQL holds the webhook statements of each dialect.
var webhookSQL = map[string]*webhookQueries{"sqlite": newWebhookQueries("sqlite"), "postgres": newWebhookQueries("postgres")}

func (db *DB) wq() *webhookQueries { return webhookSQL[db.d.name] }

// nullTime stores a zero time as NULL.
func (db *DB) nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return db.d.time(t.UTC().Truncate(time.Microsecond))
}

// dbNullTime scans a time that may be NULL (zero then).
type dbNullTime struct{ t time.Time }

func (d *dbNullTime) Scan(v any) error {
	if v == nil {
		d.t = time.Time{}
		return nil
	}
	var t dbTime
	err := t.Scan(v)
	d.t = t.t
	return err
}

func (db *DB) scanEndpoint(s scanner) (*payout.WebhookEndpoint, error) {
	var (
		e                payout.WebhookEndpoint
		events           string
		prevExp, failing dbNullTime
		created, updated dbTime
	)
	err := s.Scan(&e.ID, &e.URL, &e.Description, &events, &e.Enabled, &e.DisabledReason, &e.Secret,
		&e.PreviousSecret, &prevExp, &failing, &created, &updated)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(events), &e.EnabledEvents); err != nil {
		return nil, fmt.Errorf("enabled_events of %s: %w", e.ID, err)
	}
	e.PreviousSecretExpiresAt, e.FailingSince, e.CreatedAt, e.UpdatedAt = prevExp.t, failing.t, created.t, updated.t
	if e.Secret, err = db.unseal(endpointAAD(e.ID, "secret"), e.Secret); err != nil {
		return nil, err
	}
	if e.PreviousSecret, err = db.unseal(endpointAAD(e.ID, "previous_secret"), e.PreviousSecret); err != nil {
		return nil, err
	}
	return &e, nil
}

func scanDelivery(s scanner) (*payout.WebhookDelivery, error) {
	var (
		d                payout.WebhookDelivery
		status           string
		next, last       dbNullTime
		created, updated dbTime
	)
	err := s.Scan(&d.ID, &d.EndpointID, &d.EventID, &d.EventSeq, &d.EventType, &status, &d.Attempts,
		&next, &last, &d.LastStatusCode, &d.LastError, &created, &updated)
	d.Status, d.NextAttemptAt, d.LastAttemptAt, d.CreatedAt, d.UpdatedAt = payout.DeliveryStatus(status), next.t, last.t, created.t, updated.t
	return &d, err
}

func (db *DB) endpointArgs(e *payout.WebhookEndpoint) ([]any, error) {
	events, err := json.Marshal(e.EnabledEvents)
	if err != nil {
		return nil, fmt.Errorf("store: encode enabled_events: %w", err)
	}
	secret, err := db.seal(endpointAAD(e.ID, "secret"), e.Secret)
	if err != nil {
		return nil, err
	}
	previous, err := db.seal(endpointAAD(e.ID, "previous_secret"), e.PreviousSecret)
	if err != nil {
		return nil, err
	}
	return []any{e.URL, e.Description, string(events), e.Enabled, e.DisabledReason, secret, previous,
		db.nullTime(e.PreviousSecretExpiresAt), db.nullTime(e.FailingSince)}, nil
}

// CreateWebhookEndpoint stores a new endpoint; CreatedAt and UpdatedAt are
// set to the transaction's time.
func (db *DB) CreateWebhookEndpoint(ctx context.Context, e *payout.WebhookEndpoint) error {
	args, err := db.endpointArgs(e)
	if err != nil {
		return err
	}
	return db.withTx(ctx, "create_webhook_endpoint", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		e.CreatedAt, e.UpdatedAt = now, now
		all := append(append([]any{e.ID}, args...), db.d.time(now), db.d.time(now))
		_, err := tx.ExecContext(ctx, db.wq().insertEndpoint, all...)
		return db.wrap("create webhook endpoint", err)
	})
}

// GetWebhookEndpoint returns payout.ErrNotFound when there is no such endpoint.
func (db *DB) GetWebhookEndpoint(ctx context.Context, id string) (_ *payout.WebhookEndpoint, err error) {
	defer db.track("get_webhook_endpoint")(&err)
	e, err := db.scanEndpoint(db.read.QueryRowContext(ctx, db.wq().selectEndpoint, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNotFound
	}
	return e, db.wrap("get webhook endpoint", err)
}

// ListWebhookEndpoints returns endpoints newest first.
func (db *DB) ListWebhookEndpoints(ctx context.Context, p payout.Page) (_ []*payout.WebhookEndpoint, _ bool, err error) {
	defer db.track("list_webhook_endpoints")(&err)
	return listPage(ctx, db, "webhook_endpoints", db.wq().endpointCols, "", nil, p, db.scanEndpoint)
}

// listPage reads one page of a table keyed by time-ordered ids, newest
// first; where (with args) narrows it.
func listPage[T any](ctx context.Context, db *DB, table, cols, where string, args []any, p payout.Page,
	scan func(scanner) (T, error)) ([]T, bool, error) {
	limit := p.Limit
	if limit <= 0 || limit > 100 {
		limit = 10
	}
	var conds []string
	if where != "" {
		conds = append(conds, where)
	}
	forward := p.EndingBefore != "" && p.StartingAfter == ""
	if p.StartingAfter != "" {
		conds, args = append(conds, "id < ?"), append(args, p.StartingAfter)
	} else if p.EndingBefore != "" {
		conds, args = append(conds, "id > ?"), append(args, p.EndingBefore)
	}
	q := "SELECT " + cols + " FROM " + table
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	if forward {
		q += " ORDER BY id ASC LIMIT ?"
	} else {
		q += " ORDER BY id DESC LIMIT ?"
	}
	args = append(args, limit+1)
	if db.d.name == "postgres" {
		q = rebind(q)
	}
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false, db.wrap("list "+table, err)
	}
	items, err := collect(rows, scan)
	if err != nil {
		return nil, false, db.wrap("list "+table, err)
	}
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	if forward {
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	}
	return items, more, nil
}

// UpdateWebhookEndpoint changes an endpoint with fn in one transaction;
// UpdatedAt is set to the transaction's time.
func (db *DB) UpdateWebhookEndpoint(ctx context.Context, id string, fn func(*payout.WebhookEndpoint) error) (*payout.WebhookEndpoint, error) {
	var out *payout.WebhookEndpoint
	err := db.withTx(ctx, "update_webhook_endpoint", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		e, err := db.scanEndpoint(tx.QueryRowContext(ctx, db.wq().selectEndpoint+db.d.forUpdate, id))
		if errors.Is(err, sql.ErrNoRows) {
			return payout.ErrNotFound
		}
		if err != nil {
			return db.wrap("update webhook endpoint", err)
		}
		if err := fn(e); err != nil {
			return err
		}
		e.UpdatedAt = now
		args, err := db.endpointArgs(e)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.wq().updateEndpoint, append(args, db.d.time(now), id)...); err != nil {
			return db.wrap("update webhook endpoint", err)
		}
		out = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteWebhookEndpoint removes an endpoint, its deliveries and their
// attempts (ON DELETE CASCADE).
func (db *DB) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	return db.withTx(ctx, "delete_webhook_endpoint", func(ctx context.Context, tx *sql.Tx, _ time.Time) error {
		res, err := tx.ExecContext(ctx, db.wq().deleteEndpoint, id)
		if err != nil {
			return db.wrap("delete webhook endpoint", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(payout.ErrNotFound, err)
		}
		return nil
	})
}

// ListWebhookDeliveries returns an endpoint's deliveries newest first.
func (db *DB) ListWebhookDeliveries(ctx context.Context, endpointID string, p payout.Page) (_ []*payout.WebhookDelivery, _ bool, err error) {
	defer db.track("list_webhook_deliveries")(&err)
	if _, err := db.GetWebhookEndpoint(ctx, endpointID); err != nil {
		return nil, false, err
	}
	return listPage(ctx, db, "webhook_deliveries", db.wq().deliveryCols, "endpoint_id = ?", []any{endpointID}, p, scanDelivery)
}

// ListWebhookAttempts returns a delivery's attempts, oldest first, or
// payout.ErrNotFound when there is no such delivery.
func (db *DB) ListWebhookAttempts(ctx context.Context, deliveryID string) (_ []payout.WebhookAttempt, err error) {
	defer db.track("list_webhook_attempts")(&err)
	var one int
	if err := db.read.QueryRowContext(ctx, db.wq().deliveryExists, deliveryID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNotFound
	} else if err != nil {
		return nil, db.wrap("list webhook attempts", err)
	}
	rows, err := db.read.QueryContext(ctx, db.wq().listAttempts, deliveryID)
	if err != nil {
		return nil, db.wrap("list webhook attempts", err)
	}
	as, err := collect(rows, func(s scanner) (payout.WebhookAttempt, error) {
		var (
			a  payout.WebhookAttempt
			at dbTime
			us int64
		)
		err := s.Scan(&a.DeliveryID, &a.Attempt, &at, &a.StatusCode, &a.Error, &us)
		a.At, a.Duration = at.t, time.Duration(us)*time.Microsecond
		return a, err
	})
	return as, db.wrap("list webhook attempts", err)
}

// scanOutboxEvent reads the columns of selectEvent.
func scanOutboxEvent(s scanner) (payout.Event, error) {
	var (
		e       payout.Event
		data    string
		created dbTime
	)
	err := s.Scan(&e.Seq, &e.ID, &e.Type, &e.ObjectID, &e.ObjectSeq, &data, &created)
	e.Data, e.CreatedAt = json.RawMessage(data), created.t
	return e, err
}
