package txm

import (
	"context"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// pauseView is the loop's reading of the pauses in force.
type pauseView struct {
	list []*payout.Pause
	key  string // the ids, to notice a change
}

// readPauses reads the pauses in force and says whether they changed since
// the previous reading.
func (s *Sender) readPauses(ctx context.Context) (changed bool, err error) {
	v := &s.st.pauses
	if s.cfg.Pauses == nil {
		return false, nil
	}
	ps, err := s.cfg.Pauses.ActivePauses(ctx)
	if err != nil {
		return false, fmt.Errorf("read pauses: %w", err)
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	key := strings.Join(ids, ",")
	changed = key != v.key
	if changed {
		s.log.Info("emergency pauses changed", "active", len(ps), "ids", key)
		s.cfg.Metrics.pausesActive.WithLabelValues(s.cfg.Chain.Name, s.sender.Hex()).Set(float64(s.pausesMatching(ps)))
	}
	v.list, v.key = ps, key
	return changed, nil
}

// pausesMatching counts the pauses that can stop some payout of this sender.
func (s *Sender) pausesMatching(ps []*payout.Pause) int {
	n := 0
	for _, p := range ps {
		if (p.Scope == payout.PauseAsset && p.Chain == s.cfg.Chain.Name) || p.Matches(s.cfg.Chain.Name, "", s.sender) {
			n++
		}
	}
	return n
}

// paused returns the pause that stops p, or nil.
func (s *Sender) paused(p *payout.Payout) *payout.Pause {
	return payout.MatchPause(s.st.pauses.list, s.cfg.Chain.Name, p.Asset, s.sender)
}

// holdPaused makes the payouts a pause stops wait queued with
// ReasonPaused, naming the pause, and returns the others.
func (s *Sender) holdPaused(ctx context.Context, ps []*payout.Payout) ([]*payout.Payout, error) {
	if len(s.st.pauses.list) == 0 {
		return ps, nil
	}
	var holds []payout.Hold
	free := make([]*payout.Payout, 0, len(ps))
	for _, p := range ps {
		if pa := s.paused(p); pa != nil {
			holds = append(holds, payout.Hold{PayoutID: p.ID, Reason: payout.ReasonPaused,
				Detail: pa.Describe() + "; the payout waits until the pause is resumed"})
			continue
		}
		free = append(free, p)
	}
	return free, s.hold(ctx, holds)
}

// unpausedPlans re-reads the pauses right before signing and holds the
// plans a pause now stops. The reading comes after the round read its
// queue, so a pause committed before a payout was accepted always holds
// it (a reading from the round's start could predate the pause and still
// miss it), and one committed before signing is seen.
func (s *Sender) unpausedPlans(ctx context.Context, plans []planned) ([]planned, error) {
	if _, err := s.readPauses(ctx); err != nil {
		return nil, err
	}
	if len(s.st.pauses.list) == 0 {
		return plans, nil
	}
	ps := make([]*payout.Payout, len(plans))
	for i, pl := range plans {
		ps[i] = pl.p
	}
	free, err := s.holdPaused(ctx, ps)
	if err != nil || len(free) == len(plans) {
		return plans, err
	}
	ok := plans[:0]
	for _, pl := range plans {
		if s.paused(pl.p) == nil {
			ok = append(ok, pl)
		}
	}
	return ok, nil
}

// queuedSkipping is a store that can read queued payouts without some
// assets; *store.DB is one.
type queuedSkipping interface {
	QueuedPayoutsSkipping(ctx context.Context, chainID uint64, sender common.Address, skip []string, limit int) ([]*payout.Payout, error)
}

// queued reads the payouts this round may send, and how many it read
// first: the oldest queued ones, less those a pause stops (held with
// their reason). When only asset pauses stop some and the batch was full,
// it reads again without the paused assets, so that a long paused queue
// of one asset cannot fill every batch while the others wait behind it.
func (s *Sender) queued(ctx context.Context) ([]*payout.Payout, int, error) {
	limit := s.readLimit()
	ps, err := s.cfg.Store.QueuedPayouts(ctx, s.cfg.Chain.ChainID, s.sender, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("queued payouts: %w", err)
	}
	read := len(ps)
	free, err := s.holdPaused(ctx, ps)
	if err != nil || len(free) == read || read < limit {
		return free, read, err
	}
	skip, whole := s.pausedAssets()
	q, ok := s.cfg.Store.(queuedSkipping)
	if whole || len(skip) == 0 || !ok {
		return free, read, nil
	}
	ps, err = q.QueuedPayoutsSkipping(ctx, s.cfg.Chain.ChainID, s.sender, skip, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("queued payouts: %w", err)
	}
	return ps, len(ps), nil
}

// pausedAssets lists the assets of this chain an asset pause stops, and
// says whether a pause stops this sender altogether.
func (s *Sender) pausedAssets() (assets []string, whole bool) {
	for _, p := range s.st.pauses.list {
		switch {
		case p.Scope == payout.PauseAsset:
			if p.Chain == s.cfg.Chain.Name {
				assets = append(assets, p.Asset)
			}
		case p.Matches(s.cfg.Chain.Name, "", s.sender):
			whole = true
		}
	}
	return assets, whole
}
