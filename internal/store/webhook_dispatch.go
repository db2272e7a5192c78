package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// RedeliverEvent makes an event's deliveries pending and due at now: to
// endpointID, or to every endpoint whose filter matches when it is "".
func (db *DB) RedeliverEvent(ctx context.Context, eventID, endpointID string, now time.Time) ([]*payout.WebhookDelivery, error) {
	var out []*payout.WebhookDelivery
	err := db.withTx(ctx, "redeliver_event", func(ctx context.Context, tx *sql.Tx, txNow time.Time) error {
		out = nil
		ev, err := scanOutboxEvent(tx.QueryRowContext(ctx, db.wq().selectEvent, eventID))
		if errors.Is(err, sql.ErrNoRows) {
			return payout.ErrNotFound
		}
		if err != nil {
			return db.wrap("redeliver: read event", err)
		}
		eps, err := db.redeliveryTargets(ctx, tx, endpointID)
		if err != nil {
			return err
		}
		for _, ep := range eps {
			if endpointID == "" && !ep.Matches(ev.Type) {
				continue
			}
			d := &payout.WebhookDelivery{ID: payout.NewWebhookDeliveryID(txNow), EndpointID: ep.ID, EventID: ev.ID,
				EventType: ev.Type, EventSeq: ev.Seq, Status: payout.DeliveryPending, NextAttemptAt: now, CreatedAt: txNow, UpdatedAt: txNow}
			_, err := tx.ExecContext(ctx, db.wq().upsertRedelivery, d.ID, d.EndpointID, d.EventID, d.EventSeq, d.EventType,
				db.nullTime(now), db.d.time(txNow), db.d.time(txNow))
			if err != nil {
				return db.wrap("redeliver", err)
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// redeliveryTargets returns the named endpoint (ErrNotFound when absent),
// or every enabled one.
func (db *DB) redeliveryTargets(ctx context.Context, tx *sql.Tx, endpointID string) ([]*payout.WebhookEndpoint, error) {
	if endpointID != "" {
		ep, err := db.scanEndpoint(tx.QueryRowContext(ctx, db.wq().selectEndpoint, endpointID))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, payout.ErrNotFound
		}
		return []*payout.WebhookEndpoint{ep}, db.wrap("redeliver: read endpoint", err)
	}
	rows, err := tx.QueryContext(ctx, db.wq().enabledEndpoints, true)
	if err != nil {
		return nil, db.wrap("redeliver: read endpoints", err)
	}
	eps, err := collect(rows, db.scanEndpoint)
	return eps, db.wrap("redeliver: read endpoints", err)
}

// EnabledWebhookEndpoints returns every enabled endpoint, for fan-out.
func (db *DB) EnabledWebhookEndpoints(ctx context.Context) (_ []*payout.WebhookEndpoint, err error) {
	defer db.track("enabled_webhook_endpoints")(&err)
	rows, err := db.queryRead(ctx, db.wq().enabledEndpoints, true)
	if err != nil {
		return nil, db.wrap("enabled webhook endpoints", err)
	}
	eps, err := collect(rows, db.scanEndpoint)
	return eps, db.wrap("enabled webhook endpoints", err)
}

// AcquireWebhookLease takes or renews the dispatcher's lease and returns
// the fan-out cursor.
func (db *DB) AcquireWebhookLease(ctx context.Context, owner string, ttl time.Duration) (int64, error) {
	if owner == "" {
		return 0, errors.New("store: acquire webhook lease: empty owner")
	}
	var cursor int64
	err := db.withTx(ctx, "acquire_webhook_lease", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		err := tx.QueryRowContext(ctx, db.wq().acquireLease, owner, db.d.time(now.Add(ttl)), db.d.time(now)).Scan(&cursor)
		if errors.Is(err, sql.ErrNoRows) {
			return payout.ErrLeaseHeld
		}
		return db.wrap("acquire webhook lease", err)
	})
	return cursor, err
}

// ReleaseWebhookLease ends owner's lease now, so another instance may take
// it at once.
func (db *DB) ReleaseWebhookLease(ctx context.Context, owner string) error {
	return db.withTx(ctx, "release_webhook_lease", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		_, err := tx.ExecContext(ctx, db.wq().releaseLease, db.d.time(now), owner)
		return db.wrap("release webhook lease", err)
	})
}

// fanOutChunk is how many deliveries one INSERT writes.
const fanOutChunk = 100

// FanOutEvents stores new deliveries and moves the cursor from `from` to
// `to`, if owner still holds an unexpired lease and the cursor is at from.
func (db *DB) FanOutEvents(ctx context.Context, owner string, from, to int64, ds []*payout.WebhookDelivery) error {
	return db.withTx(ctx, "fan_out_events", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		res, err := tx.ExecContext(ctx, db.wq().moveCursor, to, owner, from, db.d.time(now))
		if err != nil {
			return db.wrap("fan out: move cursor", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(payout.ErrLeaseHeld, err)
		}
		for start := 0; start < len(ds); start += fanOutChunk {
			chunk := ds[start:min(start+fanOutChunk, len(ds))]
			q := `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_seq, event_type, status,
				next_attempt_at, created_at, updated_at) VALUES `
			args := make([]any, 0, len(chunk)*9)
			for i, d := range chunk {
				if i > 0 {
					q += ", "
				}
				q += "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
				d.CreatedAt, d.UpdatedAt = now, now
				args = append(args, d.ID, d.EndpointID, d.EventID, d.EventSeq, d.EventType, string(d.Status),
					db.nullTime(d.NextAttemptAt), db.d.time(now), db.d.time(now))
			}
			q += " ON CONFLICT (endpoint_id, event_id) DO NOTHING"
			if db.d.name == "postgres" {
				q = rebind(q)
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return db.wrap("fan out: insert deliveries", err)
			}
		}
		return nil
	})
}

// ClaimDueDeliveries returns pending deliveries of enabled endpoints due at
// now, except those in inFlight, and moves their next attempt to until.
// Deliveries in flight are left as they are: one whose result was just
// recorded keeps the next attempt the result set.
func (db *DB) ClaimDueDeliveries(ctx context.Context, now, until time.Time, limit int, inFlight map[string]struct{}) ([]payout.DueDelivery, error) {
	// Most calls find nothing due: answer those from a read, without a
	// write transaction (whose commit would wake the caller again).
	var one int
	err := db.queryRowRead(ctx, db.wq().anyDue, db.d.time(now), true).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, db.wrap("claim deliveries", err)
	}
	var out []payout.DueDelivery
	start := time.Now()
	err = db.ownDurableTx(ctx, "claim_webhook_deliveries", func(ctx context.Context, tx *sql.Tx, txNow time.Time) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, db.wq().dueDeliveries, db.d.time(now), true, limit+len(inFlight))
		if err != nil {
			return db.wrap("claim deliveries", err)
		}
		due, err := collect(rows, func(s scanner) (payout.DueDelivery, error) {
			var (
				d                payout.WebhookDelivery
				status           string
				next, last       dbNullTime
				created, updated dbTime
				e                payout.Event
				data             string
				evCreated        dbTime
			)
			err := s.Scan(&d.ID, &d.EndpointID, &d.EventID, &d.EventSeq, &d.EventType, &status, &d.Attempts,
				&next, &last, &d.LastStatusCode, &d.LastError, &created, &updated,
				&e.Seq, &e.ID, &e.Type, &e.ObjectID, &e.ObjectSeq, &data, &evCreated)
			d.Status, d.NextAttemptAt, d.LastAttemptAt, d.CreatedAt, d.UpdatedAt = payout.DeliveryStatus(status), next.t, last.t, created.t, updated.t
			e.Data, e.CreatedAt = json.RawMessage(data), evCreated.t
			return payout.DueDelivery{Delivery: &d, Event: e}, err
		})
		if err != nil {
			return db.wrap("claim deliveries", err)
		}
		due = slices.DeleteFunc(due, func(d payout.DueDelivery) bool {
			_, busy := inFlight[d.Delivery.ID]
			return busy
		})
		due = due[:min(len(due), limit)]
		if len(due) == 0 {
			return errNothingClaimed
		}
		eps := map[string]*payout.WebhookEndpoint{}
		for i := range due {
			id := due[i].Delivery.EndpointID
			if eps[id] == nil {
				ep, err := db.scanEndpoint(tx.QueryRowContext(ctx, db.wq().selectEndpoint, id))
				if err != nil {
					return db.wrap("claim deliveries: read endpoint", err)
				}
				eps[id] = ep
			}
			due[i].Endpoint = eps[id]
			if _, err := tx.ExecContext(ctx, db.wq().claimDelivery, db.d.time(until), db.d.time(txNow), due[i].Delivery.ID); err != nil {
				return db.wrap("claim deliveries", err)
			}
			due[i].Delivery.NextAttemptAt = until
		}
		out = due
		return nil
	})
	if errors.Is(err, errNothingClaimed) {
		out, err = nil, nil
	}
	db.metrics.observe("claim_webhook_deliveries", start, err)
	return out, err
}

