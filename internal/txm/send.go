package txm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"time"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/fees"
	"github.com/sluicepay/sluice/internal/payout"
)

// gasHeadroom is added to estimates of contract calls (in percent): the
// state a transaction meets when mined may differ from the one simulated.
const gasHeadroom = 25

// planned is a queued payout that simulated fine, fits its fee cap and the
// wallet's funds, and is ready to be signed.
type planned struct {
	p     *payout.Payout
	call  evm.Call
	gas   uint64
	fees  evm.Fees
	chunk *payout.Chunk // a batch transaction's payouts (p first); nil: p alone
	// pre, when set, is the token approval signed at the nonce before
	// the batch transaction's (mode contract), with its gas limit.
	pre    *evm.Call
	preGas uint64
}

// sendQueued sends one batch of queued payouts and says whether the batch
// was full (more are probably waiting). Each batch is its own step, so a
// backlog of any size never runs into the step deadline, and receipts are
// tracked between batches.
func (s *Sender) sendQueued(ctx context.Context) (more bool, err error) {
	st := s.st
	if changed, err := s.readPauses(ctx); err != nil {
		return false, err
	} else if changed {
		st.heldHead = 0 // a pause began or ended: look at every queued payout again
	}
	if st.halted != "" || (st.heldHead != 0 && st.heldHead == st.head) {
		return false, nil // halted, or nothing changed since every payout read had to wait
	}
	if !s.leaseValid() {
		if err := s.renewLease(ctx); err != nil {
			return false, err
		}
	}
	if err := s.rotationRound(ctx); err != nil {
		return false, err
	}
	if busy, err := s.offlineRound(ctx); err != nil || busy {
		return false, err
	}
	oneAtATime, err := s.delegatedOneAtATime(ctx)
	if err != nil {
		return false, err
	}
	if oneAtATime && len(st.flights) > 0 {
		return false, nil // the node would refuse a second transaction
	}
	ps, read, err := s.queued(ctx)
	if err != nil {
		return false, err
	}
	if read == 0 {
		s.countOutstanding(0)
		st.lastRound = 0
		return false, nil
	}
	sent, err := s.sendBatch(ctx, ps)
	if err != nil {
		return false, err
	}
	st.lastRound = sent
	s.countOutstanding(max(read-sent, 0))
	st.heldHead = 0
	if sent == 0 {
		st.heldHead = max(st.head, 1)
	}
	return read == s.readLimit() && sent > 0, nil
}

// sendBatch plans, signs, stores and broadcasts one batch of payouts, and
// says how many payouts its transactions pay.
func (s *Sender) sendBatch(ctx context.Context, ps []*payout.Payout) (int, error) {
	if len(ps) == 0 {
		return 0, nil
	}
	plans, err := s.plan(ctx, ps, true)
	if err != nil || len(plans) == 0 {
		return 0, err
	}
	// Planning reads the chain; a pause may have begun meanwhile.
	if plans, err = s.unpausedPlans(ctx, plans); err != nil || len(plans) == 0 {
		return 0, err
	}
	if plans, err = s.handOffUnready(ctx, plans); err != nil || len(plans) == 0 {
		return 0, err
	}
	if oneAtATime, err := s.delegatedOneAtATime(ctx); err != nil {
		return 0, err
	} else if oneAtATime || slices.ContainsFunc(plans, func(pl planned) bool { return pl.call.Delegate != nil }) {
		plans = plans[:1] // the rest stay queued for the next block
	}
	for range 5 {
		attempts, err := s.sign(ctx, plans)
		if err != nil {
			if !errors.Is(err, payout.ErrSignerUnavailable) || ctx.Err() != nil {
				return 0, err
			}
			// What the signer did sign goes on (a signer may remember the
			// nonces it signed); the rest waits queued, no nonce used.
			if err := s.holdUnsigned(ctx, plans[len(attempts):], err); err != nil {
				return 0, err
			}
			if plans = plans[:len(attempts)]; len(plans) == 0 {
				return 0, nil
			}
		}
		err = s.cfg.Store.SubmitAttempts(ctx, attempts)
		var stale *payout.StaleError
		switch {
		case errors.As(err, &stale):
			plans = slices.DeleteFunc(plans, func(pl planned) bool { return slices.Contains(stale.PayoutIDs, pl.p.ID) })
			if len(plans) == 0 {
				return 0, nil
			}
			continue
		case errors.Is(err, payout.ErrNonceConflict):
			s.log.Warn("nonce already allocated; re-reading nonces", "next_nonce", s.st.nextNonce)
			if err := s.initNonce(ctx); err != nil {
				return 0, err
			}
			continue
		case err != nil:
			return 0, fmt.Errorf("store attempts: %w", err)
		}
		s.submitted(ctx, plans, attempts)
		paid := 0
		for _, pl := range plans {
			paid++
			if pl.chunk != nil {
				paid += len(pl.chunk.PayoutIDs) - 1
			}
		}
		return paid, nil
	}
	return 0, errors.New("could not store attempts after 5 tries")
}

