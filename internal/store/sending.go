package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// idChunk bounds the ids in one IN list, well under both databases'
// parameter limits.
const idChunk = 500

// lockMany reads the payouts with the given ids in tx, in id order (locked
// until commit on PostgreSQL, so concurrent batches cannot deadlock).
// Unknown ids are absent from the map.
//
// On SQLite the payouts this process last wrote come from committedRows
// instead of the database; only the others are read.
func (db *DB) lockMany(ctx context.Context, tx *sql.Tx, ids []string) (map[string]*payout.Payout, error) {
	out, missing := db.heldPayouts(sortedUnique(ids))
	if verifyCommittedRows && len(out) > 0 {
		all, err := db.lockWhere(ctx, tx, "id", ids)
		if err != nil {
			return nil, err
		}
		checkHeld(out, all)
	}
	ps, err := db.lockWhere(ctx, tx, "id", missing)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		out[p.ID] = p
	}
	return out, nil
}

// lockWhere reads, in id order and locked on PostgreSQL, the payouts whose
// column holds one of values, in chunks of idChunk.
func (db *DB) lockWhere(ctx context.Context, tx *sql.Tx, column string, values []string) ([]*payout.Payout, error) {
	var out []*payout.Payout
	for chunk := range slices.Chunk(sortedUnique(values), idChunk) {
		q := "SELECT " + db.d.q.payoutCols + " FROM payouts WHERE " + column + " IN (" +
			db.d.placeholders(1, len(chunk)) + ") ORDER BY id" + db.d.forUpdate
		args := make([]any, len(chunk))
		for i, v := range chunk {
			args[i] = v
		}
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, db.wrap("lock payouts", err)
		}
		ps, err := collect(rows, scanPayout)
		if err != nil {
			return nil, db.wrap("lock payouts", err)
		}
		out = append(out, ps...)
	}
	return out, nil
}

func sortedUnique(ids []string) []string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return slices.Compact(s)
}

// transition applies change to each payout of ids in one transaction and
// saves those it changed with their events; change returns false to leave
// a payout alone. Unknown ids are ignored.
func (db *DB) transition(ctx context.Context, op string, ids []string, change func(p *payout.Payout, now time.Time) bool) error {
	return db.transitionAs(ctx, op, "", ids, change)
}

// transitionAs is transition with an event type other than the new
// status's ("" for the status's own). The payouts a changed carrier's
// transaction also pays follow it (mirrorCarrier).
func (db *DB) transitionAs(ctx context.Context, op, eventType string, ids []string, change func(p *payout.Payout, now time.Time) bool) error {
	return db.transitionChunks(ctx, op, eventType, ids, change, mirrorCarrier)
}

// transitionChunks is transitionAs with the function that moves a changed
// carrier's payouts (in chunk order) after it; follow may still adjust the
// carrier, which is saved after it returns. When the last payouts of a
// batch end, the batch settles in the same transaction. It is a bulk write
// (bulkTx): on SQLite the creates and submits grouped with it commit first.
func (db *DB) transitionChunks(ctx context.Context, op, eventType string, ids []string,
	change func(p *payout.Payout, now time.Time) bool, follow followFunc) error {
	if len(ids) == 0 {
		return nil
	}
	return db.bulkTx(ctx, op, func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		ps, err := db.lockMany(ctx, tx, ids)
		if err != nil {
			return err
		}
		var changed []*payout.Payout
		var carriers []string
		for _, id := range sortedUnique(ids) {
			p := ps[id]
			if p == nil {
				continue
			}
			wasCarrier := p.ChunkAmount != nil
			if change(p, now) {
				changed = append(changed, p)
				if wasCarrier {
					carriers = append(carriers, p.ID)
				}
			}
		}
		carried, err := db.lockCarried(ctx, tx, carriers)
		if err != nil {
			return err
		}
		for _, c := range carriers {
			follow(ps[c], carried[c])
			changed = append(changed, carried[c]...)
		}
		batches := map[string]bool{}
		for _, p := range changed {
			if err := db.saveAs(ctx, tx, now, p, eventType); err != nil {
				return err
			}
			if p.BatchID != "" && p.Status.Terminal() {
				batches[p.BatchID] = true
			}
		}
		return db.settleBatches(ctx, tx, now, batches)
	})
}

