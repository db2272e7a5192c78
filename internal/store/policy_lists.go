package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

func scanList(s scanner) (*payout.List, error) {
	var (
		l                payout.List
		kind             string
		created, updated dbTime
	)
	if err := s.Scan(&l.Name, &kind, &l.Sanctions, &created, &updated, &l.Entries); err != nil {
		return nil, err
	}
	l.Object, l.Kind, l.CreatedAt, l.UpdatedAt = "list", payout.ListKind(kind), created.t, updated.t
	return &l, nil
}

// CreateList stores an empty list with its audit entry.
func (db *DB) CreateList(ctx context.Context, l *payout.List, actor string) error {
	if l.Kind != payout.ListDeny && l.Kind != payout.ListAllow {
		return &payout.FieldError{Field: "kind", Code: payout.CodeInvalidList, Message: "kind must be deny or allow"}
	}
	if l.Sanctions && l.Kind != payout.ListDeny {
		return &payout.FieldError{Field: "sanctions", Code: payout.CodeInvalidList, Message: "only a deny list can be a sanctions list"}
	}
	return db.withTx(ctx, "create_list", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO lists (name, kind, sanctions, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`),
			l.Name, string(l.Kind), l.Sanctions, db.d.time(now), db.d.time(now))
		if err = db.d.interpret(err); errors.Is(err, errUnique) {
			return payout.ErrListExists
		}
		if err != nil {
			return db.wrap("create list", err)
		}
		l.Object, l.CreatedAt, l.UpdatedAt, l.Entries = "list", now, now, 0
		return db.auditTx(ctx, tx, now, actor, payout.AuditListCreate, "list_"+l.Name, l)
	})
}

// auditTx appends an audit entry with details in tx.
func (db *DB) auditTx(ctx context.Context, tx *sql.Tx, now time.Time, actor, action, object string, details any) error {
	e, err := payout.NewAuditEntry(actor, action, object, details)
	if err != nil {
		return err
	}
	return db.appendAuditTx(ctx, tx, now, e)
}

// Lists returns every list by name.
func (db *DB) Lists(ctx context.Context) (_ []*payout.List, err error) {
	defer db.track("lists")(&err)
	rows, err := db.read.QueryContext(ctx, `SELECT `+listCols+` FROM lists l ORDER BY l.name`)
	if err != nil {
		return nil, db.wrap("lists", err)
	}
	ls, err := collect(rows, scanList)
	return ls, db.wrap("lists", err)
}

// GetList returns a list or payout.ErrNotFound.
func (db *DB) GetList(ctx context.Context, name string) (_ *payout.List, err error) {
	defer db.track("get_list")(&err)
	l, err := scanList(db.read.QueryRowContext(ctx, db.q(`SELECT `+listCols+` FROM lists l WHERE l.name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNotFound
	}
	return l, db.wrap("get list", err)
}

// AddListEntries adds entries; those already on the list stay as they are.
func (db *DB) AddListEntries(ctx context.Context, name string, entries []payout.ListEntry, actor string) (*payout.ListChange, error) {
	return db.changeList(ctx, name, entries, false, actor)
}

// ReplaceListEntries makes the list hold exactly entries.
func (db *DB) ReplaceListEntries(ctx context.Context, name string, entries []payout.ListEntry, actor string) (*payout.ListChange, error) {
	return db.changeList(ctx, name, entries, true, actor)
}

func (db *DB) changeList(ctx context.Context, name string, entries []payout.ListEntry, replace bool, actor string) (*payout.ListChange, error) {
	var ch *payout.ListChange
	err := db.withTx(ctx, "change_list", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		var kind string
		err := tx.QueryRowContext(ctx, db.q(`SELECT kind FROM lists WHERE name = ?`+db.d.forUpdate), name).Scan(&kind)
		if errors.Is(err, sql.ErrNoRows) {
			return payout.ErrNotFound
		}
		if err != nil {
			return db.wrap("read list", err)
		}
		have, err := db.listAddresses(ctx, tx, name)
		if err != nil {
			return err
		}
		ch = &payout.ListChange{Added: []common.Address{}, Removed: []common.Address{}}
		want := make(map[common.Address]bool, len(entries))
		for _, e := range entries {
			if want[e.Address] {
				continue
			}
			want[e.Address] = true
			if have[e.Address] {
				continue
			}
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO list_entries (list_name, address, note, added_at) VALUES (?, ?, ?, ?)`),
				name, addrText(e.Address), e.Note, db.d.time(now)); err != nil {
				return db.wrap("add list entry", err)
			}
			ch.Added = append(ch.Added, e.Address)
		}
		if replace {
			for a := range have {
				if want[a] {
					continue
				}
				if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM list_entries WHERE list_name = ? AND address = ?`), name, addrText(a)); err != nil {
					return db.wrap("remove list entry", err)
				}
				ch.Removed = append(ch.Removed, a)
			}
		}
		sortAddrs(ch.Added)
		sortAddrs(ch.Removed)
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE lists SET updated_at = ? WHERE name = ?`), db.d.time(now), name); err != nil {
			return db.wrap("touch list", err)
		}
		action := payout.AuditListEntries
		if replace {
			action = payout.AuditListReplaced
		}
		return db.auditTx(ctx, tx, now, actor, action, "list_"+name, map[string]any{"kind": kind, "added": ch.Added, "removed": ch.Removed})
	})
	return ch, err
}

func (db *DB) listAddresses(ctx context.Context, tx *sql.Tx, name string) (map[common.Address]bool, error) {
	rows, err := tx.QueryContext(ctx, db.q(`SELECT address FROM list_entries WHERE list_name = ?`), name)
	if err != nil {
		return nil, db.wrap("list entries", err)
	}
	defer rows.Close()
	have := map[common.Address]bool{}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, db.wrap("scan list entry", err)
		}
		have[common.HexToAddress(a)] = true
	}
	return have, db.wrap("list entries", rows.Err())
}

func sortAddrs(as []common.Address) {
	sort.Slice(as, func(i, j int) bool { return as[i].Cmp(as[j]) < 0 })
}

// ListsHolding returns the lists that hold addr.
func (db *DB) ListsHolding(ctx context.Context, addr common.Address) (_ []payout.ListHit, err error) {
	defer db.track("lists_holding")(&err)
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT l.name, l.kind, l.sanctions FROM list_entries e JOIN lists l ON l.name = e.list_name
		WHERE e.address = ? ORDER BY l.name`), addrText(addr))
	if err != nil {
		return nil, db.wrap("lists holding", err)
	}
	defer rows.Close()
	var hits []payout.ListHit
	for rows.Next() {
		var (
			h    payout.ListHit
			kind string
		)
		if err := rows.Scan(&h.Name, &kind, &h.Sanctions); err != nil {
			return nil, db.wrap("scan list hit", err)
		}
		h.Kind = payout.ListKind(kind)
		hits = append(hits, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: lists holding: %w", err)
	}
	return hits, nil
}
