package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

var (
	_ payout.PauseStore = (*DB)(nil)
	_ payout.AuditStore = (*DB)(nil)
)

const (
	pauseCols = `id, scope, chain, asset, wallet, reason, created_by, created_at, resumed_by, resumed_at`
	auditCols = `seq, at, actor, action, object, details, prev_hash, hash`
	// auditLockKey is the PostgreSQL advisory lock that serialises audit
	// appends ("sluice audit" in ASCII, truncated to 63 bits).
	auditLockKey = 0x736c7569636561
)

// q numbers ? placeholders for PostgreSQL.
func (db *DB) q(query string) string {
	if db.d.name == "postgres" {
		return rebind(query)
	}
	return query
}

func scanPause(s scanner) (*payout.Pause, error) {
	var (
		p       payout.Pause
		scope   string
		wallet  string
		created dbTime
		resumed dbNullTime
	)
	if err := s.Scan(&p.ID, &scope, &p.Chain, &p.Asset, &wallet, &p.Reason, &p.CreatedBy, &created,
		&p.ResumedBy, &resumed); err != nil {
		return nil, err
	}
	p.Object, p.Scope, p.CreatedAt, p.ResumedAt = "pause", payout.PauseScope(scope), created.t, resumed.t
	if wallet != "" {
		p.Wallet = common.HexToAddress(wallet)
	}
	return &p, nil
}

// CreatePause stores an active pause with its audit entry and its
// pause.created event, in one transaction.
func (db *DB) CreatePause(ctx context.Context, p *payout.Pause) error {
	return db.TripBreaker(ctx, p, "", nil)
}

// TripBreaker stores an active pause as CreatePause does and, when
// alertType is set, the alert event about it (data as JSON), all in one
// transaction: a breaker's pause never goes without its alert.
func (db *DB) TripBreaker(ctx context.Context, p *payout.Pause, alertType string, data any) error {
	if err := p.Validate(); err != nil {
		return err
	}
	wallet := ""
	if p.Wallet != (common.Address{}) {
		wallet = p.Wallet.Hex()
	}
	return db.withTx(ctx, "create_pause", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		p.Object, p.CreatedAt = "pause", now
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO pauses (`+pauseCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', NULL)`),
			p.ID, string(p.Scope), p.Chain, p.Asset, wallet, p.Reason, p.CreatedBy, db.d.time(now))
		if err != nil {
			return db.wrap("create pause", err)
		}
		if err := db.pauseChanged(ctx, tx, now, p, p.CreatedBy, payout.AuditPauseCreate, payout.EventPauseCreated); err != nil {
			return err
		}
		if alertType == "" {
			return nil
		}
		return db.appendEventTx(ctx, tx, now, p.ID, alertType, data)
	})
}

// LastResumes returns, for each creator of pauses whose name starts with
// prefix (e.g. "breaker:"), when the last of its pauses was resumed.
func (db *DB) LastResumes(ctx context.Context, prefix string) (_ map[string]time.Time, err error) {
	defer db.track("last_resumes")(&err)
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT created_by, MAX(resumed_at) FROM pauses
		WHERE resumed_at IS NOT NULL AND substr(created_by, 1, ?) = ? GROUP BY created_by`), len(prefix), prefix)
	if err != nil {
		return nil, db.wrap("last resumes", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var (
			by string
			at dbTime
		)
		if err := rows.Scan(&by, &at); err != nil {
			return nil, db.wrap("last resumes", err)
		}
		out[by] = at.t
	}
	return out, db.wrap("last resumes", rows.Err())
}

// ResumePause ends an active pause with its audit entry and its
// pause.resumed event, in one transaction.
func (db *DB) ResumePause(ctx context.Context, id, actor string) (*payout.Pause, error) {
	var p *payout.Pause
	err := db.withTx(ctx, "resume_pause", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		var err error
		p, err = scanPause(tx.QueryRowContext(ctx, db.q(`SELECT `+pauseCols+` FROM pauses WHERE id = ?`+db.d.forUpdate), id))
		if errors.Is(err, sql.ErrNoRows) {
			return payout.ErrNotFound
		}
		if err != nil {
			return db.wrap("read pause", err)
		}
		if !p.Active() {
			return payout.ErrPauseResumed
		}
		p.ResumedAt, p.ResumedBy = now, actor
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE pauses SET resumed_at = ?, resumed_by = ? WHERE id = ?`),
			db.d.time(now), actor, id); err != nil {
			return db.wrap("resume pause", err)
		}
		return db.pauseChanged(ctx, tx, now, p, actor, payout.AuditPauseResume, payout.EventPauseResumed)
	})
	return p, err
}