// QueuedPayouts returns up to limit (100 when not positive) queued payouts
// of a sender, oldest first.
func (db *DB) QueuedPayouts(ctx context.Context, chainID uint64, sender common.Address, limit int) (_ []*payout.Payout, err error) {
	defer db.track("queued_payouts")(&err)
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.queryRead(ctx, db.d.q.queuedPayouts, int64(chainID), addrText(sender), limit)
	if err != nil {
		return nil, db.wrap("queued payouts", err)
	}
	ps, err := collect(rows, scanPayout)
	return ps, db.wrap("queued payouts", err)
}

// ConfirmingPayouts returns the sender's payouts that are mined and waiting
// for confirmations, oldest first.
func (db *DB) ConfirmingPayouts(ctx context.Context, chainID uint64, sender common.Address) (_ []*payout.Payout, err error) {
	defer db.track("confirming_payouts")(&err)
	return db.senderPayouts(ctx, db.d.q.confirmingPayouts, chainID, sender)
}

// FailQueued moves queued payouts to failed before any nonce was used.
// Payouts no longer queued, and unknown ids, are left alone.
func (db *DB) FailQueued(ctx context.Context, failures []payout.Failure) error {
	byID := make(map[string]payout.Failure, len(failures))
	ids := make([]string, 0, len(failures))
	for _, f := range failures {
		if _, dup := byID[f.PayoutID]; !dup {
			byID[f.PayoutID] = f
			ids = append(ids, f.PayoutID)
		}
	}
	return db.transition(ctx, "fail_queued", ids, func(p *payout.Payout, _ time.Time) bool {
		if p.Status != payout.StatusQueued {
			return false
		}
		f := byID[p.ID]
		p.Status, p.FailureCode, p.FailureMessage = payout.StatusFailed, f.Code, f.Message
		return true
	})
}

// MaxNonce returns the highest nonce ever allocated for a sender, and false
// when none was.
func (db *DB) MaxNonce(ctx context.Context, chainID uint64, sender common.Address) (_ uint64, _ bool, err error) {
	defer db.track("max_nonce")(&err)
	var n sql.NullInt64
	if err := db.queryRowRead(ctx, db.d.q.maxNonce, int64(chainID), addrText(sender)).Scan(&n); err != nil {
		return 0, false, db.wrap("max nonce", err)
	}
	return uint64(n.Int64), n.Valid, nil
}

// InFlightAttempts returns every attempt of the sender's submitted payouts,
// oldest nonce first.
func (db *DB) InFlightAttempts(ctx context.Context, chainID uint64, sender common.Address) (_ []*payout.Attempt, err error) {
	defer db.track("in_flight_attempts")(&err)
	rows, err := db.queryRead(ctx, db.d.q.inFlightAttempts, int64(chainID), addrText(sender))
	if err != nil {
		return nil, db.wrap("in-flight attempts", err)
	}
	as, err := collect(rows, scanAttempt)
	return as, db.wrap("in-flight attempts", err)
}

// ListAttempts returns every attempt of a payout, oldest first.
func (db *DB) ListAttempts(ctx context.Context, payoutID string) (_ []*payout.Attempt, err error) {
	defer db.track("list_attempts")(&err)
	if p, err := db.GetPayout(ctx, payoutID); err == nil && p.CarrierID != "" {
		payoutID = p.CarrierID // a batch transaction's attempts are its carrier's
	}
	rows, err := db.queryRead(ctx, db.d.q.listAttempts, payoutID)
	if err != nil {
		return nil, db.wrap("list attempts", err)
	}
	as, err := collect(rows, scanAttempt)
	return as, db.wrap("list attempts", err)
}

