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
	"github.com/sluicepay/sluice/internal/fees"
	"github.com/sluicepay/sluice/internal/payout"
)

// maxReplace bounds how many attempts one round replaces, lowest nonces
// first; the rest follow in the next rounds.
const maxReplace = 500

// requestsEvery is how often the sender reads operators' requests (cancel,
// speed-up) for its payouts in flight.
const requestsEvery = time.Second

// cancelGas is the gas of the zero-value self-transfer that cancels.
const cancelGas = 21_000

// checkNonces reads the wallet's nonce on chain at a new head. A rising
// nonce means the queue moves (no replacement is due while it does). A
// pending nonce below the lowest flight's means the nodes lost it: it is
// re-broadcast at once. A nonce used although none of its flight's
// attempts mined, seen on two heads, was used by someone else.
//
// Only nonces below scannedNonce count as used without a receipt: the
// latest nonce is read after the head's scan, and the block mined
// meanwhile holds hundreds of this wallet's transactions that the next
// scan settles. Looking each of them up by hash (geth hashes the block's
// transactions until it finds one) was a third of the dev chain's CPU.
func (s *Sender) checkNonces(ctx context.Context) error {
	st := s.st
	if st.nonceHead == st.head {
		return nil
	}
	st.nonceHead = st.head
	latest, err := s.cfg.Client.Nonce(ctx, s.sender, "latest")
	if err != nil {
		return fmt.Errorf("chain nonce: %w", err)
	}
	if latest > st.chainNonce {
		st.chainNonce, st.progressHead = latest, st.head
	}
	if len(st.flights) == 0 {
		return nil
	}
	pending, err := s.cfg.Client.Nonce(ctx, s.sender, "pending")
	if err != nil {
		return fmt.Errorf("pending nonce: %w", err)
	}
	var consumed []*flight
	for _, f := range st.flights {
		switch n := f.nonce(); {
		case n < latest && n < st.scannedNonce && !f.foreign:
			consumed = append(consumed, f)
		case (n == pending || f.preUnmined(latest) && f.pre.Nonce == pending) && f.lastSent != 0 && f.lastSent < st.head:
			f.lastSent = 0 // a gap: the nodes do not hold this nonce; send it again now
			s.log.Info("nonce gap: the nodes lost a stored transaction; re-broadcasting", "payout_id", f.payoutID, "nonce", n)
		}
	}
	return s.checkConsumed(ctx, consumed)
}

