package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

var _ payout.ApprovalStore = (*DB)(nil)

const (
	approvalRequestCols = `payout_id, kind, quorum, group_name, initiator, hold_until, expires_at, created_at`
	approvalCols        = `payout_id, approver_key_id, approver_name, decision, reason, created_at`
)

// SaveApprovalRequest stores what a payout about to be created
// pending_approval waits for.
func (db *DB) SaveApprovalRequest(ctx context.Context, r *payout.ApprovalRequest) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return db.withTx(ctx, "save_approval_request", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO approval_requests (`+approvalRequestCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			r.PayoutID, string(r.Kind), r.Quorum, r.Group, r.Initiator, db.nullTime(r.HoldUntil),
			db.d.time(r.ExpiresAt.UTC().Truncate(time.Microsecond)), db.d.time(r.CreatedAt.UTC().Truncate(time.Microsecond)))
		return db.wrap("insert approval request", err)
	})
}

// ApprovalState returns a payout's request and approvals, or
// payout.ErrNotFound.
func (db *DB) ApprovalState(ctx context.Context, payoutID string) (_ *payout.ApprovalState, err error) {
	defer db.track("approval_state")(&err)
	return db.approvalState(ctx, db.read, payoutID)
}

// queryer is what approvalState reads through: the read pool or a
// transaction.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (db *DB) approvalState(ctx context.Context, q queryer, payoutID string) (*payout.ApprovalState, error) {
	r, err := scanApprovalRequest(q.QueryRowContext(ctx,
		db.q(`SELECT `+approvalRequestCols+` FROM approval_requests WHERE payout_id = ?`), payoutID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNotFound
	}
	if err != nil {
		return nil, db.wrap("read approval request", err)
	}
	rows, err := q.QueryContext(ctx, db.q(`SELECT `+approvalCols+` FROM approvals WHERE payout_id = ? ORDER BY created_at, approver_key_id`), payoutID)
	if err != nil {
		return nil, db.wrap("read approvals", err)
	}
	as, err := collect(rows, scanApproval)
	if err != nil {
		return nil, db.wrap("read approvals", err)
	}
	st := &payout.ApprovalState{Request: r, Approvals: make([]payout.Approval, 0, len(as))}
	for _, a := range as {
		st.Approvals = append(st.Approvals, *a)
	}
	return st, nil
}

func scanApprovalRequest(s scanner) (*payout.ApprovalRequest, error) {
	var (
		r                payout.ApprovalRequest
		kind             string
		hold             dbNullTime
		expires, created dbTime
	)
	if err := s.Scan(&r.PayoutID, &kind, &r.Quorum, &r.Group, &r.Initiator, &hold, &expires, &created); err != nil {
		return nil, err
	}
	r.Kind, r.HoldUntil, r.ExpiresAt, r.CreatedAt = payout.ApprovalKind(kind), hold.t, expires.t, created.t
	return &r, nil
}

func scanApproval(s scanner) (*payout.Approval, error) {
	var (
		a        payout.Approval
		decision string
		created  dbTime
	)
	if err := s.Scan(&a.PayoutID, &a.ApproverKeyID, &a.ApproverName, &decision, &a.Reason, &created); err != nil {
		return nil, err
	}
	a.Decision, a.CreatedAt = payout.ApprovalDecision(decision), created.t
	return &a, nil
}

// DecidePayout records an approver's decision on a pending payout, moving
// it to queued (quorum reached) or rejected, with the approval row, the
// audit entry and the event in one transaction. a.CreatedAt is the
// decision's time, set by the caller as a payout's CreatedAt is (the
// store's clock when zero); expiry is judged at it.
func (db *DB) DecidePayout(ctx context.Context, a *payout.Approval) (*payout.Payout, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	var (
		out     *payout.Payout
		expired bool
	)
	err := db.withTx(ctx, "decide_payout", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		expired = false
		p, st, err := db.lockPending(ctx, tx, a.PayoutID)
		if err != nil {
			return err
		}
		out = p
		if a.CreatedAt.IsZero() {
			a.CreatedAt = now
		}
		a.CreatedAt = a.CreatedAt.UTC().Truncate(time.Microsecond)
		switch err := st.Check(a, a.CreatedAt); {
		case errors.Is(err, payout.ErrApprovalExpired):
			expired = true
			return db.expire(ctx, tx, a.CreatedAt, p, st)
		case err != nil:
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO approvals (`+approvalCols+`) VALUES (?, ?, ?, ?, ?, ?)`),
			a.PayoutID, a.ApproverKeyID, a.ApproverName, string(a.Decision), a.Reason, db.d.time(a.CreatedAt)); err != nil {
			return db.wrap("insert approval", err)
		}
		st.Approvals = append(st.Approvals, *a)
		return db.applyDecision(ctx, tx, a.CreatedAt, p, st, a)
	})
	if err != nil {
		return nil, err
	}
	if expired {
		return out, payout.ErrApprovalExpired
	}
	return out, nil
}

