package policy

import (
	"math/big"
	"sort"
	"sync"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// Velocity scopes: what the payouts counted in a window share with the
// payout being decided. Every scope also keeps to the payout's chain and
// asset, so that sums add like units.
const (
	ScopeWallet      = "wallet"      // the same hot wallet
	ScopeAsset       = "asset"       // any wallet
	ScopeDestination = "destination" // the same destination
	ScopeAPIKey      = "api_key"     // created by the same API key
)

var velocityScopes = []string{ScopeWallet, ScopeAsset, ScopeDestination, ScopeAPIKey}

// Ledger keeps the recent payouts per velocity scope in memory, so that a
// window's sum and count cost two binary searches instead of a scan of the
// payouts table. It is loaded from the store (payouts created within the
// longest window), told about each payout created here (Record), and
// topped up from the store for payouts other instances created (Engine's
// refresh).
type Ledger struct {
	// keep is the longest window any policy asks for; older entries go.
	keep time.Duration

	mu     sync.RWMutex
	series map[string]*series
	seen   map[string]int64 // payout id → created, unix µs: recorded once
	latest int64            // the newest CreatedAt recorded, unix µs
	adds   int              // entries recorded since the last prune
}

// series is one scope key's payouts in time order, with running sums:
// the sum of (i, j] is cum[j] - cum[i].
type series struct {
	at    []int64 // unix µs
	cum   []*big.Int
	start int // entries before it left every window
}

// NewLedger keeps entries for keep (at least a day).
func NewLedger(keep time.Duration) *Ledger {
	if keep < 24*time.Hour {
		keep = 24 * time.Hour
	}
	return &Ledger{keep: keep, series: map[string]*series{}, seen: map[string]int64{}}
}

// scopeKey names the series a payout belongs to in a scope.
func scopeKey(scope, chain, asset string, h *payout.HistoryItem) string {
	switch scope {
	case ScopeWallet:
		return scope + "\x00" + chain + "\x00" + asset + "\x00" + string(h.Sender[:])
	case ScopeDestination:
		return scope + "\x00" + chain + "\x00" + asset + "\x00" + string(h.To[:])
	case ScopeAPIKey:
		return scope + "\x00" + chain + "\x00" + asset + "\x00" + h.APIKeyID
	default:
		return scope + "\x00" + chain + "\x00" + asset
	}
}

// Record adds payouts; one already recorded is skipped.
func (l *Ledger) Record(items ...payout.HistoryItem) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range items {
		h := &items[i]
		at := h.CreatedAt.UnixMicro()
		if _, ok := l.seen[h.ID]; ok || h.Amount == nil {
			continue
		}
		l.seen[h.ID] = at
		l.latest = max(l.latest, at)
		for _, sc := range velocityScopes {
			if sc == ScopeAPIKey && h.APIKeyID == "" {
				continue
			}
			k := scopeKey(sc, h.Chain, h.Asset, h)
			s := l.series[k]
			if s == nil {
				s = &series{}
				l.series[k] = s
			}
			s.add(at, h.Amount)
		}
		l.prune()
	}
}

// add appends, keeping time order when an entry arrives late.
func (s *series) add(at int64, amount *big.Int) {
	prev := new(big.Int)
	if n := len(s.cum); n > 0 {
		prev = s.cum[n-1]
	}
	s.at = append(s.at, at)
	s.cum = append(s.cum, new(big.Int).Add(prev, amount))
	for i := len(s.at) - 1; i > 0 && s.at[i] < s.at[i-1]; i-- {
		// Swap entry i back: its amount moves before the previous one's.
		a := new(big.Int).Sub(s.cum[i], s.cum[i-1])
		b := new(big.Int).Sub(s.cum[i-1], s.base(i-1))
		s.at[i], s.at[i-1] = s.at[i-1], s.at[i]
		s.cum[i-1] = new(big.Int).Add(s.base(i-1), a)
		s.cum[i] = new(big.Int).Add(s.cum[i-1], b)
	}
}

func (s *series) base(i int) *big.Int {
	if i == 0 {
		return new(big.Int)
	}
	return s.cum[i-1]
}

// prune drops entries older than keep, now and then (the caller holds mu).
func (l *Ledger) prune() {
	if l.adds++; l.adds < 4096 {
		return
	}
	l.adds = 0
	cut := l.latest - l.keep.Microseconds()
	for id, at := range l.seen {
		if at < cut {
			delete(l.seen, id)
		}
	}
	for k, s := range l.series {
		s.start = sort.Search(len(s.at), func(i int) bool { return s.at[i] >= cut })
		if s.start == len(s.at) {
			delete(l.series, k)
			continue
		}
		if s.start > len(s.at)/2 {
			// Rebase the running sums on the first entry kept.
			origin := s.base(s.start)
			cum := make([]*big.Int, len(s.cum)-s.start)
			for i := range cum {
				cum[i] = new(big.Int).Sub(s.cum[s.start+i], origin)
			}
			s.at, s.cum, s.start = append([]int64(nil), s.at[s.start:]...), cum, 0
		}
	}
}

// Window is the sum and count of the payouts in a window.
type Window struct {
	Sum   *big.Int `json:"-"`
	Count int64    `json:"count"`
}

// window sums the entries of key created after now-d (and not after now).
func (l *Ledger) window(key string, now time.Time, d time.Duration) Window {
	l.mu.RLock()
	defer l.mu.RUnlock()
	s := l.series[key]
	if s == nil {
		return Window{Sum: new(big.Int)}
	}
	hi := now.UnixMicro()
	lo := hi - d.Microseconds()
	i := s.start + sort.Search(len(s.at)-s.start, func(k int) bool { return s.at[s.start+k] > lo })
	j := s.start + sort.Search(len(s.at)-s.start, func(k int) bool { return s.at[s.start+k] > hi })
	if j <= i {
		return Window{Sum: new(big.Int)}
	}
	return Window{Sum: new(big.Int).Sub(s.cum[j-1], s.base(i)), Count: int64(j - i)}
}

// recorded says whether a payout was recorded, and when it was created.
func (l *Ledger) recorded(id string) (time.Time, bool) {
	if id == "" {
		return time.Time{}, false
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	at, ok := l.seen[id]
	return time.UnixMicro(at).UTC(), ok
}

// Latest returns the CreatedAt of the newest payout recorded (zero when
// none).
func (l *Ledger) Latest() time.Time {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.latest == 0 {
		return time.Time{}
	}
	return time.UnixMicro(l.latest).UTC()
}

// Keep returns how far back the ledger keeps payouts.
func (l *Ledger) Keep() time.Duration { return l.keep }
