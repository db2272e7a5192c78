package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

const offlinePlanCols = `id, chain, chain_id, wallet, status, max_payouts, items, note, requested_by, created_at, updated_at`

func scanOfflinePlan(s scanner) (*payout.OfflinePlan, error) {
	var (
		pl               payout.OfflinePlan
		chainID, max     int64
		wallet, status   string
		items            string
		created, updated dbTime
	)
	if err := s.Scan(&pl.ID, &pl.Chain, &chainID, &wallet, &status, &max, &items, &pl.Note, &pl.RequestedBy,
		&created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(items), &pl.Items); err != nil {
		return nil, fmt.Errorf("offline plan %s: items: %w", pl.ID, err)
	}
	if pl.Items == nil {
		pl.Items = []payout.OfflineItem{}
	}
	pl.Object, pl.ChainID, pl.Wallet, pl.Status, pl.MaxPayouts = "offline_plan", uint64(chainID), common.HexToAddress(wallet),
		payout.OfflinePlanStatus(status), int(max)
	pl.CreatedAt, pl.UpdatedAt = created.t, updated.t
	return &pl, nil
}

// CreateOfflinePlan stores a requested plan (its ID, Chain, ChainID,
// Wallet, MaxPayouts and RequestedBy set by the caller) with its audit
// entry. It returns payout.ErrOfflinePlanActive when the wallet has an
// active plan.
func (db *DB) CreateOfflinePlan(ctx context.Context, pl *payout.OfflinePlan) error {
	if pl.ID == "" || pl.MaxPayouts <= 0 {
		return fmt.Errorf("store: create offline plan: id and a positive max_payouts are required")
	}
	return db.withTx(ctx, "create_offline_plan", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		pl.Object, pl.Status, pl.Items, pl.CreatedAt, pl.UpdatedAt = "offline_plan", payout.PlanRequested, []payout.OfflineItem{}, now, now
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO offline_plans (`+offlinePlanCols+`) VALUES (?, ?, ?, ?, ?, ?, '[]', '', ?, ?, ?)`),
			pl.ID, pl.Chain, int64(pl.ChainID), pl.Wallet.Hex(), string(pl.Status), int64(pl.MaxPayouts), pl.RequestedBy,
			db.d.time(now), db.d.time(now))
		if err = db.d.interpret(err); errors.Is(err, errUnique) {
			return payout.ErrOfflinePlanActive
		}
		if err != nil {
			return db.wrap("create offline plan", err)
		}
		return db.auditTx(ctx, tx, now, pl.RequestedBy, payout.AuditOfflinePlanRequest, pl.ID,
			map[string]any{"chain": pl.Chain, "wallet": pl.Wallet.Hex(), "max_payouts": pl.MaxPayouts})
	})
}

// GetOfflinePlan returns a plan or payout.ErrNotFound.
func (db *DB) GetOfflinePlan(ctx context.Context, id string) (_ *payout.OfflinePlan, err error) {
	defer db.track("get_offline_plan")(&err)
	pl, err := scanOfflinePlan(db.read.QueryRowContext(ctx, db.q(`SELECT `+offlinePlanCols+` FROM offline_plans WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNotFound
	}
	return pl, db.wrap("get offline plan", err)
}

