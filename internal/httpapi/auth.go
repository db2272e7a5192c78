package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// APIKey is a key that may call the API. Only the SHA-256 of the secret is
// kept, so a leaked config or database does not leak usable keys.
type APIKey struct {
	ID   string   // stable, non-secret id; idempotency keys are scoped by it
	Name string   // a human label, e.g. "backoffice"
	Hash [32]byte // HashAPIKey(secret)
	// Scopes are what the key may do; configured keys hold ScopeAdmin
	// unless the config names others.
	Scopes []Scope
	// Version is the API version the key's requests use unless they send
	// Sluice-Version. Default: the current version.
	Version string
	// RequireSigning makes every request carry a valid Sluice-Signature,
	// checked with SigningKey (see SigningKey). Keys from the API only.
	RequireSigning bool
	SigningKey     []byte
	// RateLimit overrides Config.RateLimit when it is not zero.
	RateLimit payout.RateLimit
	// Labels of a key from the config file (policy rules read them as
	// api_key_labels); a database key's are stored with it.
	Labels map[string]string

	revoked bool // a database key revoked since it was read
}

// Scope is re-exported so callers of this package need not import payout.
type Scope = payout.Scope

// HashAPIKey returns the SHA-256 of a secret API key, as APIKey.Hash holds it.
func HashAPIKey(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// KeyCacheTTL is how long an instance trusts what it read of a database
// key. A key revoked through one instance stops working there at once and
// on the others within this time.
const KeyCacheTTL = 5 * time.Second

// touchEvery is how often a key's last_used_at is written, at most.
const touchEvery = time.Minute

// maxCachedKeys bounds the key cache; it is emptied when full.
const maxCachedKeys = 10_000

// keyCache remembers database keys by hash for KeyCacheTTL, and when each
// key's last use was last written.
type keyCache struct {
	mu      sync.Mutex
	byHash  map[[32]byte]cachedKey
	touched map[string]time.Time // key id → last written last_used_at
}

type cachedKey struct {
	key  *APIKey // nil: no such key
	read time.Time
}

// auth lets a request through only when, in this order: it carries a valid
// "Authorization: Bearer <key>" (401 unauthorized), the key's rate limit
// allows it (429 rate_limited), its Sluice-Version is known (400
// invalid_api_version), its signature is valid when the key requires one
// (401 signature_*), and the key holds scope need (403 forbidden; see
// payout.Allows). Every answer names the version used in Sluice-Version.
func (s *Server) auth(need payout.Scope, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(VersionHeader, s.versions[len(s.versions)-1].Name)
		if v := r.Header.Get(VersionHeader); versionIndex(s.versions, v) >= 0 {
			w.Header().Set(VersionHeader, v)
		}
		key, vw, err := s.authenticate(w, r, need)
		if err != nil {
			s.authFailed(w, r, key, err)
			return
		}
		s.touch(r.Context(), key)
		if vw == nil {
			next(w, r)
			return
		}
		next(vw, r)
		vw.finish(r.Pattern)
	}
}

func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, need payout.Scope) (*APIKey, *versionWriter, error) {
	ctx := r.Context()
	h := r.Header.Get("Authorization")
	scheme, secret, _ := strings.Cut(h, " ")
	secret = strings.TrimSpace(secret)
	if h == "" || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil, nil, errNoKey
	}
	key, err := s.lookupKey(ctx, HashAPIKey(secret))
	switch {
	case err != nil:
		return nil, nil, err
	case key == nil:
		return nil, nil, errBadKey
	case key.revoked:
		return nil, nil, errRevokedKey
	}
	reqInfoFrom(ctx).key = key
	if err := s.limits.allow(w, key, s.now()); err != nil {
		return key, nil, err
	}
	vi, err := s.chooseVersion(r, key.Version)
	if err != nil {
		return key, nil, err
	}
	w.Header().Set(VersionHeader, s.versions[vi].Name)
	if key.RequireSigning {
		if err := s.verifySignature(ctx, r, key); err != nil {
			return key, nil, err
		}
	}
	if !payout.Allows(key.Scopes, need) {
		return key, nil, newError(payout.CodeForbidden, "this API key lacks the %s scope", need)
	}
	return key, s.downgrading(w, vi), nil
}

