package txm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
)

// offlineReadEvery is how often a sender with no active offline plan
// looks for a new one.
const offlineReadEvery = 500 * time.Millisecond

// offlineRound handles the wallet's active offline plan, if it has one,
// and says whether the sender must sign nothing new this round: it plans
// a requested plan (reserving nonces, signing nothing), submits a signed
// one, and voids one on request when the chain has used none of its
// nonces. While a plan is active, new queued payouts wait with
// payout.ReasonOfflinePlan.
func (s *Sender) offlineRound(ctx context.Context) (busy bool, err error) {
	if s.cfg.Offline == nil {
		return false, nil
	}
	// Plans are rare: with none active, look at most every
	// offlineReadEvery (one indexed read), not at every round.
	if s.st.offlineNoted == "" && time.Since(s.st.offlineAt) < offlineReadEvery {
		return false, nil
	}
	s.st.offlineAt = time.Now()
	pl, err := s.cfg.Offline.ActiveOfflinePlan(ctx, s.cfg.Chain.ChainID, s.sender)
	if errors.Is(err, payout.ErrNotFound) {
		s.st.offlineNoted = ""
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("offline plan: %w", err)
	}
	switch pl.Status {
	case payout.PlanRequested:
		err = s.openOfflinePlan(ctx, pl)
	case payout.PlanSigned:
		err = s.submitOfflinePlan(ctx, pl)
	case payout.PlanVoidRequested:
		err = s.voidOfflinePlan(ctx, pl)
	}
	if err != nil || !pl.Status.Active() {
		return true, err // ended: the next round sends as usual
	}
	return true, s.holdForOfflinePlan(ctx, pl)
}

// holdForOfflinePlan tells the queued payouts why they wait, once per plan
// and status.
func (s *Sender) holdForOfflinePlan(ctx context.Context, pl *payout.OfflinePlan) error {
	noted := pl.ID + "/" + string(pl.Status)
	if s.st.offlineNoted == noted {
		return nil
	}
	s.st.offlineNoted = noted
	s.log.Info("the wallet has an active offline plan: signing nothing new until it is submitted or voided",
		"plan_id", pl.ID, "plan_status", pl.Status, "transactions", len(pl.Items))
	ps, err := s.cfg.Store.QueuedPayouts(ctx, s.cfg.Chain.ChainID, s.sender, s.readLimit())
	if err != nil {
		return fmt.Errorf("queued payouts: %w", err)
	}
	holds := make([]payout.Hold, len(ps))
	for i, p := range ps {
		holds[i] = payout.Hold{PayoutID: p.ID, Reason: payout.ReasonOfflinePlan,
			Detail: fmt.Sprintf("the wallet's offline plan %s is %s; the payout waits until it is submitted or voided", pl.ID, pl.Status)}
	}
	return s.hold(ctx, holds)
}

// openOfflinePlan plans up to the plan's MaxPayouts queued payouts alone
// (no batch transactions), from the next free nonce, and stores their
// unsigned transactions: their nonces are reserved and they wait
// signing_offline.
func (s *Sender) openOfflinePlan(ctx context.Context, pl *payout.OfflinePlan) error {
	ps, err := s.cfg.Store.QueuedPayouts(ctx, s.cfg.Chain.ChainID, s.sender, min(pl.MaxPayouts, s.readLimit()))
	if err != nil {
		return fmt.Errorf("queued payouts: %w", err)
	}
	if ps, err = s.holdPaused(ctx, ps); err != nil {
		return err
	}
	plans, err := s.plan(ctx, ps, false)
	if err != nil {
		return err
	}
	chainID := new(big.Int).SetUint64(s.cfg.Chain.ChainID)
	signer := types.LatestSignerForChainID(chainID)
	items := make([]payout.OfflineItem, 0, len(plans))
	nonce := s.st.nextNonce
	for _, p := range plans {
		tx, err := evm.UnsignedTransfer(chainID, nonce, p.gas, p.fees, p.call)
		if err != nil {
			return fmt.Errorf("payout %s: %w", p.p.ID, err)
		}
		raw, err := tx.MarshalBinary()
		if err != nil {
			return fmt.Errorf("encode transaction: %w", err)
		}
		items = append(items, payout.OfflineItem{
			PayoutID: p.p.ID, Nonce: nonce, To: p.p.To, Asset: p.p.Asset, Amount: p.p.Amount.String(),
			GasLimit: p.gas, MaxFeePerGas: p.fees.MaxFeePerGas.String(), MaxPriorityFeePerGas: p.fees.MaxPriorityFeePerGas.String(),
			Unsigned: raw, Digest: signer.Hash(tx),
		})
		nonce++
	}
	note := ""
	if len(items) == 0 {
		note = fmt.Sprintf("nothing to plan: %d queued payout(s) read, none ready to send (see each payout's status_reason)", len(ps))
	}
	err = s.cfg.Offline.OpenOfflinePlan(ctx, pl.ID, items, note)
	var stale *payout.StaleError
	switch {
	case errors.As(err, &stale):
		return nil // a payout changed meanwhile: plan again next round
	case errors.Is(err, payout.ErrNonceConflict):
		return s.initNonce(ctx)
	case err != nil:
		return fmt.Errorf("open offline plan %s: %w", pl.ID, err)
	}
	s.st.nextNonce = nonce
	pl.Status, pl.Items = payout.PlanOpen, items
	if len(items) == 0 {
		pl.Status = payout.PlanEmpty
	}
	s.cfg.Metrics.offlinePlans.WithLabelValues(s.cfg.Chain.Name, string(pl.Status)).Inc()
	s.log.Info("offline plan opened: its transactions wait to be signed offline", "plan_id", pl.ID,
		"transactions", len(items), "first_nonce", s.st.nextNonce-uint64(len(items)))
	return nil
}