// errNothingClaimed rolls a claim that found nothing back: its commit
// would wake the dispatcher for nothing.
var errNothingClaimed = errors.New("nothing claimed")

// endpointOutcome sums up a batch of results for one endpoint.
type endpointOutcome struct {
	succeeded   bool
	firstFailed time.Time
	disable     string
}

// RecordWebhookResults stores a batch of attempts and what they decide.
// A result for a delivery that no longer exists (its endpoint was deleted)
// is skipped.
func (db *DB) RecordWebhookResults(ctx context.Context, rs []payout.WebhookResult) error {
	return db.withTx(ctx, "record_webhook_results", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		outcomes := map[string]*endpointOutcome{}
		// Parsed once per batch: most of a small statement's cost on SQLite.
		update, err := tx.PrepareContext(ctx, db.wq().updateDelivery)
		if err != nil {
			return db.wrap("record webhook results: prepare", err)
		}
		defer func() { _ = update.Close() }()
		insert, err := tx.PrepareContext(ctx, db.wq().insertAttempt)
		if err != nil {
			return db.wrap("record webhook results: prepare", err)
		}
		defer func() { _ = insert.Close() }()
		for _, r := range rs {
			next := db.nullTime(r.NextAttemptAt)
			if r.Status != payout.DeliveryPending {
				next = nil
			}
			res, err := update.ExecContext(ctx, string(r.Status), next, db.d.time(r.At),
				r.StatusCode, r.Error, db.d.time(now), r.DeliveryID)
			if err != nil {
				return db.wrap("record webhook result", err)
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				if err != nil {
					return db.wrap("record webhook result", err)
				}
				continue // its endpoint was deleted while it was sent
			}
			if _, err := insert.ExecContext(ctx, r.DeliveryID, r.Attempt, db.d.time(r.At),
				r.StatusCode, r.Error, r.Duration.Microseconds()); err != nil {
				return db.wrap("record webhook attempt", err)
			}
			o := outcomes[r.EndpointID]
			if o == nil {
				o = &endpointOutcome{}
				outcomes[r.EndpointID] = o
			}
			switch {
			case r.Status == payout.DeliverySucceeded:
				o.succeeded = true
			case o.firstFailed.IsZero() || r.At.Before(o.firstFailed):
				o.firstFailed = r.At
			}
			if r.Disable != "" {
				o.disable = r.Disable
			}
		}
		for id, o := range outcomes {
			if err := db.recordEndpointHealth(ctx, tx, now, id, o); err != nil {
				return err
			}
		}
		return nil
	})
}

