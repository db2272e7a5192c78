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
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/policy"
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
// Versions still waiting for approvals are superseded by an activated one.
func (db *DB) SavePolicy(ctx context.Context, v *payout.PolicyVersion, activate bool) error {
	defer db.activePolicy.changed()
	return db.withTx(ctx, "save_policy", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		if err := db.insertPolicy(ctx, tx, now, v, activate, 0); err != nil {
			return err
		}
		e, err := payout.NewAuditEntry(v.CreatedBy, payout.AuditPolicyApply, fmt.Sprintf("policy_v%d", v.Version),
			map[string]any{"version": v.Version, "sha256": v.SHA256, "active": activate, "document": v.Document})
		if err != nil {
			return err
		}
		return db.appendAuditTx(ctx, tx, now, e)
	})
}

// ProposePolicy stores a new policy version that waits for quorum distinct
// approvers (not its proposer) before it becomes active, superseding any
// version still waiting, with the audit entries, in one transaction.
func (db *DB) ProposePolicy(ctx context.Context, v *payout.PolicyVersion, quorum int) error {
	defer db.activePolicy.changed()
	if quorum < 1 {
		return fmt.Errorf("store: propose policy: quorum %d is not at least 1", quorum)
	}
	return db.withTx(ctx, "propose_policy", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		if err := db.insertPolicy(ctx, tx, now, v, false, quorum); err != nil {
			return err
		}
		e, err := payout.NewAuditEntry(v.CreatedBy, policy.AuditPolicyPropose, fmt.Sprintf("policy_v%d", v.Version),
			map[string]any{"version": v.Version, "sha256": v.SHA256, "quorum": quorum, "document": v.Document})
		if err != nil {
			return err
		}
		return db.appendAuditTx(ctx, tx, now, e)
	})
}

// insertPolicy supersedes the versions still waiting (each audited) and
// stores v: active, or pending a quorum.
func (db *DB) insertPolicy(ctx context.Context, tx *sql.Tx, now time.Time, v *payout.PolicyVersion, activate bool, quorum int) error {
	sum := sha256.Sum256([]byte(v.Document))
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM policy_versions`).Scan(&v.Version); err != nil {
		return db.wrap("next policy version", err)
	}
	v.SHA256, v.CreatedAt, v.Active = hex.EncodeToString(sum[:]), now, activate
	pending, err := db.policyVersionsTx(ctx, tx, "pending policies", `SELECT version FROM policy_versions WHERE status = ?`, policy.StatusPending)
	if err != nil {
		return err
	}
	for _, old := range pending {
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE policy_versions SET status = ? WHERE version = ?`), policy.StatusSuperseded, old); err != nil {
			return db.wrap("supersede policy", err)
		}
		e, err := payout.NewAuditEntry(v.CreatedBy, policy.AuditPolicySupersede, fmt.Sprintf("policy_v%d", old),
			map[string]any{"version": old, "by_version": v.Version})
		if err != nil {
			return err
		}
		if err := db.appendAuditTx(ctx, tx, now, e); err != nil {
			return err
		}
	}
	if activate {
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE policy_versions SET active = ? WHERE active = ?`), false, true); err != nil {
			return db.wrap("deactivate policy", err)
		}
	}
	status := policy.StatusApplied
	if quorum > 0 {
		status = policy.StatusPending
	}
	_, err = tx.ExecContext(ctx, db.q(`INSERT INTO policy_versions (`+policyCols+`, status, quorum) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		v.Version, v.Document, v.SHA256, activate, v.CreatedBy, db.d.time(now), status, quorum)
	return db.wrap("insert policy", err)
}

