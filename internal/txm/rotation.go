package txm

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// rotationReadEvery is how often a sender reads the rotations: they are
// rare, and a payout that lands on a retired wallet meanwhile is moved.
const rotationReadEvery = time.Second

// Gas reserved per sweep transfer for the native sweep's reserve: a token
// transfer with headroom, and a native one to a wallet whose code (an
// EIP-7702 delegation) runs on receipt.
const (
	sweepTokenGas  = 100_000
	sweepNativeGas = 60_000
)

// rotationRound does what a rotation away from this wallet asks of its
// sender (payout.Rotation): it hands every queued payout other than the
// rotation's sweeps to the new wallet; once nothing is queued, in flight
// or confirming it sweeps the wallet's assets to the new wallet; and it
// completes the rotation when the sweeps end.
func (s *Sender) rotationRound(ctx context.Context) error {
	if s.cfg.Rotations == nil {
		return nil
	}
	if time.Since(s.st.rotationsAt) >= rotationReadEvery {
		rs, err := s.cfg.Rotations.Rotations(ctx)
		if err != nil {
			return fmt.Errorf("rotations: %w", err)
		}
		s.st.rotation, s.st.rotationsAt = nil, time.Now()
		for _, r := range rs {
			if r.ChainID == s.cfg.Chain.ChainID && r.From == s.sender {
				s.st.rotation = r
			}
		}
	}
	r := s.st.rotation
	if r == nil {
		return nil
	}
	left, err := s.handOverQueued(ctx, r)
	if err != nil {
		return err
	}
	switch {
	case r.Status == payout.RotationDraining && left == 0 && len(s.st.flights) == 0 && len(s.st.confirming) == 0:
		if s.cfg.Offline != nil {
			// An offline plan's transactions will spend from the wallet
			// once submitted: sweep only what is left after them.
			if _, err := s.cfg.Offline.ActiveOfflinePlan(ctx, s.cfg.Chain.ChainID, s.sender); err == nil {
				return nil
			} else if !errors.Is(err, payout.ErrNotFound) {
				return fmt.Errorf("offline plan: %w", err)
			}
		}
		return s.startSweep(ctx, r)
	case r.Status == payout.RotationSweeping:
		return s.checkSweeps(ctx, r)
	}
	return nil
}

// handOverQueued moves the wallet's queued payouts, but for r's sweeps, to
// r.To, and says how many queued payouts it left (its sweeps, or more
// than one read holds).
func (s *Sender) handOverQueued(ctx context.Context, r *payout.Rotation) (left int, err error) {
	ps, err := s.cfg.Store.QueuedPayouts(ctx, s.cfg.Chain.ChainID, s.sender, s.readLimit())
	if err != nil {
		return 0, fmt.Errorf("queued payouts: %w", err)
	}
	var moves []payout.Move
	for _, p := range ps {
		if !payout.IsSweepOf(p, r.ID) {
			moves = append(moves, payout.Move{PayoutID: p.ID, From: s.sender, To: r.To})
		}
	}
	if len(moves) == 0 {
		return len(ps), nil
	}
	if err := inChunks(moves, func(c []payout.Move) error { return s.cfg.Store.MoveQueued(ctx, c) }); err != nil {
		return 0, fmt.Errorf("hand payouts to %s: %w", r.To.Hex(), err)
	}
	for _, m := range moves {
		delete(s.st.held, m.PayoutID)
	}
	s.cfg.Metrics.rotations.WithLabelValues(s.cfg.Chain.Name, "handed_over").Add(float64(len(moves)))
	s.log.Info("wallet rotated away: queued payouts handed to the new wallet", "rotation_id", r.ID, "to", r.To.Hex(), "count", len(moves))
	if s.cfg.Handoff != nil {
		s.cfg.Handoff.Moved(s.cfg.Chain.Name, r.To)
	}
	left = len(ps) - len(moves)
	if len(ps) == s.readLimit() {
		left++ // more may wait beyond what was read
	}
	return left, nil
}

