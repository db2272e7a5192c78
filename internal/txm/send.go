package txm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
)

// gasHeadroom is added to estimates of contract calls (in percent): the
// state a transaction meets when mined may differ from the one simulated.
const gasHeadroom = 25

// planned is a queued payout that simulated fine and is ready to be signed.
type planned struct {
	p    *payout.Payout
	call evm.Call
	gas  uint64
}

// sendQueued sends one batch of queued payouts and says whether the batch
// was full (more are probably waiting). Each batch is its own step, so a
// backlog of any size never runs into the step deadline, and receipts are
// tracked between batches.
func (s *Sender) sendQueued(ctx context.Context) (more bool, err error) {
	if !s.leaseValid() {
		if err := s.renewLease(ctx); err != nil {
			return false, err
		}
	}
	ps, err := s.cfg.Store.QueuedPayouts(ctx, s.cfg.Chain.ChainID, s.sender, s.cfg.BatchSize)
	if err != nil {
		return false, fmt.Errorf("queued payouts: %w", err)
	}
	if len(ps) == 0 {
		return false, nil
	}
	if err := s.sendBatch(ctx, ps); err != nil {
		return false, err
	}
	return len(ps) == s.cfg.BatchSize, nil
}

// sendBatch simulates, signs, stores and broadcasts one batch of payouts.
func (s *Sender) sendBatch(ctx context.Context, ps []*payout.Payout) error {
	plans, err := s.simulate(ctx, ps)
	if err != nil || len(plans) == 0 {
		return err
	}
	fees, err := s.quoteFees(ctx)
	if err != nil {
		return err
	}
	for range 5 {
		attempts, err := s.sign(ctx, plans, fees)
		if err != nil {
			return err
		}
		err = s.cfg.Store.SubmitAttempts(ctx, attempts)
		var stale *payout.StaleError
		switch {
		case errors.As(err, &stale):
			plans = slices.DeleteFunc(plans, func(pl planned) bool { return slices.Contains(stale.PayoutIDs, pl.p.ID) })
			if len(plans) == 0 {
				return nil
			}
			continue
		case errors.Is(err, payout.ErrNonceConflict):
			s.log.Warn("nonce already allocated; re-reading nonces", "next_nonce", s.st.nextNonce)
			if err := s.initNonce(ctx); err != nil {
				return err
			}
			continue
		case err != nil:
			return fmt.Errorf("store attempts: %w", err)
		}
		s.submitted(ctx, plans, attempts)
		return nil
	}
	return errors.New("could not store attempts after 5 tries")
}

// simulate estimates every payout's transaction. Payouts whose transfer
// would revert fail now, before any nonce is used.
func (s *Sender) simulate(ctx context.Context, ps []*payout.Payout) ([]planned, error) {
	plans := make([]planned, 0, len(ps))
	var failures []payout.Failure
	for _, p := range ps {
		asset, ok := s.cfg.Chain.Assets[p.Asset]
		if !ok {
			failures = append(failures, payout.Failure{PayoutID: p.ID, Code: payout.FailureInvalidTx,
				Message: fmt.Sprintf("asset %q is no longer configured on chain %q", p.Asset, p.Chain)})
			continue
		}
		plans = append(plans, planned{p: p, call: evm.TransferCall(s.sender, asset.Token, p.To, p.Amount)})
	}
	calls := make([]evm.Call, len(plans))
	for i, pl := range plans {
		calls[i] = pl.call
	}
	gas, errs, err := s.cfg.Client.EstimateGas(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("estimate gas: %w", err)
	}
	ok := plans[:0]
	for i, pl := range plans {
		if errs[i] != nil {
			f, deterministic := simulationFailure(pl.p.ID, errs[i])
			if !deterministic {
				return nil, fmt.Errorf("estimate gas for %s: %w", pl.p.ID, errs[i])
			}
			failures = append(failures, f)
			continue
		}
		pl.gas = gasLimit(pl.call, gas[i])
		ok = append(ok, pl)
	}
	if err := s.failQueued(ctx, failures); err != nil {
		return nil, err
	}
	return ok, nil
}