// DecidePolicy records an approver's decision on a pending policy version,
// with its audit entry, in one transaction: the quorum-th approval makes
// the version the active one (audited as payout.AuditPolicyApply), a
// rejection rejects it. A version that waited longer than maxAge (when
// above 0, by the store's clock) is expired instead, audited, and
// policy.ErrChangeExpired returned with it. It returns payout.ErrNotFound, policy.ErrNotPending,
// payout.ErrSelfApproval (the proposer approves) or
// payout.ErrAlreadyDecided. A rejection needs a reason.
func (db *DB) DecidePolicy(ctx context.Context, version int64, a policy.ChangeApproval, maxAge time.Duration) (*payout.PolicyVersion, *policy.Change, error) {
	defer db.activePolicy.changed()
	switch {
	case a.ApproverKeyID == "" || strings.TrimSpace(a.ApproverName) == "":
		return nil, nil, errors.New("store: decide policy: the approver's key id and name are required")
	case a.Decision != "approve" && a.Decision != "reject":
		return nil, nil, fmt.Errorf("store: decide policy: unknown decision %q", a.Decision)
	case a.Decision == "reject" && strings.TrimSpace(a.Reason) == "":
		return nil, nil, errors.New("store: decide policy: a rejection needs a reason")
	}
	var (
		v       *payout.PolicyVersion
		ch      *policy.Change
		expired bool
	)
	err := db.withTx(ctx, "decide_policy", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		expired = false
		var err error
		if v, err = scanPolicy(tx.QueryRowContext(ctx, db.q(`SELECT `+policyCols+` FROM policy_versions WHERE version = ?`+db.d.forUpdate), version)); errors.Is(err, sql.ErrNoRows) {
			return payout.ErrNotFound
		} else if err != nil {
			return db.wrap("read policy", err)
		}
		if ch, err = db.policyChange(ctx, tx, version); err != nil {
			return err
		}
		switch {
		case ch.Status != policy.StatusPending:
			return policy.ErrNotPending
		case maxAge > 0 && now.Sub(v.CreatedAt) > maxAge:
			expired = true
			return db.expirePolicy(ctx, tx, now, v.Version, ch, a.ApproverKeyID)
		case a.Decision == "approve" && a.ApproverKeyID == v.CreatedBy:
			return payout.ErrSelfApproval
		}
		for _, d := range ch.Approvals {
			if d.ApproverKeyID == a.ApproverKeyID {
				return payout.ErrAlreadyDecided
			}
		}
		a.CreatedAt = now
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO policy_approvals (version, approver_key_id, approver_name, decision, reason, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`), version, a.ApproverKeyID, a.ApproverName, a.Decision, a.Reason, db.d.time(now)); err != nil {
			return db.wrap("insert policy approval", err)
		}
		ch.Approvals = append(ch.Approvals, a)
		return db.applyPolicyDecision(ctx, tx, now, v, ch, a)
	})
	if err != nil {
		return nil, nil, err
	}
	if expired {
		return v, ch, policy.ErrChangeExpired
	}
	return v, ch, nil
}

// ExpirePolicyChanges expires the policy versions that have waited for
// their approvals longer than maxAge (by the store's clock), each audited
// (actor "sluice"), and returns them.
func (db *DB) ExpirePolicyChanges(ctx context.Context, maxAge time.Duration) (expired []int64, err error) {
	defer db.activePolicy.changed()
	defer db.track("expire_policy_changes")(&err)
	err = db.withTx(ctx, "expire_policy_changes", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		expired = expired[:0]
		versions, err := db.policyVersionsTx(ctx, tx, "expired policy versions",
			`SELECT version FROM policy_versions WHERE status = ? AND created_at < ? ORDER BY version`,
			policy.StatusPending, db.d.time(now.Add(-maxAge)))
		if err != nil {
			return err
		}
		for _, version := range versions {
			ch, err := db.policyChange(ctx, tx, version)
			if err != nil {
				return err
			}
			if err := db.expirePolicy(ctx, tx, now, version, ch, "sluice"); err != nil {
				return err
			}
			expired = append(expired, version)
		}
		return nil
	})
	return expired, err
}

// policyVersionsTx runs a query of policy version numbers in tx; what
// names it in errors.
func (db *DB) policyVersionsTx(ctx context.Context, tx *sql.Tx, what, query string, args ...any) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, db.wrap(what, err)
	}
	versions, err := collect(rows, func(s scanner) (int64, error) { var n int64; return n, s.Scan(&n) })
	return versions, db.wrap(what, err)
}

// expirePolicy marks a pending version expired, with its audit entry.
func (db *DB) expirePolicy(ctx context.Context, tx *sql.Tx, now time.Time, version int64, ch *policy.Change, actor string) error {
	ch.Status = policy.StatusExpired
	if _, err := tx.ExecContext(ctx, db.q(`UPDATE policy_versions SET status = ?, expired_at = ? WHERE version = ?`),
		policy.StatusRejected, db.d.time(now), version); err != nil {
		return db.wrap("expire policy", err)
	}
	e, err := payout.NewAuditEntry(actor, policy.AuditPolicyExpire, fmt.Sprintf("policy_v%d", version),
		map[string]any{"version": version, "approvals": ch.Approved(), "quorum": ch.Quorum})
	if err != nil {
		return err
	}
	return db.appendAuditTx(ctx, tx, now, e)
}

// applyPolicyDecision audits a decision and moves the version as it says.
func (db *DB) applyPolicyDecision(ctx context.Context, tx *sql.Tx, now time.Time, v *payout.PolicyVersion, ch *policy.Change, a policy.ChangeApproval) error {
	object := fmt.Sprintf("policy_v%d", v.Version)
	action := policy.AuditPolicyApprove
	switch {
	case a.Decision == "reject":
		action, ch.Status = policy.AuditPolicyReject, policy.StatusRejected
	case ch.Approved() >= ch.Quorum:
		ch.Status, v.Active = policy.StatusApplied, true
	}
	e, err := payout.NewAuditEntry(a.ApproverKeyID, action, object, map[string]any{"version": v.Version,
		"approver_name": a.ApproverName, "reason": a.Reason, "approvals": ch.Approved(), "quorum": ch.Quorum, "status": ch.Status})
	if err != nil {
		return err
	}
	if err := db.appendAuditTx(ctx, tx, now, e); err != nil {
		return err
	}
	if v.Active {
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE policy_versions SET active = ? WHERE active = ?`), false, true); err != nil {
			return db.wrap("deactivate policy", err)
		}
		e, err := payout.NewAuditEntry(a.ApproverKeyID, payout.AuditPolicyApply, object, map[string]any{"version": v.Version,
			"sha256": v.SHA256, "active": true, "proposed_by": v.CreatedBy, "approvals": ch.Approved(), "quorum": ch.Quorum})
		if err != nil {
			return err
		}
		if err := db.appendAuditTx(ctx, tx, now, e); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, db.q(`UPDATE policy_versions SET status = ?, active = ? WHERE version = ?`), ch.Status, v.Active, v.Version)
	return db.wrap("update policy", err)
}