// startSweep creates the sweep payouts: every token the wallet holds, then
// its native coin less a reserve for those transfers' fees (twice today's
// fee per gas, so that a fee rise before they are sent does not strand
// them).
func (s *Sender) startSweep(ctx context.Context, r *payout.Rotation) error {
	f, err := s.readFunds(ctx, nil)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	newSweep := func(asset string, amount *big.Int) *payout.Payout {
		return &payout.Payout{
			ID: payout.DefaultIDs.New("po_", now), Status: payout.StatusQueued, Chain: s.cfg.Chain.Name, ChainID: s.cfg.Chain.ChainID,
			Asset: asset, To: r.To, Amount: amount, ExternalID: payout.SweepExternalIDPrefix + r.ID + ":" + asset,
			Sender: s.sender, Priority: payout.PriorityStandard, Version: 1, CreatedAt: now, UpdatedAt: now,
			Metadata: map[string]string{"rotation_id": r.ID},
		}
	}
	var sweeps []*payout.Payout
	var parts []string
	symbols := make([]string, 0, len(f.tokens))
	for token, bal := range f.tokens {
		if bal.Sign() > 0 {
			symbols = append(symbols, f.symbol[token])
		}
	}
	sort.Strings(symbols)
	for _, sym := range symbols {
		amount := new(big.Int).Set(f.tokens[*s.cfg.Chain.Assets[sym].Token])
		sweeps = append(sweeps, newSweep(sym, amount))
		parts = append(parts, amount.String()+" "+sym)
	}
	if native := s.cfg.Chain.NativeSymbol(); native != "" {
		q, err := s.cfg.Fees.Quote(ctx, payout.PriorityStandard)
		if err != nil {
			return fmt.Errorf("fee quote: %w", err)
		}
		gas := int64(sweepNativeGas + sweepTokenGas*len(sweeps))
		reserve := new(big.Int).Mul(big.NewInt(2*gas), q.Fees.MaxFeePerGas)
		if amount := new(big.Int).Sub(f.native, reserve); amount.Sign() > 0 {
			sweeps = append(sweeps, newSweep(native, amount))
			parts = append(parts, amount.String()+" "+native)
		}
		parts = append(parts, fmt.Sprintf("up to %s %s kept for the sweeps' fees", reserve, native))
	}
	note := "nothing to sweep"
	if len(sweeps) > 0 {
		note = "sweeping " + strings.Join(parts, ", ")
	}
	if err := s.cfg.Rotations.StartSweep(ctx, r.ID, sweeps, note); err != nil {
		return fmt.Errorf("start sweep of rotation %s: %w", r.ID, err)
	}
	s.st.rotationsAt = time.Time{} // read its new status next round
	s.cfg.Metrics.rotations.WithLabelValues(s.cfg.Chain.Name, "sweeps_started").Inc()
	s.log.Info("wallet rotated away: drained; sweeping what it holds to the new wallet", "rotation_id", r.ID, "to", r.To.Hex(), "sweeps", note)
	return nil
}

// checkSweeps completes the rotation once its sweeps have ended.
func (s *Sender) checkSweeps(ctx context.Context, r *payout.Rotation) error {
	var failed []string
	for _, id := range r.Sweeps {
		p, err := s.cfg.Store.GetPayout(ctx, id)
		if err != nil {
			return fmt.Errorf("sweep %s: %w", id, err)
		}
		if !p.Status.Terminal() {
			return nil
		}
		if p.Status != payout.StatusCompleted {
			failed = append(failed, fmt.Sprintf("%s %s (%s %s)", p.ID, p.Status, p.FailureCode, p.FailureMessage))
		}
	}
	note := r.Note + "; every sweep completed"
	if len(failed) > 0 {
		note = r.Note + "; sweeps not completed: " + strings.Join(failed, ", ") + ": move what is left by hand"
	}
	err := s.cfg.Rotations.CompleteRotation(ctx, r.ID, note)
	if err != nil && !errors.Is(err, payout.ErrNotFound) {
		return fmt.Errorf("complete rotation %s: %w", r.ID, err)
	}
	s.st.rotationsAt = time.Time{}
	s.cfg.Metrics.rotations.WithLabelValues(s.cfg.Chain.Name, "completed").Inc()
	s.log.Info("wallet rotation completed", "rotation_id", r.ID, "to", r.To.Hex(), "note", note)
	return nil
}