// ActiveOfflinePlan returns the wallet's active plan, or payout.ErrNotFound.
func (db *DB) ActiveOfflinePlan(ctx context.Context, chainID uint64, wallet common.Address) (_ *payout.OfflinePlan, err error) {
	defer db.track("active_offline_plan")(&err)
	pl, err := scanOfflinePlan(db.read.QueryRowContext(ctx, db.q(`SELECT `+offlinePlanCols+` FROM offline_plans
		WHERE chain_id = ? AND wallet = ? AND status IN ('requested', 'open', 'signed', 'void_requested')`),
		int64(chainID), wallet.Hex()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNotFound
	}
	return pl, db.wrap("active offline plan", err)
}

// lockOfflinePlan reads a plan in tx (locked on PostgreSQL) and checks its
// status is one of want.
func (db *DB) lockOfflinePlan(ctx context.Context, tx *sql.Tx, id string, want ...payout.OfflinePlanStatus) (*payout.OfflinePlan, error) {
	pl, err := scanOfflinePlan(tx.QueryRowContext(ctx, db.q(`SELECT `+offlinePlanCols+` FROM offline_plans WHERE id = ?`+db.d.forUpdate), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNotFound
	}
	if err != nil {
		return nil, db.wrap("read offline plan", err)
	}
	for _, s := range want {
		if pl.Status == s {
			return pl, nil
		}
	}
	return nil, fmt.Errorf("%w: plan %s is %s", payout.ErrOfflinePlanState, id, pl.Status)
}

// saveOfflinePlan writes a plan's status, items and note.
func (db *DB) saveOfflinePlan(ctx context.Context, tx *sql.Tx, now time.Time, pl *payout.OfflinePlan) error {
	items, err := json.Marshal(pl.Items)
	if err != nil {
		return fmt.Errorf("store: encode offline plan items: %w", err)
	}
	pl.UpdatedAt = now
	_, err = db.execTx(ctx, tx, db.q(`UPDATE offline_plans SET status = ?, items = ?, note = ?, updated_at = ? WHERE id = ?`),
		string(pl.Status), string(items), pl.Note, db.d.time(now), pl.ID)
	return db.wrap("save offline plan", err)
}

// planPayouts locks the payouts of a plan's items and checks each has
// status from and belongs to the plan's wallet; it returns
// *payout.StaleError naming those that do not.
func (db *DB) planPayouts(ctx context.Context, tx *sql.Tx, pl *payout.OfflinePlan, items []payout.OfflineItem, from payout.Status) (map[string]*payout.Payout, error) {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.PayoutID
	}
	ps, err := db.lockMany(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	var stale []string
	for _, id := range sortedUnique(ids) {
		if p := ps[id]; p == nil || p.Status != from || p.ChainID != pl.ChainID || p.Sender != pl.Wallet || p.CarrierID != "" {
			stale = append(stale, id)
		}
	}
	if len(stale) > 0 {
		return nil, &payout.StaleError{PayoutIDs: stale}
	}
	if len(sortedUnique(ids)) != len(ids) {
		return nil, fmt.Errorf("store: offline plan %s names a payout twice", pl.ID)
	}
	return ps, nil
}

// OpenOfflinePlan records a requested plan's unsigned transactions: it
// reserves their nonces, moves their payouts from queued to
// signing_offline and opens the plan, in one transaction. With no items
// the plan ends empty, with note saying why. When a payout is no longer
// queued it writes nothing and returns *payout.StaleError; a nonce already
// allocated gives payout.ErrNonceConflict.
func (db *DB) OpenOfflinePlan(ctx context.Context, id string, items []payout.OfflineItem, note string) error {
	return db.withTx(ctx, "open_offline_plan", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		pl, err := db.lockOfflinePlan(ctx, tx, id, payout.PlanRequested)
		if err != nil {
			return err
		}
		pl.Items, pl.Note = items, note
		if len(items) == 0 {
			pl.Status = payout.PlanEmpty
			if err := db.saveOfflinePlan(ctx, tx, now, pl); err != nil {
				return err
			}
			return db.appendEventTx(ctx, tx, now, pl.ID, payout.EventOfflinePlanOpened, pl)
		}
		ps, err := db.planPayouts(ctx, tx, pl, items, payout.StatusQueued)
		if err != nil {
			return err
		}
		for _, it := range items {
			p := ps[it.PayoutID]
			if err := db.allocateNonce(ctx, tx, pl.ChainID, pl.Wallet, it.Nonce, p.ID); err != nil {
				return err
			}
			p.Status, p.Reason, p.ReasonDetail = payout.StatusSigningOffline, "", ""
			if err := db.save(ctx, tx, now, p); err != nil {
				return err
			}
		}
		pl.Status = payout.PlanOpen
		if err := db.saveOfflinePlan(ctx, tx, now, pl); err != nil {
			return err
		}
		return db.appendEventTx(ctx, tx, now, pl.ID, payout.EventOfflinePlanOpened, pl)
	})
}

// SignOfflinePlan stores the signed transactions of an open plan (items
// with Signed and TxHash set, checked by the caller with MatchSigned) and
// marks it signed, with its audit entry. It returns
// payout.ErrOfflinePlanState unless the plan is open.
func (db *DB) SignOfflinePlan(ctx context.Context, id, actor string, signed []payout.OfflineItem) (*payout.OfflinePlan, error) {
	var pl *payout.OfflinePlan
	err := db.withTx(ctx, "sign_offline_plan", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		var err error
		if pl, err = db.lockOfflinePlan(ctx, tx, id, payout.PlanOpen); err != nil {
			return err
		}
		if len(signed) != len(pl.Items) {
			return fmt.Errorf("store: offline plan %s has %d transactions, %d signed given", id, len(pl.Items), len(signed))
		}
		for i, it := range signed {
			if it.PayoutID != pl.Items[i].PayoutID || it.Nonce != pl.Items[i].Nonce || it.Digest != pl.Items[i].Digest ||
				len(it.Signed) == 0 || it.TxHash == nil {
				return fmt.Errorf("store: offline plan %s: signed item %d does not match the plan", id, i)
			}
		}
		pl.Items, pl.Status, pl.Note = signed, payout.PlanSigned, ""
		if err := db.saveOfflinePlan(ctx, tx, now, pl); err != nil {
			return err
		}
		hashes := make([]string, len(signed))
		for i, it := range signed {
			hashes[i] = it.TxHash.Hex()
		}
		return db.auditTx(ctx, tx, now, actor, payout.AuditOfflinePlanSign, pl.ID, map[string]any{"tx_hashes": hashes})
	})
	return pl, err
}