// lockPending locks a payout waiting for approval and reads its request
// and approvals.
func (db *DB) lockPending(ctx context.Context, tx *sql.Tx, id string) (*payout.Payout, *payout.ApprovalState, error) {
	p, err := scanPayout(db.queryRowTx(ctx, tx, db.d.q.lockPayout, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, payout.ErrNotFound
	}
	if err != nil {
		return nil, nil, db.wrap("lock payout", err)
	}
	if p.Status != payout.StatusPendingApproval {
		return p, nil, payout.ErrNotPendingApproval
	}
	st, err := db.approvalState(ctx, tx, id)
	if errors.Is(err, payout.ErrNotFound) {
		return p, nil, fmt.Errorf("store: payout %s waits for approval but has no approval request", id)
	}
	return p, st, err
}

// applyDecision moves p as the approval a decides and writes the audit
// entry.
func (db *DB) applyDecision(ctx context.Context, tx *sql.Tx, now time.Time, p *payout.Payout, st *payout.ApprovalState, a *payout.Approval) error {
	action, event := payout.AuditPayoutApprove, payout.EventApprovalAdded
	switch {
	case a.Decision == payout.Reject:
		action, event = payout.AuditPayoutReject, payout.StatusRejected.EventType()
		p.Status, p.FailureCode, p.Reason, p.ReasonDetail = payout.StatusRejected, payout.CodeApprovalRejected, "", ""
		p.FailureMessage = fmt.Sprintf("rejected by %s: %s", a.ApproverName, a.Reason)
	case st.Approved() >= st.Request.Quorum:
		event = payout.EventApproved
		p.Status, p.Reason, p.ReasonDetail = payout.StatusQueued, "", ""
	}
	e, err := payout.NewAuditEntry(a.ApproverKeyID, action, p.ID, map[string]any{
		"approver_name": a.ApproverName, "decision": a.Decision, "reason": a.Reason,
		"approvals": st.Approved(), "quorum": st.Request.Quorum, "group": st.Request.Group, "status": p.Status,
	})
	if err != nil {
		return err
	}
	if err := db.appendAuditTx(ctx, tx, now, e); err != nil {
		return err
	}
	if err := db.saveAs(ctx, tx, now, p, event); err != nil {
		return err
	}
	return db.followOne(ctx, tx, now, p, event)
}

// expire rejects a payout whose approvals expired, with its audit entry.
func (db *DB) expire(ctx context.Context, tx *sql.Tx, now time.Time, p *payout.Payout, st *payout.ApprovalState) error {
	p.Status, p.FailureCode, p.Reason, p.ReasonDetail = payout.StatusRejected, payout.CodeApprovalExpired, "", ""
	p.FailureMessage = fmt.Sprintf("%d of %d approvals before %s", st.Approved(), st.Request.Quorum,
		st.Request.ExpiresAt.UTC().Format(time.RFC3339))
	e, err := payout.NewAuditEntry(payout.ActorEngine, payout.AuditPayoutExpire, p.ID, map[string]any{
		"approvals": st.Approved(), "quorum": st.Request.Quorum, "group": st.Request.Group,
		"expires_at": st.Request.ExpiresAt.UTC(),
	})
	if err != nil {
		return err
	}
	if err := db.appendAuditTx(ctx, tx, now, e); err != nil {
		return err
	}
	if err := db.saveAs(ctx, tx, now, p, ""); err != nil {
		return err
	}
	return db.followOne(ctx, tx, now, p, p.Status.EventType())
}

// release queues a held payout whose hold ended, with its audit entry.
func (db *DB) release(ctx context.Context, tx *sql.Tx, now time.Time, p *payout.Payout, st *payout.ApprovalState) error {
	p.Status, p.Reason, p.ReasonDetail = payout.StatusQueued, "", ""
	e, err := payout.NewAuditEntry(payout.ActorEngine, payout.AuditPayoutRelease, p.ID, map[string]any{
		"hold_until": st.Request.HoldUntil.UTC(),
	})
	if err != nil {
		return err
	}
	if err := db.appendAuditTx(ctx, tx, now, e); err != nil {
		return err
	}
	return db.saveAs(ctx, tx, now, p, payout.EventReleased)
}

// SweepApprovals releases ended holds and rejects expired requests, at
// most limit payouts, in one transaction. A payout decided meanwhile is
// left alone.
func (db *DB) SweepApprovals(ctx context.Context, now time.Time, limit int) (payout.SweepResult, error) {
	var res payout.SweepResult
	if limit <= 0 {
		limit = 500
	}
	at := db.d.time(now.UTC().Truncate(time.Microsecond))
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT p.id FROM payouts p JOIN approval_requests r ON r.payout_id = p.id
		WHERE p.status = 'pending_approval' AND ((r.kind = 'hold' AND r.hold_until <= ?) OR r.expires_at <= ?)
		ORDER BY p.created_at, p.id LIMIT ?`), at, at, limit)
	if err != nil {
		return res, db.wrap("due approvals", err)
	}
	ids, err := collect(rows, func(s scanner) (string, error) { var id string; return id, s.Scan(&id) })
	if err != nil || len(ids) == 0 {
		return res, db.wrap("due approvals", err)
	}
	err = db.withTx(ctx, "sweep_approvals", func(ctx context.Context, tx *sql.Tx, _ time.Time) error {
		res = payout.SweepResult{}
		for _, id := range ids {
			p, st, err := db.lockPending(ctx, tx, id)
			if errors.Is(err, payout.ErrNotPendingApproval) {
				continue
			}
			if err != nil {
				return err
			}
			switch r := st.Request; {
			case r.Kind == payout.ApprovalHold && !r.HoldUntil.After(now):
				err = db.release(ctx, tx, now, p, st)
				res.Released = append(res.Released, id)
			case !r.ExpiresAt.After(now):
				err = db.expire(ctx, tx, now, p, st)
				res.Expired = append(res.Expired, id)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	return res, err
}
