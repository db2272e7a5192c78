package payout

import (
	"context"
	"errors"
	"time"
)

// APIKey is an API key kept in the database. Only the SHA-256 of its
// secret is stored, never the secret: the secret is shown once, when the
// key is created.
type APIKey struct {
	ID     string   // "key_…", stable and not secret
	Name   string   // a human label, e.g. "backoffice"
	Prefix string   // the secret's first characters, e.g. "sk_live_AB3D", to tell keys apart in lists
	Hash   [32]byte // SHA-256 of the secret
	Scopes []Scope
	// Version is the API version (a date, e.g. "2026-11-01") the key's
	// requests use unless they send Sluice-Version.
	Version string
	// RequireSigning makes every request of the key carry a valid
	// Sluice-Signature. SigningKey is then the HMAC key the client derives
	// from its secret; it is nil otherwise.
	RequireSigning bool
	SigningKey     []byte
	// RateLimit overrides the server's default per-key rate limit when it
	// is not zero.
	RateLimit  RateLimit
	CreatedAt  time.Time
	LastUsedAt *time.Time // updated at most about once a minute
	RevokedAt  *time.Time // a revoked key authenticates nothing
}

// RateLimit is a token bucket: PerSecond tokens are added every second,
// up to Burst. The zero value means "the default".
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// APIKeyFilter pages through API keys, newest first.
type APIKeyFilter struct {
	StartingAfter string // a key id: return keys older than it
	Limit         int    // 1-100
}

// ErrSignatureSeen is returned by APIKeyStore.RecordSignature when the
// signature was recorded before: the request is a replay.
var ErrSignatureSeen = errors.New("request signature seen before")

// APIKeyStore persists API keys and the request signatures seen recently.
// The SQLite and PostgreSQL stores implement it; storetest.RunAPIKeys
// checks both.
type APIKeyStore interface {
	// CreateAPIKey stores a new key; k.CreatedAt is set by the caller.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// APIKeyByHash returns the key whose secret hashes to hash, revoked or
	// not, or ErrNotFound.
	APIKeyByHash(ctx context.Context, hash [32]byte) (*APIKey, error)
	// ListAPIKeys returns keys newest first and whether more exist.
	ListAPIKeys(ctx context.Context, f APIKeyFilter) ([]*APIKey, bool, error)
	// RevokeAPIKey revokes a key now and returns it; revoking a revoked
	// key changes nothing. It returns ErrNotFound for an unknown id.
	RevokeAPIKey(ctx context.Context, id string) (*APIKey, error)
	// TouchAPIKey sets the key's last use to at, unless it is already later.
	TouchAPIKey(ctx context.Context, id string, at time.Time) error
	// RecordSignature remembers a request signature of a key until
	// expires; it returns ErrSignatureSeen when it is already remembered.
	RecordSignature(ctx context.Context, keyID string, sig []byte, expires time.Time) error
	// DeleteSignaturesBefore forgets signatures that expired before t and
	// says how many.
	DeleteSignaturesBefore(ctx context.Context, t time.Time) (int64, error)
}