func (db *DB) recordEndpointHealth(ctx context.Context, tx *sql.Tx, now time.Time, id string, o *endpointOutcome) error {
	var err error
	if o.succeeded {
		_, err = tx.ExecContext(ctx, db.wq().endpointHealthy, id)
	} else {
		_, err = tx.ExecContext(ctx, db.wq().endpointFailing, db.d.time(o.firstFailed), id)
	}
	if err != nil {
		return db.wrap("record endpoint health", err)
	}
	if o.disable == "" {
		return nil
	}
	res, err := tx.ExecContext(ctx, db.wq().disableEndpoint, false, o.disable, db.d.time(now), id, true)
	if err != nil {
		return db.wrap("disable endpoint", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return db.wrap("disable endpoint", err) // already disabled (or deleted): no second event
	}
	ep, err := db.scanEndpoint(tx.QueryRowContext(ctx, db.wq().selectEndpoint, id))
	if err != nil {
		return db.wrap("disable endpoint: read", err)
	}
	data, err := json.Marshal(ep)
	if err != nil {
		return fmt.Errorf("store: encode endpoint: %w", err)
	}
	var seq int64
	if err := db.queryRowTx(ctx, tx, db.d.q.nextObjectSeq, id).Scan(&seq); err != nil {
		return db.wrap("next event seq", err)
	}
	_, err = db.execTx(ctx, tx, db.d.q.insertEvent, payout.DefaultIDs.New("evt_", now), payout.EventWebhookEndpointDisabled,
		id, seq, string(data), db.d.time(now))
	return db.wrap("insert event", err)
}