// checkConsumed looks up the receipts of flights whose nonce the chain has
// used; a flight still without one on its second look lost its nonce to a
// transaction Sluice did not send.
func (s *Sender) checkConsumed(ctx context.Context, fs []*flight) error {
	if len(fs) == 0 {
		return nil
	}
	if err := s.lookupReceipts(ctx, fs); err != nil {
		return err
	}
	for _, f := range fs {
		if s.st.flights[f.payoutID] != f {
			continue // mined: settled by its receipt
		}
		if f.consumedSeen++; f.consumedSeen >= 2 {
			if err := s.foreignNonce(ctx, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// foreignNonce handles a payout whose nonce another transaction used: the
// payout is marked stuck naming that transaction, an alert is written, and
// the sender sends nothing new until an operator cancels the payout (it
// was not paid by Sluice; the other transaction may have paid anything).
func (s *Sender) foreignNonce(ctx context.Context, f *flight) error {
	n := f.nonce()
	detail := fmt.Sprintf("nonce %d of %s was used by a transaction Sluice did not send", n, s.sender.Hex())
	ref, block, err := s.cfg.Client.FindNonceUser(ctx, s.sender, n, s.st.head)
	if err == nil {
		detail = fmt.Sprintf("nonce %d of %s was used by transaction %s in block %d, which Sluice did not send: someone else holds this wallet's key. "+
			"The payout was not paid by Sluice; cancel it to resume sending", n, s.sender.Hex(), ref.Hash.Hex(), block)
	} else if !errors.Is(err, evm.ErrNotFound) {
		return fmt.Errorf("find the transaction that used nonce %d: %w", n, err)
	}
	if err := s.cfg.Store.MarkStuck(ctx, []payout.Hold{{PayoutID: f.payoutID, Reason: payout.ReasonForeignNonce, Detail: detail}}); err != nil {
		return fmt.Errorf("mark stuck: %w", err)
	}
	f.stuck, f.foreign = true, true
	data := map[string]any{"chain": s.cfg.Chain.Name, "wallet": s.sender.Hex(), "nonce": n, "payout_id": f.payoutID, "detail": detail}
	if err == nil {
		data["tx_hash"], data["block_number"] = ref.Hash.Hex(), block
	}
	s.alert(ctx, payout.EventWalletForeignNonce, data)
	s.cfg.Metrics.holds.WithLabelValues(s.cfg.Chain.Name, string(payout.ReasonForeignNonce)).Inc()
	s.log.Error("a transaction Sluice did not send used this wallet's nonce; sending stops", "payout_id", f.payoutID, "nonce", n, "detail", detail)
	s.setHalted(detail)
	return nil
}

// setHalted records why the sender sends nothing new ("" to resume).
func (s *Sender) setHalted(why string) {
	s.st.halted = why
	v := 0.0
	if why != "" {
		v = 1
	}
	s.cfg.Metrics.halted.WithLabelValues(s.cfg.Chain.Name, s.sender.Hex()).Set(v)
}

// readRequests applies operators' requests: a raised fee cap un-sticks a
// payout and replaces it at once; a cancel signs a zero-value self-transfer
// at the payout's nonce. A halted sender also learns here that the payout
// whose nonce was taken was cancelled.
func (s *Sender) readRequests(ctx context.Context) error {
	st := s.st
	if time.Since(st.requestsAt) < requestsEvery || len(st.flights) == 0 {
		return nil
	}
	st.requestsAt = time.Now()
	ps, err := s.cfg.Store.PayoutRequests(ctx, s.cfg.Chain.ChainID, s.sender)
	if err != nil {
		return fmt.Errorf("payout requests: %w", err)
	}
	var cancels []*flight
	for _, p := range ps {
		f := st.flights[p.ID]
		if f == nil || f.foreign {
			continue
		}
		if p.FeeCap != nil && (f.feeCap == nil || f.feeCap.Cmp(p.FeeCap) != 0) {
			f.feeCap = p.FeeCap
			if f.stuck && p.Status == payout.StatusSubmitted {
				f.stuck, f.attemptHead = false, 0 // replace at the next chance
				s.log.Info("fee cap raised; replacing", "payout_id", p.ID, "fee_cap", p.FeeCap)
			}
		}
		if p.CancelRequested && !f.cancelRequested {
			f.cancelRequested = true
			cancels = append(cancels, f)
		}
	}
	if err := s.releaseForeign(ctx); err != nil {
		return err
	}
	return s.replace(ctx, cancels, true)
}

// releaseForeign drops flights whose nonce was taken once an operator has
// cancelled their payout, and resumes sending when none is left.
func (s *Sender) releaseForeign(ctx context.Context) error {
	if s.st.halted == "" {
		return nil
	}
	left := 0
	for _, f := range s.st.flights {
		if !f.foreign {
			continue
		}
		p, err := s.cfg.Store.GetPayout(ctx, f.payoutID)
		if err != nil {
			return fmt.Errorf("payout %s: %w", f.payoutID, err)
		}
		if p.Status.InFlight() {
			left++
			continue
		}
		s.st.removeFlight(f)
	}
	if left == 0 {
		s.log.Warn("the payouts whose nonce was taken are resolved; sending resumes")
		s.setHalted("")
	}
	return nil
}

// replaceDue replaces the attempts that have waited too long: only when the
// wallet's queue has not moved for the priority's wait (a transaction
// further back in a moving queue waits its turn, it is not underpriced).
//
// A transaction whose max fee is below the next block's base fee cannot be
// mined at all: it is replaced as soon as a block has passed since it was
// signed, without waiting out the (doubling) schedule.
func (s *Sender) replaceDue(ctx context.Context) error {
	st := s.st
	if len(st.flights) == 0 {
		return nil
	}
	var baseFee *big.Int
	if q, err := s.cfg.Fees.Quote(ctx, fees.Standard); err == nil {
		baseFee = q.BaseFee
	} else {
		s.log.Debug("no fee quote to compare stalled transactions with", "err", err)
	}
	var due []*flight
	for _, f := range st.flights {
		if f.stuck || f.foreign || f.lastSent == 0 {
			continue
		}
		since := max(f.attemptHead, st.progressHead)
		priced := baseFee == nil || f.last().MaxFeePerGas.Cmp(baseFee) >= 0
		switch {
		case f.attemptHead == 0: // an operator raised its cap
		case !priced && st.head > f.attemptHead:
		case st.head > since && s.cfg.Fees.ReplaceDue(f.priority, st.head-since, len(f.attempts)):
		default:
			continue
		}
		due = append(due, f)
	}
	return s.replace(ctx, due, false)
}

// replace signs, stores and broadcasts a new attempt for each flight at its
// nonce: the latest attempt's transaction with both fees bumped (within the
// payout's cap), or, for cancel, a zero-value self-transfer (a cancel is
// bumped without a cap: the operator asked for it and it costs 21,000 gas).
// A flight whose cap forbids the bump is marked stuck.
func (s *Sender) replace(ctx context.Context, fs []*flight, cancel bool) error {
	if len(fs) == 0 {
		return nil
	}
	slices.SortFunc(fs, func(a, b *flight) int { return cmp.Compare(a.nonce(), b.nonce()) })
	fs = fs[:min(len(fs), maxReplace)]
	now := time.Now()
	var attempts []*payout.Attempt
	var stuck []payout.Hold
	var stuckFlights []*flight
	for _, f := range fs {
		a, hold, err := s.nextAttempt(ctx, f, cancel, now)
		if err != nil && !cancel && errors.Is(err, payout.ErrSignerUnavailable) && ctx.Err() == nil {
			// The signed transactions in flight are safe; their bumps wait
			// for the signer (they stay due) rather than restart the loop.
			s.log.Warn("signer unavailable: fee bumps wait", "payout_id", f.payoutID, "err", err)
			break
		}
		if err != nil {
			return err
		}
		if a == nil {
			stuck, stuckFlights = append(stuck, hold), append(stuckFlights, f)
			continue
		}
		attempts = append(attempts, a)
	}
	if err := s.markStuck(ctx, stuck, stuckFlights); err != nil {
		return err
	}
	if len(attempts) == 0 {
		return nil
	}
	err := s.cfg.Store.ReplaceAttempts(ctx, attempts)
	var stale *payout.StaleError
	if errors.As(err, &stale) {
		// Some left flight meanwhile (e.g. cancelled while stuck by its
		// nonce owner); the next round works from fresh state.
		s.log.Info("replacement skipped: payouts changed", "count", len(stale.PayoutIDs))
		return nil
	} else if err != nil {
		return fmt.Errorf("store replacements: %w", err)
	}
	sent := make([]*flight, 0, len(attempts))
	for _, a := range attempts {
		f := s.st.flights[a.PayoutID]
		if a.Kind == payout.AttemptApprove {
			f.pre, f.attemptHead, f.lastSent = a, max(s.st.head, 1), 0
		} else {
			f.attempts, f.attemptHead, f.lastSent = append(f.attempts, a), max(s.st.head, 1), 0
			s.st.byHash[a.TxHash] = f
		}
		sent = append(sent, f)
		kind := "fee_bump"
		if a.Kind == payout.AttemptCancel {
			kind = "cancel"
		}
		s.cfg.Metrics.replacements.WithLabelValues(s.cfg.Chain.Name, kind).Inc()
		s.log.Info("replacement signed", "payout_id", a.PayoutID, "kind", kind, "nonce", a.Nonce, "tx_hash", a.TxHash.Hex(),
			"max_fee_per_gas", a.MaxFeePerGas, "max_priority_fee_per_gas", a.MaxPriorityFeePerGas, "attempt", len(f.attempts))
	}
	s.cfg.Metrics.attempts.WithLabelValues(s.cfg.Chain.Name).Add(float64(len(attempts)))
	s.broadcast(ctx, sent, false)
	return nil
}

// nextAttempt signs f's next attempt, or returns the hold that marks it
// stuck when the cap forbids it.
func (s *Sender) nextAttempt(ctx context.Context, f *flight, cancel bool, now time.Time) (*payout.Attempt, payout.Hold, error) {
	last := f.last()
	if !cancel && f.preUnmined(s.st.chainNonce) {
		last = f.pre // the approval at the nonce before is what waits: bump it
	}
	var tx types.Transaction
	if err := tx.UnmarshalBinary(last.RawTx); err != nil {
		return nil, payout.Hold{}, fmt.Errorf("decode attempt %s: %w", last.TxHash.Hex(), err)
	}
	q, err := s.cfg.Fees.Quote(ctx, f.priority)
	if err != nil {
		return nil, payout.Hold{}, fmt.Errorf("fee quote: %w", err)
	}
	kind, call, gas := last.Kind, evm.CallOf(s.sender, &tx), tx.Gas()
	if cancel || kind == payout.AttemptCancel {
		kind, call, gas = payout.AttemptCancel, evm.Call{From: s.sender, To: s.sender, Value: new(big.Int)}, cancelGas
	}
	var next evm.Fees
	if kind == payout.AttemptCancel {
		next, err = fees.Bump(evm.FeesOf(&tx), q, nil)
	} else {
		next, err = s.cfg.Fees.Bump(evm.FeesOf(&tx), q, gas, f.feeCap)
	}
	var capped *fees.CapReachedError
	if errors.As(err, &capped) {
		need := new(big.Int).Mul(capped.Need.MaxFeePerGas, new(big.Int).SetUint64(gas))
		return nil, payout.Hold{PayoutID: f.payoutID, Reason: payout.ReasonFeeCapReached, Detail: fmt.Sprintf(
			"not mined after %d attempt(s); the next replacement needs a max fee of %s wei/gas (%s wei for the payout) but the cap allows %s wei/gas: "+
				"raise the payout's fee cap (speed-up) or cancel it", len(f.attempts), capped.Need.MaxFeePerGas, need, capped.Cap)}, nil
	} else if err != nil {
		return nil, payout.Hold{}, fmt.Errorf("bump fees of %s: %w", f.payoutID, err)
	}
	a, err := s.signAttempt(ctx, f.payoutID, last.Nonce, gas, next, call, kind, f.intent(kind, last == f.pre, s.sender), now)
	return a, payout.Hold{}, err
}

// markStuck records flights whose cap forbids the next replacement.
func (s *Sender) markStuck(ctx context.Context, holds []payout.Hold, fs []*flight) error {
	if len(holds) == 0 {
		return nil
	}
	if err := s.cfg.Store.MarkStuck(ctx, holds); err != nil {
		return fmt.Errorf("mark stuck: %w", err)
	}
	for i, f := range fs {
		f.stuck = true
		s.cfg.Metrics.holds.WithLabelValues(s.cfg.Chain.Name, string(payout.ReasonFeeCapReached)).Inc()
		s.log.Warn("payout stuck: the fee cap forbids the next replacement", "payout_id", f.payoutID, "detail", holds[i].Detail)
	}
	s.cfg.Metrics.transitions.WithLabelValues(s.cfg.Chain.Name, string(payout.StatusStuck)).Add(float64(len(holds)))
	return nil
}