// plan turns queued payouts into signable plans. Payouts whose transfer
// would revert fail now, before any nonce is used; payouts the wallet
// cannot cover, or whose fee is over its cap, wait (stay queued) with
// their reason.
//
// With batch false every payout is planned alone (offline plans: a batch
// transaction may need a delegation signed with it).
func (s *Sender) plan(ctx context.Context, ps []*payout.Payout, batch bool) ([]planned, error) {
	ps, err := s.recheck(ctx, ps)
	if err != nil || len(ps) == 0 {
		return nil, err
	}
	funds, err := s.readFunds(ctx, ps)
	if err != nil {
		return nil, err
	}
	var batchable, singles []*payout.Payout
	for _, p := range ps {
		if batch && s.batchable(p) {
			batchable = append(batchable, p)
		} else {
			singles = append(singles, p)
		}
	}
	chunks, alone, holds, err := s.planChunks(ctx, batchable, funds)
	if err != nil {
		return nil, err
	}
	singles = append(singles, alone...)
	if len(singles) > s.cfg.BatchSize {
		singles = singles[:s.cfg.BatchSize] // the rest next round: a round stays short
	}
	var failures []payout.Failure
	plans := make([]planned, 0, len(singles))
	for _, p := range singles {
		asset, ok := s.cfg.Chain.Assets[p.Asset]
		if !ok {
			failures = append(failures, payout.Failure{PayoutID: p.ID, Code: payout.FailureInvalidTx,
				Message: fmt.Sprintf("asset %q is no longer configured on chain %q", p.Asset, p.Chain)})
			continue
		}
		// A token transfer the wallet cannot cover would revert in the
		// simulation: check the token balance first, so it waits instead.
		if asset.Token != nil {
			if h, short := funds.takeToken(p, asset.Token); short {
				holds = append(holds, h)
				continue
			}
		}
		plans = append(plans, planned{p: p, call: evm.TransferCall(s.sender, asset.Token, p.To, p.Amount)})
	}
	plans, simFailures, simHolds, err := s.simulate(ctx, plans)
	if err != nil {
		return nil, err
	}
	failures, holds = append(failures, simFailures...), append(holds, simHolds...)
	ok := plans[:0]
	for _, pl := range plans {
		q, err := s.cfg.Fees.Quote(ctx, pl.p.Priority)
		if err != nil {
			return nil, fmt.Errorf("fee quote: %w", err)
		}
		if err := s.cfg.Fees.Check(q, pl.gas, pl.p.FeeCap); err != nil {
			var over *fees.OverCapError
			if !errors.As(err, &over) {
				return nil, err
			}
			holds = append(holds, payout.Hold{PayoutID: pl.p.ID, Reason: payout.Code(over.Reason),
				Detail: over.Error() + "; the payout waits until fees fall or its fee cap is raised"})
			continue
		}
		pl.fees = q.Fees
		if h, short := funds.takeNative(pl); short {
			holds = append(holds, h)
			funds.refundToken(pl)
			continue
		}
		ok = append(ok, pl)
	}
	ok = append(chunks, ok...)
	s.publish(funds)
	if err := s.failQueued(ctx, failures); err != nil {
		return nil, err
	}
	if holds, err = s.handOff(ctx, holds, ps); err != nil {
		return nil, err
	}
	if err := s.hold(ctx, holds); err != nil {
		return nil, err
	}
	return ok, nil
}

// recheck decides queued payouts again with Config.Recheck and fails
// those it now refuses; it returns the others.
func (s *Sender) recheck(ctx context.Context, ps []*payout.Payout) ([]*payout.Payout, error) {
	if s.cfg.Recheck == nil {
		return ps, nil
	}
	var failures []payout.Failure
	kept := ps[:0:0]
	for _, p := range ps {
		code, reason, err := s.cfg.Recheck(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("recheck policy: %w", err)
		}
		if code == "" {
			kept = append(kept, p)
			continue
		}
		failures = append(failures, payout.Failure{PayoutID: p.ID, Code: code, Message: reason})
	}
	return kept, s.failQueued(ctx, failures)
}