// PolicyChanges returns the approval state of the given versions (of
// every version when none is given), by version.
func (db *DB) PolicyChanges(ctx context.Context, versions ...int64) (_ map[int64]*policy.Change, err error) {
	defer db.track("policy_changes")(&err)
	out := map[int64]*policy.Change{}
	q := `SELECT version, ` + policyStatusCol + `, quorum FROM policy_versions`
	args := make([]any, len(versions))
	for i, v := range versions {
		args[i] = v
	}
	if len(versions) > 0 {
		q += ` WHERE version IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(versions)), ", ") + `)`
	}
	rows, err := db.read.QueryContext(ctx, db.q(q), args...)
	if err != nil {
		return nil, db.wrap("policy changes", err)
	}
	cs, err := collect(rows, func(s scanner) (*policy.Change, error) {
		c := &policy.Change{Approvals: []policy.ChangeApproval{}}
		return c, s.Scan(&c.Version, &c.Status, &c.Quorum)
	})
	if err != nil {
		return nil, db.wrap("policy changes", err)
	}
	for _, c := range cs {
		out[c.Version] = c
	}
	q = `SELECT version, approver_key_id, approver_name, decision, reason, created_at FROM policy_approvals`
	if len(versions) > 0 {
		q += ` WHERE version IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(versions)), ", ") + `)`
	}
	if rows, err = db.read.QueryContext(ctx, db.q(q+` ORDER BY created_at, approver_key_id`), args...); err != nil {
		return nil, db.wrap("policy approvals", err)
	}
	type row struct {
		version int64
		a       policy.ChangeApproval
	}
	as, err := collect(rows, func(s scanner) (row, error) {
		var (
			r  row
			at dbTime
		)
		err := s.Scan(&r.version, &r.a.ApproverKeyID, &r.a.ApproverName, &r.a.Decision, &r.a.Reason, &at)
		r.a.CreatedAt = at.t
		return r, err
	})
	if err != nil {
		return nil, db.wrap("policy approvals", err)
	}
	for _, r := range as {
		if c := out[r.version]; c != nil {
			c.Approvals = append(c.Approvals, r.a)
		}
	}
	return out, nil
}

