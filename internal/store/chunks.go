package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// A batch transaction pays several payouts: the first (the carrier) holds
// the nonce and the attempts, the others (carried, CarrierID set) follow
// every change of the carrier in the same database transaction, so the
// sender tracks one transaction and every payout it pays moves with it.

// followFunc moves the payouts a carrier's transaction pays (in chunk
// order) after the carrier changed.
type followFunc func(carrier *payout.Payout, carried []*payout.Payout)

// lockCarried reads, locked on PostgreSQL, the payouts carried by each of
// carriers, in chunk order.
func (db *DB) lockCarried(ctx context.Context, tx *sql.Tx, carriers []string) (map[string][]*payout.Payout, error) {
	ps, err := db.lockWhere(ctx, tx, "carrier_id", carriers)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]*payout.Payout, len(carriers))
	for _, p := range ps {
		out[p.CarrierID] = append(out[p.CarrierID], p)
	}
	for _, ps := range out {
		slices.SortFunc(ps, func(a, b *payout.Payout) int { return a.ChunkPos - b.ChunkPos })
	}
	return out, nil
}

// mirrorCarrier gives carried payouts their carrier's state: status,
// transaction, block, outcome and reason. Unmined, they have no fee and no
// log; back in the queue (the transaction reverted), they leave the chunk.
func mirrorCarrier(c *payout.Payout, carried []*payout.Payout) {
	for _, p := range carried {
		p.Status, p.Nonce, p.TxHash = c.Status, c.Nonce, c.TxHash
		p.BlockNumber, p.BlockHash, p.ReceiptOK, p.CancelMined = c.BlockNumber, c.BlockHash, c.ReceiptOK, c.CancelMined
		p.Reason, p.ReasonDetail = c.Reason, c.ReasonDetail
		p.FailureCode, p.FailureMessage = c.FailureCode, c.FailureMessage
		if c.BlockNumber == 0 {
			p.Fee, p.LogIndex = nil, nil
		}
		if c.Status == payout.StatusQueued {
			p.CarrierID, p.ChunkPos, p.GasWeight = "", 0, 0
		}
	}
}

// minedFollower mirrors the carrier and splits the transaction's fee (set
// on the carrier by MarkMined) among the chunk by marginal gas, so the
// shares add up to it exactly; token payouts get their Transfer's log
// index.
func minedFollower(receipts map[string]payout.Receipt) followFunc {
	return func(c *payout.Payout, carried []*payout.Payout) {
		mirrorCarrier(c, carried)
		chunk := append([]*payout.Payout{c}, carried...)
		weights := make([]uint64, len(chunk))
		for i, p := range chunk {
			weights[i] = p.GasWeight
		}
		shares := payout.SplitFee(c.Fee, weights)
		logs := receipts[c.ID].TransferLogs
		for i, p := range chunk {
			p.Fee, p.LogIndex = shares[i], nil
			if len(logs) == len(chunk) {
				li := logs[i]
				p.LogIndex = &li
			}
		}
	}
}

// requeueChunk puts a carrier whose batch transaction reverted back in the
// queue: nobody in it was paid, so the chunk is planned again (its carried
// payouts follow). The nonce stays used; its attempts stay in the history.
func requeueChunk(p *payout.Payout) {
	p.Status, p.Nonce, p.TxHash, p.BlockNumber, p.BlockHash = payout.StatusQueued, nil, nil, 0, nil
	p.Fee, p.ReceiptOK, p.LogIndex, p.ChunkAmount, p.ChunkPos, p.GasWeight = nil, false, nil, nil, 0, 0
	p.Reason = payout.ReasonChunkReverted
	p.ReasonDetail = "the batch transaction paying it was mined but reverted, so nobody in it was paid; it is planned again"
}

// submitChunk records the payouts a first attempt's batch transaction pays
// after its carrier: each moves to submitted at the carrier's nonce.
func (db *DB) submitChunk(ctx context.Context, tx *sql.Tx, now time.Time, ps map[string]*payout.Payout, a *payout.Attempt) error {
	c := a.Chunk
	carrier := ps[a.PayoutID]
	for i, id := range c.PayoutIDs[1:] {
		p := ps[id]
		if p.ChainID != carrier.ChainID || p.Sender != carrier.Sender || p.Asset != carrier.Asset {
			return fmt.Errorf("store: submit attempts: payout %s cannot share the batch transaction of %s", id, carrier.ID)
		}
		p.Status, p.Nonce, p.TxHash, p.Reason, p.ReasonDetail = carrier.Status, carrier.Nonce, carrier.TxHash, "", ""
		p.CarrierID, p.ChunkPos, p.GasWeight = carrier.ID, i+1, c.GasWeights[i+1]
		if err := db.save(ctx, tx, now, p); err != nil {
			return err
		}
	}
	return nil
}

// checkChunk checks a first attempt's chunk: the attempt's payout first,
// one weight per payout, each payout once, a positive total.
func checkChunk(a *payout.Attempt) error {
	c := a.Chunk
	switch {
	case c == nil:
		return nil
	case len(c.PayoutIDs) == 0 || c.PayoutIDs[0] != a.PayoutID:
		return fmt.Errorf("payout %s: its chunk must list it first", a.PayoutID)
	case len(c.GasWeights) != len(c.PayoutIDs):
		return fmt.Errorf("payout %s: chunk has %d payouts and %d weights", a.PayoutID, len(c.PayoutIDs), len(c.GasWeights))
	case c.Amount == nil || c.Amount.Sign() <= 0:
		return fmt.Errorf("payout %s: chunk amount must be positive", a.PayoutID)
	case len(sortedUnique(c.PayoutIDs)) != len(c.PayoutIDs):
		return fmt.Errorf("payout %s: chunk names a payout twice", a.PayoutID)
	}
	return nil
}

// settleBatches ends the batches whose payouts are all terminal: the
// batch takes its final status and a batch.completed event with its
// counts is written, in tx.
func (db *DB) settleBatches(ctx context.Context, tx *sql.Tx, now time.Time, batchIDs map[string]bool) error {
	for id := range batchIDs {
		var open int64
		q := `SELECT COUNT(*) FROM payouts WHERE batch_id = ` + db.d.bind(1) +
			` AND status IN ('queued', 'submitted', 'stuck', 'confirming')`
		if err := db.queryRowTx(ctx, tx, q, id).Scan(&open); err != nil {
			return db.wrap("count open batch payouts", err)
		}
		if open > 0 {
			continue
		}
		b, err := db.readBatch(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if b.Status != payout.BatchProcessing {
			continue
		}
		b.Settle()
		if b.Status == payout.BatchProcessing {
			continue
		}
		b.Version++
		b.UpdatedAt = now
		if _, err := db.execTx(ctx, tx, db.q(`UPDATE batches SET status = ?, version = ?, updated_at = ? WHERE id = ?`),
			string(b.Status), b.Version, db.d.time(now), b.ID); err != nil {
			return db.wrap("settle batch", err)
		}
		if err := db.appendEventTx(ctx, tx, now, b.ID, payout.EventBatchCompleted, b); err != nil {
			return err
		}
	}
	return nil
}