// simulate estimates every plan's transaction. It returns the plans that
// will succeed with their gas limits, the payouts whose transfer would
// revert (to fail) and those the wallet's native balance cannot cover (to
// wait).
func (s *Sender) simulate(ctx context.Context, plans []planned) ([]planned, []payout.Failure, []payout.Hold, error) {
	if len(plans) == 0 {
		return nil, nil, nil, nil
	}
	calls := make([]evm.Call, len(plans))
	for i, pl := range plans {
		calls[i] = pl.call
	}
	gas, errs, err := s.cfg.Client.EstimateGas(ctx, calls)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("estimate gas: %w", err)
	}
	var failures []payout.Failure
	var holds []payout.Hold
	ok := plans[:0]
	for i, pl := range plans {
		if errs[i] == nil {
			pl.gas = gasLimit(pl.call, gas[i])
			ok = append(ok, pl)
			continue
		}
		kind, deterministic := evm.Classify(errs[i])
		switch {
		case !deterministic:
			return nil, nil, nil, fmt.Errorf("estimate gas for %s: %w", pl.p.ID, errs[i])
		case kind == evm.KindInsufficientFunds:
			holds = append(holds, payout.Hold{PayoutID: pl.p.ID, Reason: payout.ReasonInsufficientFunds,
				Detail: "the hot wallet cannot pay the transfer and its gas (" + errs[i].Error() + "); it waits for a top-up"})
		default:
			failures = append(failures, payout.Failure{PayoutID: pl.p.ID, Code: payout.FailureWouldRevert,
				Message: "simulation failed: " + errs[i].Error()})
		}
	}
	return ok, failures, holds, nil
}

// gasLimit adds headroom to contract calls; a plain transfer needs exactly
// what it was estimated at.
func gasLimit(c evm.Call, estimate uint64) uint64 {
	if len(c.Data) == 0 && estimate == 21000 {
		return estimate
	}
	return estimate + estimate*gasHeadroom/100
}

func (s *Sender) failQueued(ctx context.Context, failures []payout.Failure) error {
	if len(failures) == 0 {
		return nil
	}
	if err := s.cfg.Store.FailQueued(ctx, failures); err != nil {
		return fmt.Errorf("fail payouts: %w", err)
	}
	for _, f := range failures {
		s.log.Info("payout failed before sending", "payout_id", f.PayoutID, "failure_code", f.Code, "detail", f.Message)
	}
	s.cfg.Metrics.transitions.WithLabelValues(s.cfg.Chain.Name, string(payout.StatusFailed)).Add(float64(len(failures)))
	return nil
}

// hold records why queued payouts wait.
func (s *Sender) hold(ctx context.Context, holds []payout.Hold) error {
	if len(holds) == 0 {
		return nil
	}
	if err := inChunks(holds, func(c []payout.Hold) error { return s.cfg.Store.HoldQueued(ctx, c) }); err != nil {
		return fmt.Errorf("hold payouts: %w", err)
	}
	fresh := 0
	for _, h := range holds {
		s.cfg.Metrics.holds.WithLabelValues(s.cfg.Chain.Name, string(h.Reason)).Inc()
		if s.st.held[h.PayoutID] != h.Reason {
			s.st.held[h.PayoutID] = h.Reason
			fresh++
		}
	}
	level := slog.LevelDebug
	if fresh > 0 { // say it once per payout and reason, not every round
		level = slog.LevelInfo
	}
	s.log.Log(ctx, level, "payouts wait", "count", len(holds), "new", fresh, "reason", holds[0].Reason,
		"first", holds[0].PayoutID, "detail", holds[0].Detail)
	return nil
}

// sign signs the plans with consecutive nonces from the next free one. On
// error it also returns the attempts signed before it.
func (s *Sender) sign(ctx context.Context, plans []planned) ([]*payout.Attempt, error) {
	now := time.Now()
	attempts := make([]*payout.Attempt, len(plans))
	nonce := s.st.nextNonce
	for i, pl := range plans {
		var pre *payout.Attempt
		if pl.pre != nil {
			var err error
			if pre, err = s.signAttempt(ctx, pl.p.ID, nonce, pl.preGas, pl.fees, *pl.pre, payout.AttemptApprove,
				payout.SigningIntent{Kind: payout.IntentApprove}, now); err != nil {
				return attempts[:i], err
			}
			nonce++
		}
		a, err := s.signAttempt(ctx, pl.p.ID, nonce, pl.gas, pl.fees, pl.call, payout.AttemptTransfer, s.intentOf(pl), now)
		if err != nil {
			return attempts[:i], err
		}
		a.Chunk = pl.chunk
		if pre != nil {
			a.Chunk.Approve = pre
		}
		attempts[i] = a
		nonce = nextNonceAfter(a)
	}
	return attempts, nil
}

