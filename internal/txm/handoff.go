package txm

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// handOff moves the payouts this wallet cannot cover (holds with
// ReasonInsufficientFunds) to another hot wallet of the chain that can, as
// Config.Handoff finds it, and returns the holds of the payouts that stay.
// Only this sender moves its own queued payouts, from its own loop, and
// the store moves a payout only while it is queued here: nothing else can
// be sending it meanwhile, so a move cannot make a double payment.
func (s *Sender) handOff(ctx context.Context, holds []payout.Hold, ps []*payout.Payout) ([]payout.Hold, error) {
	if s.cfg.Handoff == nil || len(holds) == 0 {
		return holds, nil
	}
	byID := make(map[string]*payout.Payout, len(ps))
	for _, p := range ps {
		byID[p.ID] = p
	}
	var moves []payout.Move
	stay := make([]payout.Hold, 0, len(holds))
	for _, h := range holds {
		if p := byID[h.PayoutID]; p != nil && h.Reason == payout.ReasonInsufficientFunds {
			if to, ok := s.cfg.Handoff.Target(p); ok && to != s.sender {
				moves = append(moves, payout.Move{PayoutID: p.ID, From: s.sender, To: to})
				continue
			}
		}
		stay = append(stay, h)
	}
	if len(moves) == 0 {
		return holds, nil
	}
	if err := inChunks(moves, func(c []payout.Move) error { return s.cfg.Store.MoveQueued(ctx, c) }); err != nil {
		return nil, fmt.Errorf("hand payouts to other wallets: %w", err)
	}
	woken := map[common.Address]bool{}
	for _, m := range moves {
		delete(s.st.held, m.PayoutID)
		s.cfg.Metrics.handoffs.WithLabelValues(s.cfg.Chain.Name).Inc()
		if !woken[m.To] {
			woken[m.To] = true
			s.cfg.Handoff.Moved(s.cfg.Chain.Name, m.To)
		}
	}
	s.log.Info("handed payouts this wallet cannot cover to other hot wallets", "count", len(moves),
		"first", moves[0].PayoutID, "to", moves[0].To.Hex())
	return stay, nil
}
