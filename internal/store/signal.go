package store

import "sync"

// commitSignal wakes whoever waits for the next committed write: the
// webhook dispatcher and event streams use it to see new outbox rows at
// once instead of on their next poll. It is local to this process; a
// reader must still poll for writes committed by other instances.
type commitSignal struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed by the next signal.
func (s *commitSignal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// signal closes the channel waiters hold, if anyone took one.
func (s *commitSignal) signal() {
	s.mu.Lock()
	ch := s.ch
	s.ch = nil
	s.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// Committed returns a channel that is closed when this DB next commits a
// write transaction (every event is written by one), on SQLite once the
// commit is on disk (walSyncer), so that nothing is announced that a power
// loss could take back. Take a new channel after each wake, before reading
// what changed, so no commit goes unseen.
func (db *DB) Committed() <-chan struct{} { return db.committed.wait() }