// SubmitOfflinePlan stores a signed plan's transactions as the first
// attempts of its payouts (at the nonces the plan reserved), moves them
// from signing_offline to submitted and marks the plan submitted, in one
// transaction.
func (db *DB) SubmitOfflinePlan(ctx context.Context, id string, attempts []*payout.Attempt) error {
	return db.withTx(ctx, "submit_offline_plan", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		pl, err := db.lockOfflinePlan(ctx, tx, id, payout.PlanSigned)
		if err != nil {
			return err
		}
		if len(attempts) != len(pl.Items) {
			return fmt.Errorf("store: offline plan %s has %d transactions, %d attempts given", id, len(pl.Items), len(attempts))
		}
		ps, err := db.planPayouts(ctx, tx, pl, pl.Items, payout.StatusSigningOffline)
		if err != nil {
			return err
		}
		for i, a := range attempts {
			it := pl.Items[i]
			if err := checkAttempt(a); err != nil {
				return fmt.Errorf("store: submit offline plan: %w", err)
			}
			if a.PayoutID != it.PayoutID || a.Nonce != it.Nonce || it.TxHash == nil || a.TxHash != *it.TxHash || a.Chunk != nil {
				return fmt.Errorf("store: offline plan %s: attempt %d is not its signed transaction", id, i)
			}
			// The nonce was reserved for this payout when the plan opened:
			// free it so that submitOne allocates it again, to the same payout.
			if err := db.freeReservedNonce(ctx, tx, pl, it); err != nil {
				return err
			}
			if err := db.submitOne(ctx, tx, now, ps[a.PayoutID], a); err != nil {
				return err
			}
		}
		pl.Status = payout.PlanSubmitted
		if err := db.saveOfflinePlan(ctx, tx, now, pl); err != nil {
			return err
		}
		return db.appendEventTx(ctx, tx, now, pl.ID, payout.EventOfflinePlanSubmitted, pl)
	})
}

