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
	mu   sync.Mutex
	last time.Time
	done chan struct{} // closed when the latest check ended
}

// recheck checks every upstream now, when a request finds none usable: an
// upstream that recovered keeps its stale head, and so looks lagging, until
// its next periodic check, and faults may move faster than that. It returns
// as soon as an upstream is usable for the request, when the check ends, or
// after recheckWait.
func (p *Pool) recheck(ctx context.Context, fresh bool) {
	rc := &p.rechecks
	rc.mu.Lock()
	if rc.done == nil || time.Since(rc.last) >= recheckEvery {
		rc.last, rc.done = time.Now(), make(chan struct{})
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
	done := rc.done
	rc.mu.Unlock()

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
			if len(p.candidates(time.Now(), fresh)) > 0 {
				return
			}
		}
	}
}
