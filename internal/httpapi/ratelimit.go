package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/sluicepay/sluice/internal/payout"
)

// DefaultRateLimit is each API key's token bucket unless the config or the
// key says otherwise: 100 requests a second, bursts of 200.
var DefaultRateLimit = payout.RateLimit{PerSecond: 100, Burst: 200}

// limiters holds a token bucket per API key id. Buckets live in this
// process: with several instances behind a balancer a key may make up to
// the limit on each.
type limiters struct {
	def payout.RateLimit

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func (l *limiters) get(key *APIKey) (*rate.Limiter, payout.RateLimit) {
	lim := key.RateLimit
	if lim.PerSecond <= 0 || lim.Burst <= 0 {
		lim = l.def
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[key.ID]
	if b == nil {
		b = rate.NewLimiter(rate.Limit(lim.PerSecond), lim.Burst)
		l.m[key.ID] = b
	}
	return b, lim
}

// allow takes a token for key at now and sets the RateLimit-* headers. When
// the bucket is empty it returns a rate_limited error with Retry-After.
func (l *limiters) allow(w http.ResponseWriter, key *APIKey, now time.Time) error {
	b, lim := l.get(key)
	ok := b.AllowN(now, 1)
	tokens := max(b.TokensAt(now), 0)
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(lim.Burst))
	h.Set("RateLimit-Remaining", strconv.Itoa(int(math.Floor(tokens))))
	h.Set("RateLimit-Reset", strconv.Itoa(ceilSeconds((float64(lim.Burst)-tokens)/lim.PerSecond)))
	if ok {
		return nil
	}
	retry := ceilSeconds((1 - tokens) / lim.PerSecond)
	e := newError(payout.CodeRateLimited, "this API key may make %g requests a second (bursts of %d); retry in %d s",
		lim.PerSecond, lim.Burst, retry)
	e.retryAfter = strconv.Itoa(retry)
	return e
}

// ceilSeconds rounds a wait up to whole seconds, at least 1 when positive.
func ceilSeconds(s float64) int {
	if s <= 0 {
		return 0
	}
	return max(1, int(math.Ceil(s)))
}
