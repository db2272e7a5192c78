package store

import (
	"strconv"
	"time"
)

// postgresDialect stores times as timestamptz and amounts as NUMERIC(78,0).
var postgresDialect = &dialect{
	name:      "postgres",
	q:         postgresQueries,
	bind:      func(n int) string { return "$" + strconv.Itoa(n) },
	time:      func(t time.Time) any { return t.UTC() },
	forUpdate: " FOR UPDATE",
}

const postgresPayoutCols = `id, status, chain, chain_id, asset, to_address, amount::text, external_id,
	metadata, sender, tx_hash, nonce, block_number, block_hash, fee::text, receipt_ok,
	failure_code, failure_message, version, created_at, updated_at,
	priority, status_reason, status_detail, fee_cap::text, cancel_requested, cancel_mined,
	batch_id, batch_row, carrier_id, chunk_pos, gas_weight, chunk_amount::text, log_index`

const postgresAttemptCols = `id, payout_id, chain_id, sender, nonce, tx_hash, raw_tx, gas_limit,
	max_fee_per_gas::text, max_priority_fee_per_gas::text, created_at, kind`

var postgresQueries = queries{
	payoutCols:  postgresPayoutCols,
	attemptCols: postgresAttemptCols,
	insertPayout: `INSERT INTO payouts (id, status, chain, chain_id, asset, to_address, amount,
		external_id, metadata, sender, version, created_at, updated_at, priority, batch_id, batch_row)
		VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		ON CONFLICT (external_id) WHERE external_id IS NOT NULL DO NOTHING`,
	selectPayout:  `SELECT ` + postgresPayoutCols + ` FROM payouts WHERE id = $1`,
	lockPayout:    `SELECT ` + postgresPayoutCols + ` FROM payouts WHERE id = $1 FOR UPDATE`,
	payoutByExtID: `SELECT id FROM payouts WHERE external_id = $1`,
	updatePayout: `UPDATE payouts SET status = $1, tx_hash = $2, nonce = $3, block_number = $4,
		block_hash = $5, fee = $6::numeric, receipt_ok = $7, failure_code = $8, failure_message = $9,
		status_reason = $10, status_detail = $11, fee_cap = $12::numeric, cancel_requested = $13,
		cancel_mined = $14, carrier_id = $15, chunk_pos = $16, gas_weight = $17, chunk_amount = $18::numeric,
		log_index = $19, version = $20, updated_at = $21 WHERE id = $22 AND version = $23`,
	countByStatus: `SELECT status, COUNT(*) FROM payouts GROUP BY status`,
	oldestUnfinished: `SELECT ` + postgresPayoutCols + ` FROM payouts
		WHERE status IN ('queued', 'submitted', 'stuck', 'confirming') ORDER BY id LIMIT 1`,

	// Writers take the outbox lock shared before the sequence gives them a
	// seq; ListEvents takes it exclusively (eventsBarrier), so it reads only
	// once every seq handed out before it belongs to an ended transaction.
	insertEvent: `INSERT INTO events (id, type, object_id, object_seq, data, created_at)
		SELECT $1::text, $2::text, $3::text, $4::bigint, $5::text, $6::timestamptz
		FROM (SELECT pg_advisory_xact_lock_shared(hashtext(current_schema() || '.sluice_outbox'))) AS outbox_lock`,
	eventsBarrier: `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.sluice_outbox'))`,
	listEvents: `SELECT seq, id, type, object_id, object_seq, data, created_at FROM events
		WHERE seq > $1 ORDER BY seq LIMIT $2`,

	insertIdem: `INSERT INTO idempotency (scope, key, fingerprint, response_status, response_body, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING`,
	selectIdem: `SELECT scope, key, fingerprint, response_status, response_body, created_at
		FROM idempotency WHERE scope = $1 AND key = $2`,
	deleteIdemBefore: `DELETE FROM idempotency WHERE created_at < $1`,

	acquireLease: `INSERT INTO leases (chain_id, sender, owner, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (chain_id, sender) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE leases.owner = excluded.owner OR leases.expires_at <= $5`,
	releaseLease: `DELETE FROM leases WHERE chain_id = $1 AND sender = $2 AND owner = $3`,

	queuedPayouts: `SELECT ` + postgresPayoutCols + ` FROM payouts
		WHERE chain_id = $1 AND sender = $2 AND status = 'queued' ORDER BY created_at, id LIMIT $3`,
	confirmingPayouts: `SELECT ` + postgresPayoutCols + ` FROM payouts
		WHERE chain_id = $1 AND sender = $2 AND status = 'confirming' AND carrier_id IS NULL ORDER BY created_at, id`,
	maxNonce:    `SELECT MAX(nonce) FROM nonces WHERE chain_id = $1 AND sender = $2`,
	insertNonce: `INSERT INTO nonces (chain_id, sender, nonce, payout_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
	insertAttempt: `INSERT INTO attempts (payout_id, chain_id, sender, nonce, tx_hash, raw_tx, gas_limit,
		max_fee_per_gas, max_priority_fee_per_gas, created_at, kind)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8::numeric, $9::numeric, $10, $11) RETURNING id`,
	inFlightAttempts: `SELECT a.id, a.payout_id, a.chain_id, a.sender, a.nonce, a.tx_hash, a.raw_tx,
		a.gas_limit, a.max_fee_per_gas::text, a.max_priority_fee_per_gas::text, a.created_at, a.kind
		FROM payouts p JOIN attempts a ON a.payout_id = p.id
		WHERE p.chain_id = $1 AND p.sender = $2 AND p.status IN ('submitted', 'stuck')
		AND p.carrier_id IS NULL AND a.nonce = p.nonce ORDER BY a.nonce, a.id`,
	inFlightPayouts: `SELECT ` + postgresPayoutCols + ` FROM payouts
		WHERE chain_id = $1 AND sender = $2 AND status IN ('submitted', 'stuck') AND carrier_id IS NULL ORDER BY created_at, id`,
	payoutRequests: `SELECT ` + postgresPayoutCols + ` FROM payouts
		WHERE chain_id = $1 AND sender = $2 AND (cancel_requested OR fee_cap IS NOT NULL)
		AND status IN ('submitted', 'stuck') AND carrier_id IS NULL ORDER BY created_at, id`,
	nextObjectSeq: `SELECT COALESCE(MAX(object_seq), 0) + 1 FROM events WHERE object_id = $1`,
	moveQueued: `UPDATE payouts SET sender = $1, status_reason = '', status_detail = '', version = $2, updated_at = $3
		WHERE id = $4 AND version = $5 AND status = 'queued' AND sender = $6`,
	listAttempts: `SELECT ` + postgresAttemptCols + ` FROM attempts WHERE payout_id = $1 ORDER BY id`,
	paidBetween: `SELECT asset, amount::text FROM payouts
		WHERE chain_id = $1 AND sender = $2 AND status IN ('confirming', 'completed') AND receipt_ok AND NOT cancel_mined
		AND block_number > $3 AND block_number <= $4`,
	attemptsAtNonces: `SELECT ` + postgresAttemptCols + ` FROM attempts
		WHERE chain_id = $1 AND sender = $2 AND nonce >= $3 AND nonce < $4 ORDER BY nonce, id`,
	booksClosed: `SELECT block FROM books_closed WHERE chain_id = $1 AND wallet = $2`,
	openBooks: `INSERT INTO books_closed (chain_id, wallet, block, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (chain_id, wallet) DO NOTHING`,
	closeBooks: `UPDATE books_closed SET block = $1, updated_at = $2 WHERE chain_id = $3 AND wallet = $4 AND block = $5`,

	createMigrations: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)`,
	migrationVersion: `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`,
	insertMigration:  `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
	// Keyed by schema so tests migrating their own schemas do not wait on each other.
	lockMigrations: `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.sluice_migrations'))`,
}
