package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

var _ payout.APIKeyStore = (*DB)(nil)

// apiKeyQueries are the statements of API keys and seen signatures. They
// are written once with ? placeholders and numbered for PostgreSQL.
type apiKeyQueries struct {
	insert, byHash, byID, list, listAfter, revoke, touch string
	insertSig, deleteSigs                                string
	setLabels                                            string
}

const apiKeyCols = `id, name, prefix, hash, scopes, api_version, require_signing, signing_key,
	rate_per_second, rate_burst, created_at, last_used_at, revoked_at`

var apiKeySQL = map[string]*apiKeyQueries{
	sqliteDialect.name:   buildAPIKeyQueries(sqliteDialect),
	postgresDialect.name: buildAPIKeyQueries(postgresDialect),
}

func buildAPIKeyQueries(d *dialect) *apiKeyQueries {
	number := func(q string) string {
		var b strings.Builder
		n := 0
		for _, c := range q {
			if c == '?' {
				n++
				b.WriteString(d.bind(n))
				continue
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	return &apiKeyQueries{
		insert: number(`INSERT INTO api_keys (` + apiKeyCols + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		byHash:    number(`SELECT ` + apiKeyCols + ` FROM api_keys WHERE hash = ?`),
		byID:      number(`SELECT ` + apiKeyCols + ` FROM api_keys WHERE id = ?`),
		list:      number(`SELECT ` + apiKeyCols + ` FROM api_keys ORDER BY id DESC LIMIT ?`),
		listAfter: number(`SELECT ` + apiKeyCols + ` FROM api_keys WHERE id < ? ORDER BY id DESC LIMIT ?`),
		revoke:    number(`UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`),
		touch: number(`UPDATE api_keys SET last_used_at = ? WHERE id = ?
			AND (last_used_at IS NULL OR last_used_at < ?)`),
		insertSig: number(`INSERT INTO api_signatures (key_id, signature, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (key_id, signature) DO NOTHING`),
		deleteSigs: number(`DELETE FROM api_signatures WHERE expires_at < ?`),
		setLabels:  number(`UPDATE api_keys SET labels = ? WHERE id = ?`),
	}
}

func (db *DB) akq() *apiKeyQueries { return apiKeySQL[db.d.name] }

// CreateAPIKey stores a new key. A key whose hash or id exists already is
// an error: secrets are random, so that would be a bug.
func (db *DB) CreateAPIKey(ctx context.Context, k *payout.APIKey) error {
	return db.CreateLabeledAPIKey(ctx, k, nil)
}

// CreateLabeledAPIKey stores a new key with its labels (which policy rules
// read as api_key_labels), in one transaction. Labels are set once, when
// the key is made.
func (db *DB) CreateLabeledAPIKey(ctx context.Context, k *payout.APIKey, labels map[string]string) error {
	if k.ID == "" || k.Hash == ([32]byte{}) || len(k.Scopes) == 0 || k.Version == "" {
		return errors.New("store: create api key: needs an id, a hash, scopes and a version")
	}
	k.CreatedAt = k.CreatedAt.UTC().Truncate(time.Microsecond)
	scopes := make([]string, len(k.Scopes))
	for i, s := range k.Scopes {
		scopes[i] = string(s)
	}
	var signing any
	if k.SigningKey != nil {
		sealed, err := db.seal(apiKeyAAD(k.ID), string(k.SigningKey))
		if err != nil {
			return err
		}
		signing = []byte(sealed)
	}
	var lj []byte
	if len(labels) > 0 {
		var err error
		if lj, err = json.Marshal(labels); err != nil {
			return fmt.Errorf("store: create api key: labels: %w", err)
		}
	}
	return db.withTx(ctx, "create_api_key", func(ctx context.Context, tx *sql.Tx, _ time.Time) error {
		_, err := tx.ExecContext(ctx, db.akq().insert, k.ID, k.Name, k.Prefix, k.Hash[:], strings.Join(scopes, ","),
			k.Version, k.RequireSigning, signing, k.RateLimit.PerSecond, k.RateLimit.Burst,
			db.d.time(k.CreatedAt), nil, nil)
		if err != nil || lj == nil {
			return db.wrap("create api key", err)
		}
		_, err = tx.ExecContext(ctx, db.akq().setLabels, string(lj), k.ID)
		return db.wrap("create api key labels", err)
	})
}

// APIKeyLabels returns the labels of the keys ids, by key id; a key
// without labels, or unknown, has none in the map.
func (db *DB) APIKeyLabels(ctx context.Context, ids ...string) (_ map[string]map[string]string, err error) {
	defer db.track("api_key_labels")(&err)
	out := map[string]map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT id, labels FROM api_keys WHERE labels <> '{}' AND id IN (`+
		strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")+`)`), args...)
	if err != nil {
		return nil, db.wrap("api key labels", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, lj string
		if err := rows.Scan(&id, &lj); err != nil {
			return nil, db.wrap("api key labels", err)
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(lj), &m); err != nil {
			return nil, fmt.Errorf("store: api key %s: labels: %w", id, err)
		}
		if len(m) > 0 {
			out[id] = m
		}
	}
	return out, db.wrap("api key labels", rows.Err())
}

// APIKeyByHash returns the key whose secret hashes to hash, or
// payout.ErrNotFound.
func (db *DB) APIKeyByHash(ctx context.Context, hash [32]byte) (_ *payout.APIKey, err error) {
	defer db.track("api_key_by_hash")(&err)
	k, err := db.scanAPIKey(db.queryRowRead(ctx, db.akq().byHash, hash[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, payout.ErrNotFound
	}
	return k, db.wrap("api key by hash", err)
}

// ListAPIKeys returns keys newest first and whether more exist.
func (db *DB) ListAPIKeys(ctx context.Context, f payout.APIKeyFilter) (_ []*payout.APIKey, more bool, err error) {
	defer db.track("list_api_keys")(&err)
	if f.Limit < 1 || f.Limit > 100 {
		return nil, false, fmt.Errorf("store: list api keys: limit %d is not 1-100", f.Limit)
	}
	var rows *sql.Rows
	if f.StartingAfter == "" {
		rows, err = db.read.QueryContext(ctx, db.akq().list, f.Limit+1)
	} else {
		rows, err = db.read.QueryContext(ctx, db.akq().listAfter, f.StartingAfter, f.Limit+1)
	}
	if err != nil {
		return nil, false, db.wrap("list api keys", err)
	}
	defer rows.Close()
	var out []*payout.APIKey
	for rows.Next() {
		k, err := db.scanAPIKey(rows)
		if err != nil {
			return nil, false, db.wrap("list api keys", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, false, db.wrap("list api keys", err)
	}
	if len(out) > f.Limit {
		return out[:f.Limit], true, nil
	}
	return out, false, nil
}

// RevokeAPIKey revokes a key at the store's clock and returns it; a key
// revoked before keeps its first revocation time.
func (db *DB) RevokeAPIKey(ctx context.Context, id string) (*payout.APIKey, error) {
	var k *payout.APIKey
	err := db.withTx(ctx, "revoke_api_key", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		if _, err := tx.ExecContext(ctx, db.akq().revoke, db.d.time(now), id); err != nil {
			return db.wrap("revoke api key", err)
		}
		var err error
		k, err = db.scanAPIKey(tx.QueryRowContext(ctx, db.akq().byID, id))
		if errors.Is(err, sql.ErrNoRows) {
			return payout.ErrNotFound
		}
		return db.wrap("revoke api key", err)
	})
	return k, err
}

// TouchAPIKey sets the key's last use to at, unless it is already later.
func (db *DB) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	t := db.d.time(at.UTC().Truncate(time.Microsecond))
	return db.withTx(ctx, "touch_api_key", func(ctx context.Context, tx *sql.Tx, _ time.Time) error {
		_, err := tx.ExecContext(ctx, db.akq().touch, t, id, t)
		return db.wrap("touch api key", err)
	})
}

// RecordSignature remembers sig for keyID until expires, or returns
// payout.ErrSignatureSeen when it is already remembered. The primary key
// decides, so two instances given the same signature at once cannot both
// accept it.
func (db *DB) RecordSignature(ctx context.Context, keyID string, sig []byte, expires time.Time) error {
	return db.withTx(ctx, "record_signature", func(ctx context.Context, tx *sql.Tx, _ time.Time) error {
		res, err := tx.ExecContext(ctx, db.akq().insertSig, keyID, sig, db.d.time(expires.UTC().Truncate(time.Microsecond)))
		if err != nil {
			return db.wrap("record signature", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return db.wrap("record signature", err)
		}
		if n == 0 {
			return payout.ErrSignatureSeen
		}
		return nil
	})
}

// DeleteSignaturesBefore forgets signatures that expired before t.
func (db *DB) DeleteSignaturesBefore(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	err := db.withTx(ctx, "delete_signatures", func(ctx context.Context, tx *sql.Tx, _ time.Time) error {
		res, err := tx.ExecContext(ctx, db.akq().deleteSigs, db.d.time(t.UTC().Truncate(time.Microsecond)))
		if err != nil {
			return db.wrap("delete signatures", err)
		}
		n, err = res.RowsAffected()
		return db.wrap("delete signatures", err)
	})
	return n, err
}

// nullTime scans a nullable time column of either dialect.
type nullTime struct{ t *time.Time }

func (n *nullTime) Scan(v any) error {
	if v == nil {
		n.t = nil
		return nil
	}
	var d dbTime
	if err := d.Scan(v); err != nil {
		return err
	}
	n.t = &d.t
	return nil
}

func (db *DB) scanAPIKey(s scanner) (*payout.APIKey, error) {
	var (
		k               payout.APIKey
		hash, signing   []byte
		scopes          string
		created         dbTime
		lastUsed, revok nullTime
	)
	err := s.Scan(&k.ID, &k.Name, &k.Prefix, &hash, &scopes, &k.Version, &k.RequireSigning, &signing,
		&k.RateLimit.PerSecond, &k.RateLimit.Burst, &created, &lastUsed, &revok)
	if err != nil {
		return nil, err
	}
	if len(hash) != len(k.Hash) {
		return nil, fmt.Errorf("api key %s: hash of %d bytes", k.ID, len(hash))
	}
	copy(k.Hash[:], hash)
	for _, s := range strings.Split(scopes, ",") {
		k.Scopes = append(k.Scopes, payout.Scope(s))
	}
	if len(signing) > 0 {
		plain, err := db.unseal(apiKeyAAD(k.ID), string(signing))
		if err != nil {
			return nil, err
		}
		k.SigningKey = []byte(plain)
	}
	k.CreatedAt, k.LastUsedAt, k.RevokedAt = created.t, lastUsed.t, revok.t
	return &k, nil
}
