package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/sluicepay/sluice/internal/payout"
)

// APIKey is a key that may call the API. Only the SHA-256 of the secret is
// kept, so a leaked config or database does not leak usable keys.
type APIKey struct {
	ID   string   // stable, non-secret id; idempotency keys are scoped by it
	Name string   // a human label, e.g. "backoffice"
	Hash [32]byte // HashAPIKey(secret)
	// Scopes are what the key may do; configured keys hold ScopeAdmin.
	Scopes []Scope
}

// Scope is re-exported so callers of this package need not import payout.
type Scope = payout.Scope

// HashAPIKey returns the SHA-256 of a secret API key, as APIKey.Hash holds it.
func HashAPIKey(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// auth lets a request through only with a valid "Authorization: Bearer
// <key>" header whose key holds scope need (see payout.Allows). Every configured key is compared, in constant time, so the
// time taken says nothing about which key or how much of it matched.
func (s *Server) auth(need payout.Scope, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		scheme, secret, _ := strings.Cut(h, " ")
		secret = strings.TrimSpace(secret)
		if h == "" || !strings.EqualFold(scheme, "Bearer") || secret == "" {
			s.unauthorized(w, r, "send the API key as Authorization: Bearer <key>")
			return
		}
		key := s.matchKey(HashAPIKey(secret))
		if key == nil {
			s.unauthorized(w, r, "the API key is not valid")
			return
		}
		reqInfoFrom(r.Context()).key = key
		if !payout.Allows(key.Scopes, need) {
			s.fail(w, r, newError(payout.CodeForbidden, "this API key lacks the %s scope", need))
			return
		}
		next(w, r)
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

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, detail string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
	s.fail(w, r, &apiError{code: payout.CodeUnauthorized, detail: detail})
}