// pauseChanged writes the audit entry and the event of a pause's change.
func (db *DB) pauseChanged(ctx context.Context, tx *sql.Tx, now time.Time, p *payout.Pause, actor, action, event string) error {
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("store: encode pause: %w", err)
	}
	if err := db.appendAuditTx(ctx, tx, now, &payout.AuditEntry{Actor: actor, Action: action, Object: p.ID, Details: data}); err != nil {
		return err
	}
	var seq int64
	if err := db.queryRowTx(ctx, tx, db.d.q.nextObjectSeq, p.ID).Scan(&seq); err != nil {
		return db.wrap("next event seq", err)
	}
	_, err = db.execTx(ctx, tx, db.d.q.insertEvent, payout.DefaultIDs.New("evt_", now), event, p.ID, seq, string(data), db.d.time(now))
	return db.wrap("insert event", err)
}

// ActivePauses returns the pauses in force, oldest first.
func (db *DB) ActivePauses(ctx context.Context) (_ []*payout.Pause, err error) {
	defer db.track("active_pauses")(&err)
	rows, err := db.queryRead(ctx, `SELECT `+pauseCols+` FROM pauses WHERE resumed_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, db.wrap("active pauses", err)
	}
	defer rows.Close()
	var ps []*payout.Pause
	for rows.Next() {
		p, err := scanPause(rows)
		if err != nil {
			return nil, db.wrap("scan pause", err)
		}
		ps = append(ps, p)
	}
	return ps, db.wrap("active pauses", rows.Err())
}

// AppendAudit seals e as the next entry of the audit log and stores it.
func (db *DB) AppendAudit(ctx context.Context, e *payout.AuditEntry) error {
	return db.withTx(ctx, "append_audit", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		return db.appendAuditTx(ctx, tx, now, e)
	})
}

// appendAuditTx appends e in tx. On PostgreSQL a transaction-scoped
// advisory lock makes concurrent appenders wait for each other, so each
// reads the head the previous one wrote; on SQLite the single writer
// connection serialises them already.
func (db *DB) appendAuditTx(ctx context.Context, tx *sql.Tx, now time.Time, e *payout.AuditEntry) error {
	if db.d.name == "postgres" {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(auditLockKey)); err != nil {
			return db.wrap("lock audit log", err)
		}
	}
	head, err := scanAudit(tx.QueryRowContext(ctx, `SELECT `+auditCols+` FROM audit_log ORDER BY seq DESC LIMIT 1`))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		head = nil
	case err != nil:
		return db.wrap("read audit head", err)
	}
	e.Seal(head, now)
	_, err = tx.ExecContext(ctx, db.q(`INSERT INTO audit_log (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		e.Seq, db.d.time(e.Time), e.Actor, e.Action, e.Object, string(e.Details), e.PrevHash, e.Hash)
	if err == nil {
		db.metrics.audit.Inc()
	}
	return db.wrap("append audit entry", err)
}

func scanAudit(s scanner) (*payout.AuditEntry, error) {
	var (
		e       payout.AuditEntry
		at      dbTime
		details string
	)
	if err := s.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Object, &details, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	e.Time, e.Details = at.t, json.RawMessage(details)
	return &e, nil
}

// ListAudit returns entries after afterSeq in seq order.
func (db *DB) ListAudit(ctx context.Context, afterSeq int64, limit int) (_ []*payout.AuditEntry, _ bool, err error) {
	defer db.track("list_audit")(&err)
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT `+auditCols+` FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`),
		afterSeq, limit+1)
	if err != nil {
		return nil, false, db.wrap("list audit", err)
	}
	defer rows.Close()
	var es []*payout.AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, false, db.wrap("scan audit entry", err)
		}
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, db.wrap("list audit", err)
	}
	more := len(es) > limit
	if more {
		es = es[:limit]
	}
	return es, more, nil
}

// QueuedPayoutsSkipping is QueuedPayouts without the payouts of the given
// assets (those an asset pause holds), so that a long paused queue of one
// asset does not keep a wallet's other assets from being read.
func (db *DB) QueuedPayoutsSkipping(ctx context.Context, chainID uint64, sender common.Address, skip []string, limit int) (_ []*payout.Payout, err error) {
	defer db.track("queued_payouts_skipping")(&err)
	if limit <= 0 {
		limit = 100
	}
	args := []any{int64(chainID), addrText(sender)}
	q := `SELECT ` + db.d.q.payoutCols + ` FROM payouts WHERE chain_id = ? AND sender = ? AND status = 'queued'`
	if len(skip) > 0 {
		q += ` AND asset NOT IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(skip)), ", ") + `)`
		for _, a := range skip {
			args = append(args, a)
		}
	}
	rows, err := db.read.QueryContext(ctx, db.q(q+` ORDER BY created_at, id LIMIT ?`), append(args, limit)...)
	if err != nil {
		return nil, db.wrap("queued payouts", err)
	}
	ps, err := collect(rows, scanPayout)
	return ps, db.wrap("queued payouts", err)
}
