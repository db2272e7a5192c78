package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// DecideBatch approves, or rejects, every payout of a batch that waits for
// approval, in one transaction (see payout.ApprovalStore). A rejection
// (a.Decision payout.Reject, with a reason) rejects every pending row,
// held ones too, whoever created them and whatever their group, each with
// its approval row, audit entry and event; res.Approved then lists the
// rows it rejected, and rows the key had decided already are skipped.
func (db *DB) DecideBatch(ctx context.Context, batchID string, a *payout.Approval, inGroup func(group string) bool) (payout.BatchApproval, error) {
	var res payout.BatchApproval
	if a.Decision == payout.Reject {
		inGroup = nil // anyone with the scope may stop money
	}
	a.PayoutID = batchID // Validate wants a payout id; each row gets its own
	if err := a.Validate(); err != nil {
		return res, err
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = db.clock()
	}
	at := a.CreatedAt.UTC().Truncate(time.Microsecond)
	err := db.withTx(ctx, "decide_batch", func(ctx context.Context, tx *sql.Tx, _ time.Time) error {
		res = payout.BatchApproval{}
		rows, err := tx.QueryContext(ctx, db.q(`SELECT id FROM payouts WHERE batch_id = ? AND status = 'pending_approval' ORDER BY id`), batchID)
		if err != nil {
			return db.wrap("pending batch payouts", err)
		}
		ids, err := collect(rows, func(s scanner) (string, error) { var id string; return id, s.Scan(&id) })
		if err != nil {
			return db.wrap("pending batch payouts", err)
		}
		if len(ids) == 0 {
			return payout.ErrNotPendingApproval
		}
		for _, id := range ids {
			if err := db.decideRow(ctx, tx, id, *a, at, inGroup, &res); err != nil {
				return err
			}
		}
		return nil
	})
	return res, err
}

// decideRow approves one pending payout of a batch, or says why not.
func (db *DB) decideRow(ctx context.Context, tx *sql.Tx, id string, a payout.Approval, at time.Time,
	inGroup func(string) bool, res *payout.BatchApproval) error {
	p, st, err := db.lockPending(ctx, tx, id)
	if err != nil {
		return err
	}
	a.PayoutID, a.CreatedAt = id, at
	err = st.Check(&a, at)
	switch {
	case errors.Is(err, payout.ErrSelfApproval):
		return err // the initiator of one row is, in practice, the batch's
	case errors.Is(err, payout.ErrApprovalExpired):
		res.Expired = append(res.Expired, id)
		return db.expire(ctx, tx, at, p, st)
	case err != nil:
		res.Skipped = append(res.Skipped, id)
		return nil
	case st.Request.Kind == payout.ApprovalQuorum && inGroup != nil && !inGroup(st.Request.Group):
		res.Skipped = append(res.Skipped, id)
		return nil
	}
	if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO approvals (`+approvalCols+`) VALUES (?, ?, ?, ?, ?, ?)`),
		id, a.ApproverKeyID, a.ApproverName, string(a.Decision), a.Reason, db.d.time(at)); err != nil {
		return db.wrap("insert approval", err)
	}
	st.Approvals = append(st.Approvals, a)
	res.Approved = append(res.Approved, id)
	if a.Decision == payout.Approve && st.Approved() >= st.Request.Quorum {
		res.Queued = append(res.Queued, id)
	}
	return db.applyDecision(ctx, tx, at, p, st, &a)
}
