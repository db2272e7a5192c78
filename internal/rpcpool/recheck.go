package rpcpool

import (
	"context"
	"sync"
	"time"
)

// recheckEvery bounds how often requests that find no usable upstream
// trigger a health check of every upstream.
const recheckEvery = 250 * time.Millisecond

// recheckWait is the longest a request waits for such a check.
const recheckWait = time.Second

// rechecker runs the on-demand health checks; concurrent requests share one.
type rechecker struct {
	mu    sync.Mutex
	last  time.Time
	done  chan struct{} // closed when the latest check ended
	began int64         // unix nanoseconds when the latest check began
}

// recheck checks every upstream now, when a request finds none usable or
// every one it asked failed: an upstream that recovered keeps its stale
// head, and so looks lagging, until its next periodic check, and faults
// may move faster than that. It returns as soon as an upstream that this
// check found alive is usable for the request, when the check ends, or
// after recheckWait.
func (p *Pool) recheck(ctx context.Context, fresh bool) {
	done, began := p.startRecheck()
	deadline := time.NewTimer(recheckWait)
	defer deadline.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-deadline.C:
			return
		case <-poll.C:
			// Not any usable upstream: the one that just failed the
			// request may still look usable. One this check saw answer.
			for _, u := range p.candidates(time.Now(), fresh) {
				if u.lastSeen.Load() >= began {
					return
				}
			}
		}
	}
}

// recheckAsync starts a check of every upstream, unless one ran within
// recheckEvery, and returns at once.
func (p *Pool) recheckAsync() { p.startRecheck() }

// startRecheck starts a check of every upstream unless one ran within
// recheckEvery, and returns the latest check's done channel and start.
func (p *Pool) startRecheck() (<-chan struct{}, int64) {
	rc := &p.rechecks
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.done == nil || time.Since(rc.last) >= recheckEvery {
		rc.last, rc.done = time.Now(), make(chan struct{})
		rc.began = rc.last.UnixNano()
		done := rc.done
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer close(done)
			cctx, cancel := context.WithTimeout(context.Background(), p.cfg.HealthTimeout)
			defer cancel()
			p.checkAll(cctx)
		}()
	}
	return rc.done, rc.began
}
