package rpcpool

import (
	"slices"
	"sync"
	"time"
)

// sample is one finished attempt: how long it took and whether the
// upstream failed it.
type sample struct {
	latency time.Duration
	failed  bool
}

// snapshot is what the scorer reads of a window.
type snapshot struct {
	p50, p90  time.Duration
	errorRate float64
	n         int
}

// window is a rolling window of the last samples of one upstream. The
// snapshot is recomputed at most every snapshotEvery so the hot path reads
// quantiles without sorting.
type window struct {
	mu      sync.Mutex
	samples []sample
	next    int
	full    bool
	snap    snapshot
	snapAt  time.Time
}

const snapshotEvery = 50 * time.Millisecond

func newWindow(size int) *window {
	return &window{samples: make([]sample, size)}
}

func (w *window) add(s sample) {
	w.mu.Lock()
	w.samples[w.next] = s
	w.next++
	if w.next == len(w.samples) {
		w.next, w.full = 0, true
	}
	w.mu.Unlock()
}

// stats returns the window's quantiles and error rate, at most
// snapshotEvery old.
func (w *window) stats(now time.Time) snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.snapAt) < snapshotEvery {
		return w.snap
	}
	n := w.next
	if w.full {
		n = len(w.samples)
	}
	w.snap, w.snapAt = summarise(w.samples[:n]), now
	return w.snap
}

// fresh summarises the window as it is now, bypassing the cached snapshot.
func (w *window) fresh() snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.next
	if w.full {
		n = len(w.samples)
	}
	return summarise(w.samples[:n])
}

// summarise computes quantiles over successful samples and the share of
// failed ones.
func summarise(samples []sample) snapshot {
	lat := make([]time.Duration, 0, len(samples))
	failed := 0
	for _, s := range samples {
		if s.failed {
			failed++
			continue
		}
		lat = append(lat, s.latency)
	}
	snap := snapshot{n: len(samples)}
	if len(samples) > 0 {
		snap.errorRate = float64(failed) / float64(len(samples))
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		snap.p50 = lat[(len(lat)-1)*50/100]
		snap.p90 = lat[(len(lat)-1)*90/100]
	}
	return snap
}

// BreakerState is the state of an upstream's circuit breaker.
type BreakerState string

// The breaker's states: closed lets every request through, open none, and
// half-open one probe whose outcome closes or reopens it.
const (
	BreakerClosed   BreakerState = "closed"
	BreakerOpen     BreakerState = "open"
	BreakerHalfOpen BreakerState = "half_open"
)

// breaker opens after a run of consecutive failures, refuses for openFor,
// then lets a single probe through.
type breaker struct {
	threshold int
	openFor   time.Duration

	mu       sync.Mutex
	state    BreakerState
	failures int
	openedAt time.Time
	probing  bool
}

func newBreaker(threshold int, openFor time.Duration) *breaker {
	return &breaker{threshold: threshold, openFor: openFor, state: BreakerClosed}
}

// allow reports whether a request may go to the upstream now. In half-open
// it takes the one probe slot; the caller must report the outcome.
func (b *breaker) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return true
	case BreakerOpen:
		if now.Sub(b.openedAt) < b.openFor {
			return false
		}
		b.state = BreakerHalfOpen
	}
	if b.probing {
		return false
	}
	b.probing = true
	return true
}

// usable reports, without taking the probe slot, whether allow could
// succeed now.
func (b *breaker) usable(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerOpen:
		return now.Sub(b.openedAt) >= b.openFor
	case BreakerHalfOpen:
		return !b.probing
	}
	return true
}

// success records an answer; it closes the breaker, also an open one
// when the pool had to ask the upstream as a last resort.
func (b *breaker) success() (from, to BreakerState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	from = b.state
	b.failures, b.probing, b.state = 0, false, BreakerClosed
	return from, b.state
}

// failure records a failure; it opens the breaker after threshold in a row
// or at once when a probe fails.
func (b *breaker) failure(now time.Time) (from, to BreakerState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	from = b.state
	b.failures++
	if b.state == BreakerHalfOpen || (b.state == BreakerClosed && b.failures >= b.threshold) {
		b.state, b.openedAt = BreakerOpen, now
	}
	b.probing = false
	return from, b.state
}

// release gives the probe slot back when the probe ended without a verdict
// (cancelled, or a deterministic answer counted elsewhere).
func (b *breaker) release() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

func (b *breaker) current() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}
