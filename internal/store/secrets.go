package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Webhook signing secrets must be readable again (each delivery is signed
// with them), and so must the HMAC keys of API keys that sign their
// requests, so they cannot be hashed like API keys' secrets: with
// Options.SecretsKey set they are sealed with AES-256-GCM before they are
// written, bound to their row and column (a sealed secret copied to
// another endpoint does not open), and opened when read. A reader without
// the key (sluice doctor) sees the sealed form, never the secret.

// sealedPrefix starts a sealed value: "enc:v1:" + base64(nonce || ciphertext).
const sealedPrefix = "enc:v1:"

// ErrSecretsKey means a sealed secret does not open with this key: the
// engine was started with another secrets key than the one that sealed it.
var ErrSecretsKey = errors.New("a webhook secret in the database was sealed with another secrets key")

// newSealer makes the AEAD of a 32-byte key (nil without a key).
func newSealer(key []byte) (cipher.AEAD, error) {
	if key == nil {
		return nil, nil
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("store: the secrets key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal returns plain sealed for the place named by aad; without a key, or
// for an empty or already sealed value, it returns it as it is.
func (db *DB) seal(aad, plain string) (string, error) {
	if db.sealer == nil || plain == "" || strings.HasPrefix(plain, sealedPrefix) {
		return plain, nil
	}
	nonce := make([]byte, db.sealer.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("store: seal: %w", err)
	}
	out := db.sealer.Seal(nonce, nonce, []byte(plain), []byte(aad))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// unseal opens a sealed value; a plain one (written before the key was
// set) is returned as it is, and so is a sealed one when there is no key.
func (db *DB) unseal(aad, stored string) (string, error) {
	b64, sealed := strings.CutPrefix(stored, sealedPrefix)
	if !sealed || db.sealer == nil {
		return stored, nil
	}
	raw, err := base64.RawStdEncoding.DecodeString(b64)
	n := db.sealer.NonceSize()
	if err != nil || len(raw) < n {
		return "", fmt.Errorf("store: a sealed secret of %s is malformed", aad)
	}
	plain, err := db.sealer.Open(nil, raw[:n], raw[n:], []byte(aad))
	if err != nil {
		return "", fmt.Errorf("%w (%s)", ErrSecretsKey, aad)
	}
	return string(plain), nil
}

// apiKeyAAD binds an API key's request-signing key to its row.
func apiKeyAAD(id string) string { return "api_keys/" + id + "/signing_key" }

// endpointAAD binds a webhook endpoint's secret to its row and column.
func endpointAAD(id, column string) string { return "webhook_endpoints/" + id + "/" + column }

// SealSecrets checks, at start, that every sealed webhook secret opens
// with the key (ErrSecretsKey otherwise: refuse to sign deliveries with
// the wrong secret), and seals those still stored in the clear. It says
// how many it sealed. Without a key it does nothing.
func (db *DB) SealSecrets(ctx context.Context) (sealed int, err error) {
	if db.sealer == nil {
		return 0, nil
	}
	err = db.withTx(ctx, "seal_secrets", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, secret, previous_secret FROM webhook_endpoints`)
		if err != nil {
			return db.wrap("read webhook secrets", err)
		}
		type row struct{ id, secret, previous string }
		var all []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.secret, &r.previous); err != nil {
				rows.Close()
				return db.wrap("read webhook secrets", err)
			}
			all = append(all, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return db.wrap("read webhook secrets", err)
		}
		for _, r := range all {
			changed := false
			for _, c := range []struct {
				column string
				value  *string
			}{{"secret", &r.secret}, {"previous_secret", &r.previous}} {
				if strings.HasPrefix(*c.value, sealedPrefix) {
					if _, err := db.unseal(endpointAAD(r.id, c.column), *c.value); err != nil {
						return err
					}
					continue
				}
				if *c.value == "" {
					continue
				}
				if *c.value, err = db.seal(endpointAAD(r.id, c.column), *c.value); err != nil {
					return err
				}
				changed = true
			}
			if changed {
				if _, err := tx.ExecContext(ctx, db.q(`UPDATE webhook_endpoints SET secret = ?, previous_secret = ? WHERE id = ?`),
					r.secret, r.previous, r.id); err != nil {
					return db.wrap("seal webhook secrets", err)
				}
				sealed++
			}
		}
		n, err := db.sealSigningKeys(ctx, tx)
		sealed += n
		return err
	})
	return sealed, err
}

// sealSigningKeys checks the sealed request-signing keys of API keys and
// seals those stored in the clear, in tx; it says how many it sealed.
func (db *DB) sealSigningKeys(ctx context.Context, tx *sql.Tx) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, signing_key FROM api_keys WHERE signing_key IS NOT NULL`)
	if err != nil {
		return 0, db.wrap("read signing keys", err)
	}
	type row struct {
		id  string
		key []byte
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.key); err != nil {
			rows.Close()
			return 0, db.wrap("read signing keys", err)
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, db.wrap("read signing keys", err)
	}
	sealed := 0
	for _, r := range all {
		if strings.HasPrefix(string(r.key), sealedPrefix) {
			if _, err := db.unseal(apiKeyAAD(r.id), string(r.key)); err != nil {
				return 0, err
			}
			continue
		}
		s, err := db.seal(apiKeyAAD(r.id), string(r.key))
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE api_keys SET signing_key = ? WHERE id = ?`), []byte(s), r.id); err != nil {
			return 0, db.wrap("seal signing key", err)
		}
		sealed++
	}
	return sealed, nil
}