// simulationFailure turns a deterministic estimate error into a failure.
func simulationFailure(id string, err error) (payout.Failure, bool) {
	kind, deterministic := evm.Classify(err)
	if !deterministic {
		return payout.Failure{}, false
	}
	code := payout.FailureWouldRevert
	if kind == evm.KindInsufficientFunds {
		code = payout.FailureInsufficientFunds
	}
	return payout.Failure{PayoutID: id, Code: code, Message: "simulation failed: " + err.Error()}, true
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

// quoteFees returns EIP-1559 fees, fetched once per head: a max fee of
// twice the base fee plus the node's suggested tip, which survives six full
// blocks of base-fee rises.
func (s *Sender) quoteFees(ctx context.Context) (evm.Fees, error) {
	st := s.st
	if st.fees.MaxFeePerGas != nil && st.feeHead == st.head {
		return st.fees, nil
	}
	head, err := s.cfg.Client.Header(ctx, nil)
	if err != nil {
		return evm.Fees{}, fmt.Errorf("fee quote head: %w", err)
	}
	tip, err := s.cfg.Client.SuggestTip(ctx)
	if err != nil {
		return evm.Fees{}, fmt.Errorf("fee quote tip: %w", err)
	}
	base := head.BaseFee
	if base == nil {
		base = new(big.Int)
	}
	maxFee := new(big.Int).Add(new(big.Int).Mul(base, big.NewInt(2)), tip)
	st.fees = evm.Fees{MaxFeePerGas: maxFee, MaxPriorityFeePerGas: tip}
	st.feeHead = st.head
	return st.fees, nil
}

// sign signs the plans with consecutive nonces from the next free one.
func (s *Sender) sign(ctx context.Context, plans []planned, fees evm.Fees) ([]*payout.Attempt, error) {
	chainID := new(big.Int).SetUint64(s.cfg.Chain.ChainID)
	now := time.Now()
	attempts := make([]*payout.Attempt, len(plans))
	for i, pl := range plans {
		nonce := s.st.nextNonce + uint64(i)
		tx, err := evm.SignTransfer(ctx, s.cfg.Signer, chainID, nonce, pl.gas, fees, pl.call)
		if err != nil {
			return nil, fmt.Errorf("payout %s: %w", pl.p.ID, err)
		}
		raw, err := tx.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("encode transaction: %w", err)
		}
		attempts[i] = &payout.Attempt{
			PayoutID: pl.p.ID, ChainID: s.cfg.Chain.ChainID, Sender: s.sender, Nonce: nonce,
			TxHash: tx.Hash(), RawTx: raw, GasLimit: pl.gas, MaxFeePerGas: fees.MaxFeePerGas,
			MaxPriorityFeePerGas: fees.MaxPriorityFeePerGas, CreatedAt: now,
		}
	}
	return attempts, nil
}

// submitted records stored attempts in the cache and broadcasts them.
func (s *Sender) submitted(ctx context.Context, plans []planned, attempts []*payout.Attempt) {
	s.st.nextNonce += uint64(len(attempts))
	flights := make([]*flight, len(attempts))
	for i, a := range attempts {
		f := &flight{payoutID: a.PayoutID, createdAt: plans[i].p.CreatedAt, attempts: []*payout.Attempt{a}}
		s.st.addFlight(f)
		flights[i] = f
		s.log.Debug("payout submitted", "payout_id", a.PayoutID, "tx_hash", a.TxHash.Hex(), "nonce", a.Nonce)
	}
	s.cfg.Metrics.attempts.WithLabelValues(s.cfg.Chain.Name).Add(float64(len(attempts)))
	s.cfg.Metrics.transitions.WithLabelValues(s.cfg.Chain.Name, string(payout.StatusSubmitted)).Add(float64(len(attempts)))
	s.broadcast(ctx, flights)
}

// broadcast sends the latest attempt of each flight, lowest nonce first so
// that the node can execute them in order. Failures are kept for a later
// re-broadcast: the signed transactions are safe in the store.
func (s *Sender) broadcast(ctx context.Context, flights []*flight) {
	slices.SortFunc(flights, func(a, b *flight) int {
		return cmp.Compare(a.attempts[0].Nonce, b.attempts[0].Nonce)
	})
	raws := make([][]byte, len(flights))
	for i, f := range flights {
		raws[i] = f.attempts[len(f.attempts)-1].RawTx
	}
	errs, err := s.cfg.Client.SendRaw(ctx, raws)
	if err != nil {
		kind, _ := evm.Classify(err)
		s.cfg.Metrics.broadcasts.WithLabelValues(s.cfg.Chain.Name, string(kind)).Add(float64(len(raws)))
		s.log.Warn("broadcast failed; will retry", "count", len(raws), "err", err)
		return
	}
	for i, f := range flights {
		f.lastSent = max(s.st.head, 1)
		kind, _ := evm.Classify(errs[i])
		outcome := "ok"
		if errs[i] != nil {
			outcome = string(kind)
		}
		s.cfg.Metrics.broadcasts.WithLabelValues(s.cfg.Chain.Name, outcome).Inc()
		if errs[i] != nil && kind != evm.KindAlreadyKnown && kind != evm.KindNonceTooLow {
			a := f.attempts[len(f.attempts)-1]
			s.log.Warn("node refused transaction; will retry", "payout_id", f.payoutID,
				"tx_hash", a.TxHash.Hex(), "nonce", a.Nonce, "kind", kind, "err", errs[i])
		}
	}
}