// SubmitAttempts stores signed first attempts with their nonces and moves
// their payouts from queued to submitted, in one transaction. When a payout
// is no longer queued it writes nothing and returns *payout.StaleError; a
// nonce already allocated gives an error wrapping payout.ErrNonceConflict.
// It sets each attempt's ID (and CreatedAt when zero).
func (db *DB) SubmitAttempts(ctx context.Context, attempts []*payout.Attempt) error {
	if len(attempts) == 0 {
		return nil
	}
	ids, err := attemptPayoutIDs(attempts)
	if err != nil {
		return err
	}
	return db.withTx(ctx, "submit_attempts", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		ps, err := db.lockMany(ctx, tx, ids)
		if err != nil {
			return err
		}
		var stale []string
		for _, id := range sortedUnique(ids) {
			if p := ps[id]; p == nil || p.Status != payout.StatusQueued {
				stale = append(stale, id)
			}
		}
		if len(stale) > 0 {
			return &payout.StaleError{PayoutIDs: stale}
		}
		for _, a := range attempts {
			p := ps[a.PayoutID]
			if a.Chunk != nil {
				p.ChunkAmount, p.ChunkPos, p.GasWeight = a.Chunk.Amount, 0, a.Chunk.GasWeights[0]
			}
			if err := db.submitOne(ctx, tx, now, p, a); err != nil {
				return err
			}
			if a.Chunk != nil {
				if err := db.submitChunk(ctx, tx, now, ps, a); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// attemptPayoutIDs checks that attempts are complete and name each payout once.
func attemptPayoutIDs(attempts []*payout.Attempt) ([]string, error) {
	ids := make([]string, 0, len(attempts))
	seen := make(map[string]bool, len(attempts))
	for _, a := range attempts {
		if err := checkAttempt(a); err != nil {
			return nil, fmt.Errorf("store: submit attempts: %w", err)
		}
		if err := checkChunk(a); err != nil {
			return nil, fmt.Errorf("store: submit attempts: %w", err)
		}
		paid := []string{a.PayoutID}
		if a.Chunk != nil {
			paid = a.Chunk.PayoutIDs
		}
		for _, id := range paid {
			if seen[id] {
				return nil, fmt.Errorf("store: submit attempts: payout %s has two first attempts", id)
			}
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// submitOne allocates a's nonce, stores a and moves p to submitted.
func (db *DB) submitOne(ctx context.Context, tx *sql.Tx, now time.Time, p *payout.Payout, a *payout.Attempt) error {
	if a.ChainID != p.ChainID || a.Sender != p.Sender {
		return fmt.Errorf("store: submit attempts: payout %s is sent by %s on chain %d, not %s on chain %d",
			p.ID, p.Sender.Hex(), p.ChainID, a.Sender.Hex(), a.ChainID)
	}
	if err := db.allocateNonce(ctx, tx, a.ChainID, a.Sender, a.Nonce, p.ID); err != nil {
		return err
	}
	if a.Chunk != nil && a.Chunk.Approve != nil {
		// The exact token approval goes at the nonce before the batch's.
		ap := a.Chunk.Approve
		if ap.PayoutID != p.ID || ap.Nonce+1 != a.Nonce || ap.Kind != payout.AttemptApprove {
			return fmt.Errorf("store: submit attempts: payout %s: its approval must be its own, kind approve, at nonce %d", p.ID, a.Nonce-1)
		}
		if err := db.allocateNonce(ctx, tx, ap.ChainID, ap.Sender, ap.Nonce, p.ID); err != nil {
			return err
		}
		if err := db.insertAttempt(ctx, tx, now, ap); err != nil {
			return err
		}
	}
	if a.Chunk != nil && a.Chunk.Delegates {
		// The delegation's authorization takes the next nonce.
		if err := db.allocateNonce(ctx, tx, a.ChainID, a.Sender, a.Nonce+1, p.ID); err != nil {
			return err
		}
	}
	if err := db.insertAttempt(ctx, tx, now, a); err != nil {
		return err
	}
	nonce, hash := a.Nonce, a.TxHash
	p.Status, p.Nonce, p.TxHash = payout.StatusSubmitted, &nonce, &hash
	p.Reason, p.ReasonDetail = "", ""
	return db.save(ctx, tx, now, p)
}

// allocateNonce records that payout id uses a sender's nonce; a nonce
// already allocated gives payout.ErrNonceConflict.
func (db *DB) allocateNonce(ctx context.Context, tx *sql.Tx, chainID uint64, sender common.Address, nonce uint64, id string) error {
	res, err := db.execTx(ctx, tx, db.d.q.insertNonce, int64(chainID), addrText(sender), int64(nonce), id)
	if err != nil {
		return db.wrap("allocate nonce", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		if err != nil {
			return db.wrap("allocate nonce", err)
		}
		return fmt.Errorf("store: nonce %d of %s on chain %d: %w", nonce, sender.Hex(), chainID, payout.ErrNonceConflict)
	}
	return nil
}

// insertAttempt stores a, setting its ID, and its CreatedAt when zero.
func (db *DB) insertAttempt(ctx context.Context, tx *sql.Tx, now time.Time, a *payout.Attempt) error {
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now
	}
	if a.Kind == "" {
		a.Kind = payout.AttemptTransfer
	}
	a.CreatedAt = a.CreatedAt.UTC().Truncate(time.Microsecond)
	err := db.queryRowTx(ctx, tx, db.d.q.insertAttempt, a.PayoutID, int64(a.ChainID), addrText(a.Sender), int64(a.Nonce),
		hashText(a.TxHash), a.RawTx, int64(a.GasLimit), a.MaxFeePerGas.String(), a.MaxPriorityFeePerGas.String(),
		db.d.time(a.CreatedAt), string(a.Kind)).Scan(&a.ID)
	return db.wrap("insert attempt", err)
}

// ReplaceAttempts stores attempts at the nonce their payouts already hold,
// with an EventReplaced each; a stuck payout goes back to submitted. When a
// payout is not in flight or holds another nonce it writes nothing and
// returns *payout.StaleError.
func (db *DB) ReplaceAttempts(ctx context.Context, attempts []*payout.Attempt) error {
	if len(attempts) == 0 {
		return nil
	}
	ids := make([]string, 0, len(attempts))
	for _, a := range attempts {
		if err := checkAttempt(a); err != nil {
			return fmt.Errorf("store: replace attempts: %w", err)
		}
		ids = append(ids, a.PayoutID)
	}
	return db.withTx(ctx, "replace_attempts", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		ps, err := db.lockMany(ctx, tx, ids)
		if err != nil {
			return err
		}
		var stale []string
		for _, a := range attempts {
			p := ps[a.PayoutID]
			want := a.Nonce // an approval goes at the nonce before its batch transaction's
			if a.Kind == payout.AttemptApprove {
				want++
			}
			if p == nil || !p.Status.InFlight() || p.Nonce == nil || *p.Nonce != want ||
				p.ChainID != a.ChainID || p.Sender != a.Sender {
				stale = append(stale, a.PayoutID)
			}
		}
		if len(stale) > 0 {
			return &payout.StaleError{PayoutIDs: sortedUnique(stale)}
		}
		for _, a := range attempts {
			if err := db.insertAttempt(ctx, tx, now, a); err != nil {
				return err
			}
			p := ps[a.PayoutID]
			if a.Kind == payout.AttemptTransfer || a.Kind == "" {
				hash := a.TxHash
				p.TxHash = &hash
			}
			if p.Status == payout.StatusStuck {
				p.Status, p.Reason, p.ReasonDetail = payout.StatusSubmitted, "", ""
			}
			if err := db.saveAs(ctx, tx, now, p, payout.EventReplaced); err != nil {
				return err
			}
			if err := db.followReplaced(ctx, tx, now, p); err != nil {
				return err
			}
		}
		return nil
	})
}

// followReplaced moves the payouts a carrier's transaction pays to its
// replacement's hash and status.
func (db *DB) followReplaced(ctx context.Context, tx *sql.Tx, now time.Time, c *payout.Payout) error {
	if c.ChunkAmount == nil {
		return nil
	}
	carried, err := db.lockCarried(ctx, tx, []string{c.ID})
	if err != nil {
		return err
	}
	mirrorCarrier(c, carried[c.ID])
	for _, p := range carried[c.ID] {
		if err := db.saveAs(ctx, tx, now, p, payout.EventReplaced); err != nil {
			return err
		}
	}
	return nil
}

// checkAttempt checks that an attempt is complete.
func checkAttempt(a *payout.Attempt) error {
	switch {
	case a == nil || a.PayoutID == "":
		return errors.New("attempt without payout id")
	case a.MaxFeePerGas == nil || a.MaxPriorityFeePerGas == nil:
		return fmt.Errorf("payout %s: fee caps are not set", a.PayoutID)
	case len(a.RawTx) == 0:
		return fmt.Errorf("payout %s: no signed transaction", a.PayoutID)
	}
	return nil
}

// MarkStuck moves submitted payouts to stuck with their reason; a hold with
// no reason moves a stuck payout back to submitted. Others are left alone.
func (db *DB) MarkStuck(ctx context.Context, holds []payout.Hold) error {
	byID, ids := holdsByID(holds)
	return db.transition(ctx, "mark_stuck", ids, func(p *payout.Payout, _ time.Time) bool {
		h := byID[p.ID]
		switch {
		case h.Reason == "" && p.Status == payout.StatusStuck: // unstick
			p.Status, p.Reason, p.ReasonDetail = payout.StatusSubmitted, "", ""
		case h.Reason != "" && p.Status == payout.StatusSubmitted:
			p.Status, p.Reason, p.ReasonDetail = payout.StatusStuck, h.Reason, h.Detail
		default:
			return false
		}
		return true
	})
}

// HoldQueued records why queued payouts wait, with an EventWaiting when
// the reason changes; an empty reason clears it. Others are left alone.
func (db *DB) HoldQueued(ctx context.Context, holds []payout.Hold) error {
	byID, ids := holdsByID(holds)
	return db.transitionAs(ctx, "hold_queued", payout.EventWaiting, ids, func(p *payout.Payout, _ time.Time) bool {
		h := byID[p.ID]
		if p.Status != payout.StatusQueued || (p.Reason == h.Reason && p.ReasonDetail == h.Detail) {
			return false
		}
		p.Reason, p.ReasonDetail = h.Reason, h.Detail
		return true
	})
}

func holdsByID(holds []payout.Hold) (map[string]payout.Hold, []string) {
	byID := make(map[string]payout.Hold, len(holds))
	ids := make([]string, 0, len(holds))
	for _, h := range holds {
		if _, dup := byID[h.PayoutID]; !dup {
			ids = append(ids, h.PayoutID)
		}
		byID[h.PayoutID] = h
	}
	return byID, ids
}

// InFlightPayouts returns the sender's payouts that are submitted or stuck,
// oldest first.
func (db *DB) InFlightPayouts(ctx context.Context, chainID uint64, sender common.Address) (_ []*payout.Payout, err error) {
	defer db.track("in_flight_payouts")(&err)
	return db.senderPayouts(ctx, db.d.q.inFlightPayouts, chainID, sender)
}

// PayoutRequests returns the sender's payouts in flight that carry a
// cancel request or a fee cap.
func (db *DB) PayoutRequests(ctx context.Context, chainID uint64, sender common.Address) (_ []*payout.Payout, err error) {
	defer db.track("payout_requests")(&err)
	return db.senderPayouts(ctx, db.d.q.payoutRequests, chainID, sender)
}

// senderPayouts runs a query over (chain id, sender) that returns payouts.
func (db *DB) senderPayouts(ctx context.Context, query string, chainID uint64, sender common.Address) ([]*payout.Payout, error) {
	rows, err := db.read.QueryContext(ctx, query, int64(chainID), addrText(sender))
	if err != nil {
		return nil, db.wrap("sender payouts", err)
	}
	ps, err := collect(rows, scanPayout)
	return ps, db.wrap("sender payouts", err)
}

// MarkMined records receipts and moves their payouts from submitted to
// confirming with tx hash, block, fee and outcome. Payouts not submitted
// (e.g. already marked) are left alone.
func (db *DB) MarkMined(ctx context.Context, receipts []payout.Receipt) error {
	byID := make(map[string]payout.Receipt, len(receipts))
	ids := make([]string, 0, len(receipts))
	for _, r := range receipts {
		if r.EffectiveGasPrice == nil {
			return fmt.Errorf("store: mark mined: payout %s: receipt without effective gas price", r.PayoutID)
		}
		byID[r.PayoutID] = r
		ids = append(ids, r.PayoutID)
	}
	return db.transitionChunks(ctx, "mark_mined", "", ids, func(p *payout.Payout, _ time.Time) bool {
		if !p.Status.InFlight() {
			return false
		}
		r := byID[p.ID]
		hash, block := r.TxHash, r.BlockHash
		p.Status, p.TxHash, p.BlockNumber, p.BlockHash = payout.StatusConfirming, &hash, r.BlockNumber, &block
		p.Fee, p.ReceiptOK, p.CancelMined = r.Fee(), r.Success, r.Cancel
		p.Reason, p.ReasonDetail, p.LogIndex = "", "", nil
		if len(r.TransferLogs) == 1 && p.ChunkAmount == nil { // a token payout paid alone
			li := r.TransferLogs[0]
			p.LogIndex = &li
		}
		return true
	}, minedFollower(byID))
}

// MarkReorged moves confirming payouts whose block left the canonical chain
// back to submitted, clearing block, fee and outcome. Others are left alone.
func (db *DB) MarkReorged(ctx context.Context, payoutIDs []string) error {
	return db.transitionAs(ctx, "mark_reorged", payout.EventReorged, payoutIDs, func(p *payout.Payout, _ time.Time) bool {
		if p.Status != payout.StatusConfirming {
			return false
		}
		p.Status, p.BlockNumber, p.BlockHash, p.Fee, p.ReceiptOK = payout.StatusSubmitted, 0, nil, nil, false
		p.CancelMined, p.LogIndex = false, nil
		return true
	})
}

// Finalize moves confirming payouts to completed, to cancelled when their
// cancel mined, or to failed with payout.FailureRevertedOnChain (fee kept)
// when their receipt failed; a reverted batch transaction instead puts
// every payout it carried back in the queue (nobody in it was paid).
// Others are left alone.
func (db *DB) Finalize(ctx context.Context, payoutIDs []string) error {
	return db.transition(ctx, "finalize", payoutIDs, func(p *payout.Payout, _ time.Time) bool {
		if p.Status != payout.StatusConfirming {
			return false
		}
		switch {
		case p.CancelMined:
			p.Status = payout.StatusCancelled
			return true
		case p.ReceiptOK:
			p.Status = payout.StatusCompleted
			if p.CancelRequested {
				p.Reason, p.ReasonDetail = payout.ReasonCancelFailed, "the payout's transaction was mined before the cancel"
			}
			return true
		}
		if p.ChunkAmount != nil {
			requeueChunk(p)
			return true
		}
		p.Status, p.FailureCode = payout.StatusFailed, payout.FailureRevertedOnChain
		p.FailureMessage = "the transaction was mined but reverted; its fee was paid"
		return true
	})
}

// MoveQueued hands queued payouts from one hot wallet to another, clearing
// their waiting reason, with a payout.reassigned event each. A payout no
// longer queued or no longer held by Move.From is left alone, so a move
// races nothing: the sender that would pay it is the one asking.
func (db *DB) MoveQueued(ctx context.Context, moves []payout.Move) error {
	byID := make(map[string]payout.Move, len(moves))
	ids := make([]string, 0, len(moves))
	for _, m := range moves {
		if _, dup := byID[m.PayoutID]; !dup {
			ids = append(ids, m.PayoutID)
		}
		byID[m.PayoutID] = m
	}
	if len(ids) == 0 {
		return nil
	}
	return db.withTx(ctx, "move_queued", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		ps, err := db.lockMany(ctx, tx, ids)
		if err != nil {
			return err
		}
		for _, id := range sortedUnique(ids) {
			p, m := ps[id], byID[id]
			if p == nil || p.Status != payout.StatusQueued || p.Sender != m.From || m.To == m.From {
				continue
			}
			prev := p.Version
			p.Sender, p.Reason, p.ReasonDetail, p.Version, p.UpdatedAt = m.To, "", "", prev+1, now
			res, err := db.execTx(ctx, tx, db.d.q.moveQueued, addrText(m.To), p.Version, db.d.time(now), p.ID, prev, addrText(m.From))
			if err != nil {
				return db.wrap("move queued payout", err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return db.versionChanged("move payout", p.ID, prev, n, err)
			}
			if err := db.insertEvent(ctx, tx, now, payout.EventReassigned, p); err != nil {
				return err
			}
			db.wrote(ctx, p)
		}
		return nil
	})
}
