package store

import (
	"strconv"
	"strings"
)

// webhookQueries are the webhook statements. They are written once with ?
// placeholders; rebind numbers them for PostgreSQL.
type webhookQueries struct {
	insertEndpoint, selectEndpoint, updateEndpoint, deleteEndpoint string
	endpointCols, deliveryCols                                     string
	enabledEndpoints                                               string
	endpointHealthy, endpointFailing, disableEndpoint              string
	selectEvent                                                    string
	upsertRedelivery                                               string
	acquireLease, releaseLease, moveCursor                         string
	dueDeliveries                                                  string
	claimDelivery, deliveryExists, anyDue                          string
	updateDelivery, insertAttempt, listAttempts                    string
}

const endpointCols = `id, url, description, enabled_events, enabled, disabled_reason, secret,
	previous_secret, previous_secret_expires_at, failing_since, created_at, updated_at`

const deliveryCols = `id, endpoint_id, event_id, event_seq, event_type, status, attempts,
	next_attempt_at, last_attempt_at, last_status_code, last_error, created_at, updated_at`

func newWebhookQueries(dialect string) *webhookQueries {
	q := &webhookQueries{
		endpointCols: endpointCols,
		deliveryCols: deliveryCols,
		insertEndpoint: `INSERT INTO webhook_endpoints (` + endpointCols + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		selectEndpoint: `SELECT ` + endpointCols + ` FROM webhook_endpoints WHERE id = ?`,
		updateEndpoint: `UPDATE webhook_endpoints SET url = ?, description = ?, enabled_events = ?, enabled = ?,
			disabled_reason = ?, secret = ?, previous_secret = ?, previous_secret_expires_at = ?,
			failing_since = ?, updated_at = ? WHERE id = ?`,
		deleteEndpoint:   `DELETE FROM webhook_endpoints WHERE id = ?`,
		enabledEndpoints: `SELECT ` + endpointCols + ` FROM webhook_endpoints WHERE enabled = ? ORDER BY id`,
		endpointHealthy:  `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL`,
		endpointFailing:  `UPDATE webhook_endpoints SET failing_since = ? WHERE id = ? AND failing_since IS NULL`,
		disableEndpoint: `UPDATE webhook_endpoints SET enabled = ?, disabled_reason = ?, updated_at = ?
			WHERE id = ? AND enabled = ?`,
		selectEvent: `SELECT seq, id, type, object_id, object_seq, data, created_at FROM events WHERE id = ?`,
		upsertRedelivery: `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_seq, event_type, status,
			next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)
			ON CONFLICT (endpoint_id, event_id) DO UPDATE SET status = 'pending',
			next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at`,
		acquireLease: `INSERT INTO webhook_dispatch (name, cursor_seq, owner, expires_at) VALUES ('default', 0, ?, ?)
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
			WHERE webhook_dispatch.owner = excluded.owner OR webhook_dispatch.expires_at <= ?
			RETURNING cursor_seq`,
		releaseLease: `UPDATE webhook_dispatch SET expires_at = ? WHERE name = 'default' AND owner = ?`,
		moveCursor: `UPDATE webhook_dispatch SET cursor_seq = ?
			WHERE name = 'default' AND owner = ? AND cursor_seq = ? AND expires_at > ?`,
		dueDeliveries: `SELECT d.id, d.endpoint_id, d.event_id, d.event_seq, d.event_type, d.status, d.attempts,
			d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at, e.seq, e.id, e.type, e.object_id, e.object_seq, e.data, e.created_at
			FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
			JOIN events e ON e.id = d.event_id
			WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND w.enabled = ?
			ORDER BY d.next_attempt_at LIMIT ?`,
		deliveryExists: `SELECT 1 FROM webhook_deliveries WHERE id = ?`,
		anyDue: `SELECT 1 FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
			WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND w.enabled = ? LIMIT 1`,
		claimDelivery: `UPDATE webhook_deliveries SET next_attempt_at = ?, updated_at = ? WHERE id = ?`,
		updateDelivery: `UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?,
			last_attempt_at = ?, last_status_code = ?, last_error = ?, updated_at = ? WHERE id = ?`,
		insertAttempt: `INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, status_code, error, duration_us)
			VALUES (?, ?, ?, ?, ?, ?)`,
		listAttempts: `SELECT delivery_id, attempt, attempted_at, status_code, error, duration_us
			FROM webhook_attempts WHERE delivery_id = ? ORDER BY id`,
	}
	if dialect == "postgres" {
		for _, s := range []*string{&q.insertEndpoint, &q.selectEndpoint, &q.updateEndpoint, &q.deleteEndpoint,
			&q.enabledEndpoints, &q.endpointHealthy, &q.endpointFailing, &q.disableEndpoint, &q.selectEvent,
			&q.upsertRedelivery, &q.acquireLease, &q.releaseLease, &q.moveCursor, &q.dueDeliveries,
			&q.claimDelivery, &q.deliveryExists, &q.anyDue, &q.updateDelivery, &q.insertAttempt, &q.listAttempts} {
			*s = rebind(*s)
		}
	}
	return q
}

// rebind numbers ? placeholders $1, $2, … for PostgreSQL.
func rebind(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