// submitOfflinePlan stores a signed plan's transactions as first attempts
// and broadcasts them; from then on they are tracked, replaced (once the
// signer is back) and confirmed like any other.
func (s *Sender) submitOfflinePlan(ctx context.Context, pl *payout.OfflinePlan) error {
	now := time.Now()
	attempts := make([]*payout.Attempt, len(pl.Items))
	for i, it := range pl.Items {
		tx := new(types.Transaction)
		if err := tx.UnmarshalBinary(it.Signed); err != nil {
			return fmt.Errorf("offline plan %s: signed transaction %d: %w", pl.ID, i, err)
		}
		attempts[i] = &payout.Attempt{
			PayoutID: it.PayoutID, ChainID: s.cfg.Chain.ChainID, Sender: s.sender, Nonce: it.Nonce,
			TxHash: tx.Hash(), RawTx: it.Signed, GasLimit: tx.Gas(), MaxFeePerGas: tx.GasFeeCap(),
			MaxPriorityFeePerGas: tx.GasTipCap(), Kind: payout.AttemptTransfer, CreatedAt: now,
		}
	}
	if err := s.cfg.Offline.SubmitOfflinePlan(ctx, pl.ID, attempts); err != nil {
		return fmt.Errorf("submit offline plan %s: %w", pl.ID, err)
	}
	plans := make([]planned, len(attempts))
	for i, a := range attempts {
		p, err := s.cfg.Store.GetPayout(ctx, a.PayoutID)
		if err != nil {
			return fmt.Errorf("payout %s: %w", a.PayoutID, err)
		}
		plans[i] = planned{p: p}
	}
	if len(attempts) > 0 {
		next := s.st.nextNonce
		s.submitted(ctx, plans, attempts)
		s.st.nextNonce = max(next, s.st.nextNonce)
	}
	pl.Status = payout.PlanSubmitted
	s.cfg.Metrics.offlinePlans.WithLabelValues(s.cfg.Chain.Name, "submitted").Inc()
	s.log.Info("offline plan submitted: its signed transactions are stored and broadcast", "plan_id", pl.ID, "transactions", len(attempts))
	return nil
}

// voidOfflinePlan voids a plan whose nonces the chain has not used: its
// payouts go back to the queue and are planned again from its first
// nonce. When the chain's pending nonce has reached the plan's first
// nonce, a signed transaction of the plan may be out there: the void is
// refused (paying those payouts again at other nonces could pay twice).
func (s *Sender) voidOfflinePlan(ctx context.Context, pl *payout.OfflinePlan) error {
	refused := ""
	if len(pl.Items) > 0 {
		first := slices.MinFunc(pl.Items, func(a, b payout.OfflineItem) int { return cmp.Compare(a.Nonce, b.Nonce) }).Nonce
		pending, err := s.cfg.Client.Nonce(ctx, s.sender, "pending")
		if err != nil {
			return fmt.Errorf("chain nonce: %w", err)
		}
		if pending > first {
			refused = fmt.Sprintf("void refused: the chain's pending nonce of %s is %d, so a transaction at the plan's nonce %d or later "+
				"may already be broadcast; submit the signed file instead", s.sender.Hex(), pending, first)
		}
	}
	if err := s.cfg.Offline.EndOfflineVoid(ctx, pl.ID, refused); err != nil {
		return fmt.Errorf("void offline plan %s: %w", pl.ID, err)
	}
	if refused != "" {
		s.log.Warn("offline plan void refused", "plan_id", pl.ID, "why", refused)
		s.cfg.Metrics.offlinePlans.WithLabelValues(s.cfg.Chain.Name, "void_refused").Inc()
		pl.Status = payout.PlanOpen
		return nil
	}
	s.log.Info("offline plan voided: its payouts are queued again", "plan_id", pl.ID, "transactions", len(pl.Items))
	pl.Status = payout.PlanVoided
	s.cfg.Metrics.offlinePlans.WithLabelValues(s.cfg.Chain.Name, "voided").Inc()
	return s.initNonce(ctx)
}
