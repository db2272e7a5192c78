package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

var _ payout.PolicyStore = (*DB)(nil)

const (
	policyCols   = `version, document, sha256, active, created_by, created_at`
	decisionCols = `payout_id, policy_version, rule, action, code, reason, api_key_id, facts, decided_at`
	listCols     = `l.name, l.kind, l.sanctions, l.created_at, l.updated_at, (SELECT COUNT(*) FROM list_entries e WHERE e.list_name = l.name)`
)

func scanPolicy(s scanner) (*payout.PolicyVersion, error) {
	var (
		v  payout.PolicyVersion
		at dbTime
	)
	if err := s.Scan(&v.Version, &v.Document, &v.SHA256, &v.Active, &v.CreatedBy, &at); err != nil {
		return nil, err
	}
	v.CreatedAt = at.t
	return &v, nil
}

// SavePolicy stores a new policy version and, when activate, makes it the
// only active one; the audit entry is written in the same transaction.
func (db *DB) SavePolicy(ctx context.Context, v *payout.PolicyVersion, activate bool) error {
	sum := sha256.Sum256([]byte(v.Document))
	return db.withTx(ctx, "save_policy", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM policy_versions`).Scan(&v.Version); err != nil {
			return db.wrap("next policy version", err)
		}
		v.SHA256, v.CreatedAt, v.Active = hex.EncodeToString(sum[:]), now, activate
		if activate {
			if _, err := tx.ExecContext(ctx, db.q(`UPDATE policy_versions SET active = ? WHERE active = ?`), false, true); err != nil {
				return db.wrap("deactivate policy", err)
			}
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO policy_versions (`+policyCols+`) VALUES (?, ?, ?, ?, ?, ?)`),
			v.Version, v.Document, v.SHA256, activate, v.CreatedBy, db.d.time(now)); err != nil {
			return db.wrap("insert policy", err)
		}
		e, err := payout.NewAuditEntry(v.CreatedBy, payout.AuditPolicyApply, fmt.Sprintf("policy_v%d", v.Version),
			map[string]any{"version": v.Version, "sha256": v.SHA256, "active": activate, "document": v.Document})
		if err != nil {
			return err
		}
		return db.appendAuditTx(ctx, tx, now, e)
	})
}

// ActivePolicy returns the active policy version or payout.ErrNoPolicy.
func (db *DB) ActivePolicy(ctx context.Context) (_ *payout.PolicyVersion, err error) {
	defer db.track("active_policy")(&err)
	v, err := scanPolicy(db.read.QueryRowContext(ctx, db.q(`SELECT `+policyCols+` FROM policy_versions WHERE active = ?`), true))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNoPolicy
	}
	return v, db.wrap("active policy", err)
}

// PolicyVersions returns every stored version, newest first.
func (db *DB) PolicyVersions(ctx context.Context) (_ []*payout.PolicyVersion, err error) {
	defer db.track("policy_versions")(&err)
	rows, err := db.read.QueryContext(ctx, `SELECT `+policyCols+` FROM policy_versions ORDER BY version DESC`)
	if err != nil {
		return nil, db.wrap("policy versions", err)
	}
	vs, err := collect(rows, scanPolicy)
	return vs, db.wrap("policy versions", err)
}

// SaveDecision stores a payout's decision.
func (db *DB) SaveDecision(ctx context.Context, d *payout.PolicyDecision) error {
	facts := string(d.Facts)
	if facts == "" {
		facts = "{}"
	}
	return db.withTx(ctx, "save_decision", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO policy_decisions (`+decisionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			d.PayoutID, d.PolicyVersion, d.Rule, d.Action, d.Code, d.Reason, d.APIKeyID, facts, db.d.time(d.DecidedAt))
		return db.wrap("insert decision", err)
	})
}

// DeleteDecision removes a payout's decision.
func (db *DB) DeleteDecision(ctx context.Context, payoutID string) error {
	return db.withTx(ctx, "delete_decision", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		_, err := tx.ExecContext(ctx, db.q(`DELETE FROM policy_decisions WHERE payout_id = ?`), payoutID)
		return db.wrap("delete decision", err)
	})
}

// PayoutDecision returns a payout's decision or payout.ErrNotFound.
func (db *DB) PayoutDecision(ctx context.Context, payoutID string) (_ *payout.PolicyDecision, err error) {
	defer db.track("payout_decision")(&err)
	var (
		d     payout.PolicyDecision
		facts string
		at    dbTime
	)
	err = db.read.QueryRowContext(ctx, db.q(`SELECT `+decisionCols+` FROM policy_decisions WHERE payout_id = ?`), payoutID).
		Scan(&d.PayoutID, &d.PolicyVersion, &d.Rule, &d.Action, &d.Code, &d.Reason, &d.APIKeyID, &facts, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNotFound
	}
	if err != nil {
		return nil, db.wrap("payout decision", err)
	}
	d.Facts, d.DecidedAt = json.RawMessage(facts), at.t
	return &d, nil
}

// FirstPaid returns when the first completed payout to addr was created.
func (db *DB) FirstPaid(ctx context.Context, addr common.Address) (_ time.Time, _ bool, err error) {
	defer db.track("first_paid")(&err)
	var at dbTime
	err = db.read.QueryRowContext(ctx, db.q(`SELECT created_at FROM payouts WHERE to_address = ? AND status = 'completed' ORDER BY created_at LIMIT 1`),
		addrText(addr)).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, db.wrap("first paid", err)
	}
	return at.t, true, nil
}

// PayoutHistory returns the payouts created at or after since that are
// neither failed nor cancelled, oldest first, with the API key of their
// decision.
func (db *DB) PayoutHistory(ctx context.Context, since time.Time) (_ []payout.HistoryItem, err error) {
	defer db.track("payout_history")(&err)
	amount := "p.amount"
	if db.d.name == "postgres" {
		amount = "p.amount::text"
	}
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT p.id, p.chain, p.asset, p.sender, p.to_address, `+amount+`, COALESCE(d.api_key_id, ''), p.created_at
		FROM payouts p LEFT JOIN policy_decisions d ON d.payout_id = p.id
		WHERE p.created_at >= ? AND p.status NOT IN ('failed', 'cancelled', 'rejected') ORDER BY p.created_at, p.id`), db.d.time(since))
	if err != nil {
		return nil, db.wrap("payout history", err)
	}
	defer rows.Close()
	var out []payout.HistoryItem
	for rows.Next() {
		var (
			h              payout.HistoryItem
			sender, to, am string
			at             dbTime
		)
		if err := rows.Scan(&h.ID, &h.Chain, &h.Asset, &sender, &to, &am, &h.APIKeyID, &at); err != nil {
			return nil, db.wrap("scan history", err)
		}
		var ok bool
		if h.Amount, ok = new(big.Int).SetString(am, 10); !ok {
			return nil, fmt.Errorf("store: payout %s: amount %q", h.ID, am)
		}
		h.Sender, h.To, h.CreatedAt = common.HexToAddress(sender), common.HexToAddress(to), at.t
		out = append(out, h)
	}
	return out, db.wrap("payout history", rows.Err())
}
