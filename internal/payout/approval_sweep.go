package payout

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// ApprovalSweeper periodically releases holds that ended and rejects
// payouts whose approvals expired (ApprovalStore.SweepApprovals). Approving
// an expired payout already rejects it; the sweep makes sure one nobody
// looks at ends too, and that holds end on time.
type ApprovalSweeper struct {
	store ApprovalStore
	every time.Duration
	now   func() time.Time
	log   *slog.Logger
	// OnReleased, when not nil, is told each payout moved to queued, to
	// wake its sender. It must not block.
	OnReleased func(ctx context.Context, payoutID string)
	// PolicyExpiry, when above 0 and the store has ExpirePolicyChanges,
	// expires each sweep the policy versions that have waited longer for
	// their approvals (approving one expires it too).
	PolicyExpiry time.Duration

	mu     sync.Mutex
	cancel context.CancelFunc // nil while stopped
	done   chan struct{}
}

// NewApprovalSweeper returns a sweeper running every every (10s when not
// positive) with the clock now (time.Now when nil).
func NewApprovalSweeper(st ApprovalStore, every time.Duration, now func() time.Time, log *slog.Logger) *ApprovalSweeper {
	if every <= 0 {
		every = 10 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &ApprovalSweeper{store: st, every: every, now: now, log: log.With("component", "approval_sweeper")}
}

// Start runs the sweep until Stop; starting a started sweeper does nothing.
func (s *ApprovalSweeper) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go s.run(ctx, s.done)
}

// Stop ends the sweep and waits for it.
func (s *ApprovalSweeper) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel = nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (s *ApprovalSweeper) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(s.every)
	defer tick.Stop()
	for {
		if _, err := s.SweepOnce(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.WarnContext(ctx, "approval sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// SweepOnce runs one sweep with its own timeout and logs what it did.
func (s *ApprovalSweeper) SweepOnce(ctx context.Context) (SweepResult, error) {
	ctx, cancel := context.WithTimeout(ctx, max(s.every, 30*time.Second))
	defer cancel()
	res, err := s.store.SweepApprovals(ctx, s.now(), 500)
	if err != nil {
		return res, err
	}
	for _, id := range res.Released {
		s.log.InfoContext(ctx, "hold ended; payout queued", "payout_id", id)
		if s.OnReleased != nil {
			s.OnReleased(ctx, id)
		}
	}
	for _, id := range res.Expired {
		s.log.WarnContext(ctx, "approvals expired; payout rejected", "payout_id", id)
	}
	if pe, ok := s.store.(policyExpirer); ok && s.PolicyExpiry > 0 {
		versions, err := pe.ExpirePolicyChanges(ctx, s.PolicyExpiry)
		if err != nil {
			return res, err
		}
		for _, v := range versions {
			s.log.WarnContext(ctx, "approvals expired; policy version stays inactive", "version", v)
		}
	}
	return res, nil
}

// policyExpirer expires the policy versions that have waited longer than
// maxAge for their approvals, and returns them.
type policyExpirer interface {
	ExpirePolicyChanges(ctx context.Context, maxAge time.Duration) ([]int64, error)
}