var (
	errNoKey      = newError(payout.CodeUnauthorized, "send the API key as Authorization: Bearer <key>")
	errBadKey     = newError(payout.CodeUnauthorized, "the API key is not valid")
	errRevokedKey = newError(payout.CodeUnauthorized, "the API key was revoked")
)

// authFailed answers a refused request, counts it by code and logs it
// with the key's id (never its secret, hash or signature).
func (s *Server) authFailed(w http.ResponseWriter, r *http.Request, key *APIKey, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		s.authMetrics.failures.WithLabelValues(string(ae.code)).Inc()
		if ae.code == payout.CodeRateLimited {
			s.authMetrics.rateLimited.Inc()
		}
		attrs := []any{"request_id", reqInfoFrom(r.Context()).id, "code", string(ae.code), "method", r.Method, "path", r.URL.Path}
		if key != nil {
			attrs = append(attrs, "api_key_id", key.ID)
		}
		level := slog.LevelInfo
		if ae.code == payout.CodeRateLimited { // a flood of these must not flood the logs
			level = slog.LevelDebug
		}
		s.log.Log(r.Context(), level, "request refused", attrs...)
		if ae.code == payout.CodeUnauthorized || ae.code == payout.CodeSignatureMissing || ae.code == payout.CodeSignatureMalformed ||
			ae.code == payout.CodeSignatureExpired || ae.code == payout.CodeSignatureInvalid || ae.code == payout.CodeSignatureReplayed {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
		}
	}
	s.fail(w, r, err)
}

// lookupKey finds the key of a hash: a configured key (all compared in
// constant time), else a database key, cached for KeyCacheTTL. It returns
// nil when there is none.
func (s *Server) lookupKey(ctx context.Context, hash [32]byte) (*APIKey, error) {
	if k := s.matchKey(hash); k != nil {
		return k, nil
	}
	if s.apiKeys == nil {
		return nil, nil
	}
	now := s.now()
	s.cache.mu.Lock()
	c, ok := s.cache.byHash[hash]
	s.cache.mu.Unlock()
	if ok && now.Sub(c.read) < KeyCacheTTL && c.key != nil {
		return c.key, nil
	}
	dk, err := s.apiKeys.APIKeyByHash(ctx, hash)
	if errors.Is(err, payout.ErrNotFound) {
		return nil, nil // not cached: a key created on another instance works at once
	}
	if err != nil {
		return nil, err
	}
	k := keyFromDB(dk)
	s.cache.mu.Lock()
	if len(s.cache.byHash) >= maxCachedKeys {
		clear(s.cache.byHash)
	}
	s.cache.byHash[hash] = cachedKey{key: k, read: now}
	s.cache.mu.Unlock()
	return k, nil
}

func keyFromDB(dk *payout.APIKey) *APIKey {
	return &APIKey{ID: dk.ID, Name: dk.Name, Hash: dk.Hash, Scopes: dk.Scopes, Version: dk.Version,
		RequireSigning: dk.RequireSigning, SigningKey: dk.SigningKey, RateLimit: dk.RateLimit, revoked: dk.RevokedAt != nil}
}

// forgetKey drops a database key from the cache, so that revoking it
// through this instance takes effect at once.
func (s *Server) forgetKey(id string) {
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	for h, c := range s.cache.byHash {
		if c.key != nil && c.key.ID == id {
			delete(s.cache.byHash, h)
		}
	}
}

// touch writes a database key's last use, at most once a minute per key
// and instance. A failure is logged, not answered: the request is fine.
func (s *Server) touch(ctx context.Context, key *APIKey) {
	if _, configured := s.configKeys[key.ID]; s.apiKeys == nil || configured {
		return
	}
	now := s.now()
	s.cache.mu.Lock()
	last, ok := s.cache.touched[key.ID]
	due := !ok || now.Sub(last) >= touchEvery
	if due {
		s.cache.touched[key.ID] = now
	}
	s.cache.mu.Unlock()
	if !due {
		return
	}
	if err := s.apiKeys.TouchAPIKey(ctx, key.ID, now); err != nil {
		s.log.WarnContext(ctx, "recording an API key's last use failed", "api_key_id", key.ID, "err", err)
	}
}

func (s *Server) matchKey(hash [32]byte) *APIKey {
	var found *APIKey
	for i := range s.keys {
		if subtle.ConstantTimeCompare(hash[:], s.keys[i].Hash[:]) == 1 {
			found = &s.keys[i]
		}
	}
	return found
}
