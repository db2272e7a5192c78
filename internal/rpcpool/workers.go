package rpcpool

import "time"

// workers runs attempts on goroutines kept warm between requests. A fresh
// goroutine per attempt grows its stack through the HTTP client's deep
// calls every time; a profile put that at 15% of a call's CPU.
type workers struct {
	tasks chan func()
	quit  chan struct{}
	idle  time.Duration
}

func newWorkers(idle time.Duration) *workers {
	return &workers{tasks: make(chan func()), quit: make(chan struct{}), idle: idle}
}

// run hands f to an idle worker, or starts one.
func (w *workers) run(f func()) {
	select {
	case w.tasks <- f:
	default:
		go w.loop(f)
	}
}

// loop runs f, then further tasks until idle for w.idle or stopped.
func (w *workers) loop(f func()) {
	t := time.NewTimer(w.idle)
	defer t.Stop()
	for {
		f()
		t.Reset(w.idle)
		select {
		case f = <-w.tasks:
		case <-t.C:
			return
		case <-w.quit:
			return
		}
	}
}

// stop lets idle workers exit; tasks running finish on their own.
func (w *workers) stop() {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
}