// nextNonceAfter is the nonce after a's: one more, or two when a also
// delegates the wallet (the authorization uses a nonce too).
func nextNonceAfter(a *payout.Attempt) uint64 {
	if a.Chunk != nil && a.Chunk.Delegates {
		return a.Nonce + 2
	}
	return a.Nonce + 1
}

// holdUnsigned makes plans the signer could not sign wait queued with
// reason signer_unavailable; they are planned again, from the next free
// nonce, once it can sign.
func (s *Sender) holdUnsigned(ctx context.Context, plans []planned, cause error) error {
	holds := make([]payout.Hold, len(plans))
	ps := make([]*payout.Payout, len(plans))
	for i, pl := range plans {
		holds[i] = payout.Hold{PayoutID: pl.p.ID, Reason: payout.ReasonSignerUnavailable,
			Detail: "the wallet's signer cannot sign now (" + cause.Error() + "); the payout waits until it is back"}
		ps[i] = pl.p
	}
	holds, err := s.handOff(ctx, holds, ps) // another wallet of the chain may pay it now
	if err != nil {
		return err
	}
	return s.hold(ctx, holds)
}

// intentOf says what a planned transaction is meant to do: pay its
// payout, or (a batch transaction) many.
func (s *Sender) intentOf(pl planned) payout.SigningIntent {
	if pl.chunk != nil {
		return payout.SigningIntent{Kind: payout.IntentBatch}
	}
	return payout.SigningIntent{Kind: payout.IntentTransfer, To: pl.p.To, Token: s.cfg.Chain.Assets[pl.p.Asset].Token, Amount: pl.p.Amount}
}

// signAttempt signs one transaction and returns it as an attempt; intent
// (its payout id set here) travels with ctx to the signer.
func (s *Sender) signAttempt(ctx context.Context, payoutID string, nonce, gas uint64, f evm.Fees, call evm.Call,
	kind payout.AttemptKind, intent payout.SigningIntent, now time.Time) (*payout.Attempt, error) {
	intent.PayoutID = payoutID
	ctx = payout.WithSigningIntent(ctx, intent)
	chainID := new(big.Int).SetUint64(s.cfg.Chain.ChainID)
	tx, err := evm.SignTransfer(ctx, s.cfg.Signer, chainID, nonce, gas, f, call)
	if err != nil {
		return nil, fmt.Errorf("payout %s: %w", payoutID, err)
	}
	raw, err := tx.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode transaction: %w", err)
	}
	return &payout.Attempt{
		PayoutID: payoutID, ChainID: s.cfg.Chain.ChainID, Sender: s.sender, Nonce: nonce,
		TxHash: tx.Hash(), RawTx: raw, GasLimit: gas, MaxFeePerGas: f.MaxFeePerGas,
		MaxPriorityFeePerGas: f.MaxPriorityFeePerGas, Kind: kind, CreatedAt: now,
	}, nil
}

// submitted records stored attempts in the cache and broadcasts them: a
// small round on its own goroutine while the loop goes on (see sendOn).
func (s *Sender) submitted(ctx context.Context, plans []planned, attempts []*payout.Attempt) {
	s.st.nextNonce = nextNonceAfter(attempts[len(attempts)-1])
	flights := make([]*flight, len(attempts))
	for i, a := range attempts {
		delete(s.st.held, a.PayoutID)
		f := s.newFlight(plans[i].p)
		if c := plans[i].chunk; c != nil {
			f.chunkOf(c.Amount)
			f.pre = c.Approve
			for _, id := range c.PayoutIDs {
				delete(s.st.held, id)
			}
		}
		f.attempts = []*payout.Attempt{a}
		s.st.addFlight(f)
		flights[i] = f
		s.log.Debug("payout submitted", "payout_id", a.PayoutID, "tx_hash", a.TxHash.Hex(), "nonce", a.Nonce)
	}
	s.cfg.Metrics.attempts.WithLabelValues(s.cfg.Chain.Name).Add(float64(len(attempts)))
	s.cfg.Metrics.transitions.WithLabelValues(s.cfg.Chain.Name, string(payout.StatusSubmitted)).Add(float64(len(attempts)))
	if len(attempts) < bulkRound {
		s.sendOn(ctx, flights)
		return
	}
	s.broadcast(ctx, flights, true)
}