// freeReservedNonce frees the nonce plan pl reserved for item it's payout.
func (db *DB) freeReservedNonce(ctx context.Context, tx *sql.Tx, pl *payout.OfflinePlan, it payout.OfflineItem) error {
	_, err := db.execTx(ctx, tx, db.q(`DELETE FROM nonces WHERE chain_id = ? AND sender = ? AND nonce = ? AND payout_id = ?`),
		int64(pl.ChainID), addrText(pl.Wallet), int64(it.Nonce), it.PayoutID)
	return db.wrap("free reserved nonce", err)
}

// RequestOfflineVoid asks the wallet's sender to void an open or signed
// plan, with its audit entry; the sender voids it (EndOfflineVoid) only
// if the chain has used none of its nonces.
func (db *DB) RequestOfflineVoid(ctx context.Context, id, actor string) (*payout.OfflinePlan, error) {
	var pl *payout.OfflinePlan
	err := db.withTx(ctx, "request_offline_void", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		var err error
		if pl, err = db.lockOfflinePlan(ctx, tx, id, payout.PlanOpen, payout.PlanSigned, payout.PlanVoidRequested); err != nil {
			return err
		}
		if pl.Status == payout.PlanVoidRequested {
			return nil
		}
		pl.Status, pl.Note = payout.PlanVoidRequested, ""
		if err := db.saveOfflinePlan(ctx, tx, now, pl); err != nil {
			return err
		}
		return db.auditTx(ctx, tx, now, actor, payout.AuditOfflinePlanVoid, pl.ID, map[string]any{"wallet": pl.Wallet.Hex()})
	})
	return pl, err
}

// EndOfflineVoid ends a void request. With refused empty the plan is
// voided: its reserved nonces are freed and its payouts go back to the
// queue. Otherwise the plan goes back to signed (if its signed file was
// accepted) or open, with refused as its note.
func (db *DB) EndOfflineVoid(ctx context.Context, id, refused string) error {
	return db.withTx(ctx, "end_offline_void", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		pl, err := db.lockOfflinePlan(ctx, tx, id, payout.PlanVoidRequested)
		if err != nil {
			return err
		}
		if refused != "" {
			pl.Status, pl.Note = payout.PlanOpen, refused
			if len(pl.Items) > 0 && len(pl.Items[0].Signed) > 0 {
				pl.Status = payout.PlanSigned
			}
			return db.saveOfflinePlan(ctx, tx, now, pl)
		}
		ps, err := db.planPayouts(ctx, tx, pl, pl.Items, payout.StatusSigningOffline)
		if err != nil {
			return err
		}
		for _, it := range pl.Items {
			if err := db.freeReservedNonce(ctx, tx, pl, it); err != nil {
				return err
			}
			p := ps[it.PayoutID]
			p.Status = payout.StatusQueued
			if err := db.save(ctx, tx, now, p); err != nil {
				return err
			}
		}
		pl.Status, pl.Note = payout.PlanVoided, "voided: the chain used none of its nonces"
		if err := db.saveOfflinePlan(ctx, tx, now, pl); err != nil {
			return err
		}
		return db.appendEventTx(ctx, tx, now, pl.ID, payout.EventOfflinePlanVoided, pl)
	})
}

var _ payout.OfflinePlanStore = (*DB)(nil)

// ActiveOfflinePlans returns every active plan, oldest first (sluice
// doctor: a wallet with one signs nothing new).
func (db *DB) ActiveOfflinePlans(ctx context.Context) (_ []*payout.OfflinePlan, err error) {
	defer db.track("active_offline_plans")(&err)
	rows, err := db.read.QueryContext(ctx, `SELECT `+offlinePlanCols+` FROM offline_plans
		WHERE status IN ('requested', 'open', 'signed', 'void_requested') ORDER BY created_at, id`)
	if err != nil {
		return nil, db.wrap("active offline plans", err)
	}
	pls, err := collect(rows, scanOfflinePlan)
	return pls, db.wrap("active offline plans", err)
}
