package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// IdempotencyKeyTTL is how long idempotency records are kept at least.
const IdempotencyKeyTTL = 7 * 24 * time.Hour

// MaxIdempotencyKeyLen bounds an Idempotency-Key header.
const MaxIdempotencyKeyLen = 255

// idempotencyKey reads and checks the Idempotency-Key header.
func idempotencyKey(h http.Header) (string, error) {
	key := h.Get("Idempotency-Key")
	if key == "" {
		return "", newError(payout.CodeIdempotencyKeyMissing,
			"send an Idempotency-Key header (a unique value such as a UUID) so that a retry cannot create a second payout")
	}
	if len(key) > MaxIdempotencyKeyLen {
		return "", newError(payout.CodeIdempotencyKeyInvalid, "Idempotency-Key is %d characters long; at most %d are allowed", len(key), MaxIdempotencyKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return "", newError(payout.CodeIdempotencyKeyInvalid, "Idempotency-Key must be printable ASCII; byte %d is not", i)
		}
	}
	return key, nil
}

// fingerprint identifies a request for idempotency: method, path and body.
func fingerprint(method, path string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{' '})
	h.Write([]byte(path))
	h.Write([]byte{'\n'})
	h.Write(body)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// inflightSet holds the (scope, key) pairs being handled by this process.
type inflightSet struct {
	mu   sync.Mutex
	keys map[string]struct{}
}

// acquire claims a slot; it reports false when another request holds it.
func (f *inflightSet) acquire(slot string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, busy := f.keys[slot]; busy {
		return false
	}
	f.keys[slot] = struct{}{}
	return true
}

func (f *inflightSet) release(slot string) {
	f.mu.Lock()
	delete(f.keys, slot)
	f.mu.Unlock()
}

var errInFlight = &apiError{code: payout.CodeIdempotencyInFlight, retryAfter: "1",
	detail: "a request with this Idempotency-Key is still being handled; retry after it finishes"}

// answerRecord answers a request whose key already has a record: a replay
// when the request is the same, idempotency_key_reused otherwise.
func (s *Server) answerRecord(w http.ResponseWriter, r *http.Request, rec *payout.IdempotencyRecord, fp string) {
	if rec.Fingerprint != fp {
		s.fail(w, r, newError(payout.CodeIdempotencyMismatch,
			"this Idempotency-Key was used for a different request; use a new key for a new payout"))
		return
	}
	s.metrics.replays.Inc()
	w.Header().Set("Idempotent-Replayed", "true")
	ct := "application/json"
	if rec.ResponseStatus >= 400 {
		ct = "application/problem+json"
	}
	if rec.ResponseStatus == http.StatusCreated {
		// The replay is the same answer, so it names the payout's URL too.
		var created struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(rec.ResponseBody, &created) == nil && plausibleID(created.ID) {
			w.Header().Set("Location", "/v1/payouts/"+created.ID)
		}
	}
	writeBody(w, ct, rec.ResponseStatus, rec.ResponseBody)
}

// priorRecord looks up a key's record before a bad request is answered,
// so that a used key is answered from its record whatever the new body.
func (s *Server) priorRecord(ctx context.Context, scope, key string) (*payout.IdempotencyRecord, error) {
	rec, err := s.store.GetIdempotency(ctx, scope, key)
	if errors.Is(err, payout.ErrNotFound) {
		return nil, nil
	}
	return rec, err
}

// PruneIdempotency deletes idempotency records older than
// IdempotencyKeyTTL and says how many it deleted. Run it periodically.
func (s *Server) PruneIdempotency(ctx context.Context) (int64, error) {
	return s.store.DeleteIdempotencyBefore(ctx, s.now().Add(-IdempotencyKeyTTL))
}
