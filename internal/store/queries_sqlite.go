package store

import "time"

// sqliteDialect stores times as unix microseconds and amounts as decimal text.
var sqliteDialect = &dialect{
	name:             "sqlite",
	q:                sqliteQueries,
	bind:             func(int) string { return "?" },
	time:             func(t time.Time) any { return t.UnixMicro() },
	cacheStmts:       true,
	detachStatements: true,
}

const sqlitePayoutCols = `id, status, chain, chain_id, asset, to_address, amount, external_id,
	metadata, sender, tx_hash, nonce, block_number, block_hash, fee, receipt_ok,
	failure_code, failure_message, version, created_at, updated_at,
	priority, status_reason, status_detail, fee_cap, cancel_requested, cancel_mined,
	batch_id, batch_row, carrier_id, chunk_pos, gas_weight, chunk_amount, log_index`

const sqliteAttemptCols = `id, payout_id, chain_id, sender, nonce, tx_hash, raw_tx, gas_limit,
	max_fee_per_gas, max_priority_fee_per_gas, created_at, kind`

var sqliteQueries = queries{
	payoutCols:  sqlitePayoutCols,
	attemptCols: sqliteAttemptCols,
	insertPayout: `INSERT INTO payouts (id, status, chain, chain_id, asset, to_address, amount,
		external_id, metadata, sender, version, created_at, updated_at, priority, batch_id, batch_row)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (external_id) WHERE external_id IS NOT NULL DO NOTHING`,
	selectPayout:  `SELECT ` + sqlitePayoutCols + ` FROM payouts WHERE id = ?`,
	lockPayout:    `SELECT ` + sqlitePayoutCols + ` FROM payouts WHERE id = ?`,
	payoutByExtID: `SELECT id FROM payouts WHERE external_id = ?`,
	updatePayout: `UPDATE payouts SET status = ?, tx_hash = ?, nonce = ?, block_number = ?,
		block_hash = ?, fee = ?, receipt_ok = ?, failure_code = ?, failure_message = ?,
		status_reason = ?, status_detail = ?, fee_cap = ?, cancel_requested = ?,
		cancel_mined = ?, carrier_id = ?, chunk_pos = ?, gas_weight = ?, chunk_amount = ?,
		log_index = ?, version = ?, updated_at = ? WHERE id = ? AND version = ?`,
	countByStatus: `SELECT status, COUNT(*) FROM payouts GROUP BY status`,
	oldestUnfinished: `SELECT ` + sqlitePayoutCols + ` FROM payouts
		WHERE status IN ('queued', 'submitted', 'stuck', 'confirming') ORDER BY id LIMIT 1`,

	insertEvent: `INSERT INTO events (id, type, object_id, object_seq, data, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
	listEvents: `SELECT seq, id, type, object_id, object_seq, data, created_at FROM events
		WHERE seq > ? ORDER BY seq LIMIT ?`,

	insertIdem: `INSERT INTO idempotency (scope, key, fingerprint, response_status, response_body, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO NOTHING`,
	selectIdem: `SELECT scope, key, fingerprint, response_status, response_body, created_at
		FROM idempotency WHERE scope = ? AND key = ?`,
	deleteIdemBefore: `DELETE FROM idempotency WHERE created_at < ?`,

	acquireLease: `INSERT INTO leases (chain_id, sender, owner, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (chain_id, sender) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE leases.owner = excluded.owner OR leases.expires_at <= ?`,
	releaseLease: `DELETE FROM leases WHERE chain_id = ? AND sender = ? AND owner = ?`,

	queuedPayouts: `SELECT ` + sqlitePayoutCols + ` FROM payouts
		WHERE chain_id = ? AND sender = ? AND status = 'queued' ORDER BY created_at, id LIMIT ?`,
	confirmingPayouts: `SELECT ` + sqlitePayoutCols + ` FROM payouts
		WHERE chain_id = ? AND sender = ? AND status = 'confirming' AND carrier_id IS NULL ORDER BY created_at, id`,
	maxNonce:    `SELECT MAX(nonce) FROM nonces WHERE chain_id = ? AND sender = ?`,
	insertNonce: `INSERT INTO nonces (chain_id, sender, nonce, payout_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
	insertAttempt: `INSERT INTO attempts (payout_id, chain_id, sender, nonce, tx_hash, raw_tx, gas_limit,
		max_fee_per_gas, max_priority_fee_per_gas, created_at, kind)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
	inFlightAttempts: `SELECT a.id, a.payout_id, a.chain_id, a.sender, a.nonce, a.tx_hash, a.raw_tx,
		a.gas_limit, a.max_fee_per_gas, a.max_priority_fee_per_gas, a.created_at, a.kind
		FROM payouts p JOIN attempts a ON a.payout_id = p.id
		WHERE p.chain_id = ? AND p.sender = ? AND p.status IN ('submitted', 'stuck')
		AND p.carrier_id IS NULL AND a.nonce = p.nonce ORDER BY a.nonce, a.id`,
	inFlightPayouts: `SELECT ` + sqlitePayoutCols + ` FROM payouts
		WHERE chain_id = ? AND sender = ? AND status IN ('submitted', 'stuck') AND carrier_id IS NULL ORDER BY created_at, id`,
	payoutRequests: `SELECT ` + sqlitePayoutCols + ` FROM payouts
		WHERE chain_id = ? AND sender = ? AND (cancel_requested = 1 OR fee_cap IS NOT NULL)
		AND status IN ('submitted', 'stuck') AND carrier_id IS NULL ORDER BY created_at, id`,
	nextObjectSeq: `SELECT COALESCE(MAX(object_seq), 0) + 1 FROM events WHERE object_id = ?`,
	moveQueued: `UPDATE payouts SET sender = ?, status_reason = '', status_detail = '', version = ?, updated_at = ?
		WHERE id = ? AND version = ? AND status = 'queued' AND sender = ?`,
	listAttempts: `SELECT ` + sqliteAttemptCols + ` FROM attempts WHERE payout_id = ? ORDER BY id`,
	paidBetween: `SELECT asset, amount FROM payouts
		WHERE chain_id = ? AND sender = ? AND status IN ('confirming', 'completed') AND receipt_ok = 1 AND cancel_mined = 0
		AND block_number > ? AND block_number <= ?`,
	attemptsAtNonces: `SELECT ` + sqliteAttemptCols + ` FROM attempts
		WHERE chain_id = ? AND sender = ? AND nonce >= ? AND nonce < ? ORDER BY nonce, id`,
	booksClosed: `SELECT block FROM books_closed WHERE chain_id = ? AND wallet = ?`,
	openBooks: `INSERT INTO books_closed (chain_id, wallet, block, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (chain_id, wallet) DO NOTHING`,
	closeBooks: `UPDATE books_closed SET block = ?, updated_at = ? WHERE chain_id = ? AND wallet = ? AND block = ?`,

	createMigrations: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`,
	migrationVersion: `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`,
	insertMigration:  `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
}