// policyStatusCol reads a version's status: an expired one is stored
// rejected with its expired_at (migration 0012).
const policyStatusCol = `CASE WHEN expired_at IS NULL THEN status ELSE 'expired' END`

// policyChange reads one version's approval state in tx.
func (db *DB) policyChange(ctx context.Context, tx *sql.Tx, version int64) (*policy.Change, error) {
	c := &policy.Change{Version: version, Approvals: []policy.ChangeApproval{}}
	if err := tx.QueryRowContext(ctx, db.q(`SELECT `+policyStatusCol+`, quorum FROM policy_versions WHERE version = ?`), version).
		Scan(&c.Status, &c.Quorum); err != nil {
		return nil, db.wrap("read policy status", err)
	}
	rows, err := tx.QueryContext(ctx, db.q(`SELECT approver_key_id, approver_name, decision, reason, created_at
		FROM policy_approvals WHERE version = ? ORDER BY created_at, approver_key_id`), version)
	if err != nil {
		return nil, db.wrap("read policy approvals", err)
	}
	as, err := collect(rows, func(s scanner) (policy.ChangeApproval, error) {
		var (
			a  policy.ChangeApproval
			at dbTime
		)
		err := s.Scan(&a.ApproverKeyID, &a.ApproverName, &a.Decision, &a.Reason, &at)
		a.CreatedAt = at.t
		return a, err
	})
	if err != nil {
		return nil, db.wrap("read policy approvals", err)
	}
	c.Approvals = append(c.Approvals, as...)
	return c, nil
}

// ActivePolicy returns the active policy version or payout.ErrNoPolicy.
//
// On SQLite, where every policy change is this process's, the answer is
// kept until one commits (activePolicyCache): the API asks at every
// create, and the read was 5% of the engine's CPU per payout.
func (db *DB) ActivePolicy(ctx context.Context) (_ *payout.PolicyVersion, err error) {
	defer db.track("active_policy")(&err)
	if db.activePolicy == nil {
		return db.readActivePolicy(ctx)
	}
	if v, none, ok := db.activePolicy.get(); ok {
		if none {
			return nil, payout.ErrNoPolicy
		}
		return v, nil
	}
	gen := db.activePolicy.generation()
	v, err := db.readActivePolicy(ctx)
	if err == nil || errors.Is(err, payout.ErrNoPolicy) {
		db.activePolicy.put(gen, v)
	}
	return v, err
}

func (db *DB) readActivePolicy(ctx context.Context) (*payout.PolicyVersion, error) {
	v, err := scanPolicy(db.queryRowRead(ctx, db.q(`SELECT `+policyCols+` FROM policy_versions WHERE active = ?`), true))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNoPolicy
	}
	return v, db.wrap("active policy", err)
}

// activePolicyCache holds the active policy version as last read, valid
// until a policy change ends (changed, deferred by every method that writes
// policy_versions). A read that raced a change is not kept: its
// generation moved on while it read.
type activePolicyCache struct {
	mu    sync.Mutex
	gen   uint64
	valid bool
	v     *payout.PolicyVersion // nil: no policy is active
}

func (c *activePolicyCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// get returns a copy of the version held (none: no policy is active).
func (c *activePolicyCache) get() (v *payout.PolicyVersion, none, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid {
		return nil, false, false
	}
	if c.v == nil {
		return nil, true, true
	}
	cp := *c.v
	return &cp, false, true
}

// put keeps v (nil: none active) if no change ended since gen was read.
func (c *activePolicyCache) put(gen uint64, v *payout.PolicyVersion) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	c.valid, c.v = true, nil
	if v != nil {
		cp := *v
		c.v = &cp
	}
}

// changed drops what is held: a policy change ended (committed or not).
// A nil cache (PostgreSQL) holds nothing.
func (c *activePolicyCache) changed() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.valid, c.v = false, nil
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
