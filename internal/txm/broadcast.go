package txm

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
)

// outgoing is one batch of broadcasts: the latest attempt of each flight,
// lowest nonce first so that the node can execute them in order, after
// the approvals their batch transactions need.
//
// A small send round's batch goes out on its own goroutine (sendOn): the
// loop reads, plans, signs and stores the next round meanwhile, instead of
// waiting for the node's answer (about a quarter of a round at 500
// payouts a second). At most one batch is out at a time, and every other
// broadcast waits for it first (finishBroadcast), so transactions still
// reach the node in nonce order. The flights are touched only on the loop
// goroutine: the batch's goroutine sends bytes and keeps the answers, and
// the loop applies them when it finishes the batch.
type outgoing struct {
	flights []*flight
	sent    []*payout.Attempt // what was sent for each flight
	// accepted holds when each flight's payout was accepted, for the
	// flights' first broadcasts (accept-to-broadcast is observed once the
	// node answers); nil otherwise.
	accepted []time.Time
	pre      [][]byte // approvals to send first
	raws     [][]byte

	done chan struct{} // closed once the fields below are set
	errs []error
	err  error
}

// broadcast sends the flights' latest attempts and applies the nodes'
// answers before it returns. Failures are kept for a later re-broadcast:
// the signed transactions are safe in the store. firsts says these are the
// flights' first broadcasts.
func (s *Sender) broadcast(ctx context.Context, flights []*flight, firsts bool) {
	if !s.finishBroadcast(ctx) {
		return // the step ends; the tracker sends them later
	}
	o := s.prepareBroadcast(flights, firsts)
	o.send(ctx, s)
	s.apply(o)
}

// sendOn broadcasts new flights on their own goroutine (see outgoing).
// Until their answers are applied they count as sent at this head, so
// that the tracker does not send them again meanwhile; a batch that fails
// as a whole is marked unsent then, and re-sent by the tracker.
func (s *Sender) sendOn(ctx context.Context, flights []*flight) {
	if !s.finishBroadcast(ctx) {
		return // the step ends; the tracker sends them later
	}
	o := s.prepareBroadcast(flights, true)
	for _, f := range flights {
		f.lastSent = max(s.st.head, 1)
	}
	s.st.out = o
	sessionCtx, timeout := s.st.ctx, s.cfg.StepTimeout
	go func() {
		ctx, cancel := context.WithTimeout(sessionCtx, timeout)
		defer cancel()
		o.send(ctx, s)
	}()
}

// finishBroadcast waits for the batch out on its own goroutine, if any,
// and applies its answers; false when ctx ended first (the batch is still
// out, and nothing else may be sent before it).
func (s *Sender) finishBroadcast(ctx context.Context) bool {
	o := s.st.out
	if o == nil {
		return true
	}
	select {
	case <-o.done:
	case <-ctx.Done():
		return false
	}
	s.st.out = nil
	s.apply(o)
	return true
}

// prepareBroadcast makes the batch of flights.
func (s *Sender) prepareBroadcast(flights []*flight, firsts bool) *outgoing {
	slices.SortFunc(flights, func(a, b *flight) int { return cmp.Compare(a.nonce(), b.nonce()) })
	o := &outgoing{flights: flights, done: make(chan struct{}),
		sent: make([]*payout.Attempt, len(flights)), raws: make([][]byte, len(flights))}
	for i, f := range flights {
		if firsts {
			o.accepted = append(o.accepted, f.createdAt)
		}
		if f.preUnmined(s.st.chainNonce) {
			o.pre = append(o.pre, f.pre.RawTx)
		}
		o.sent[i] = f.last()
		o.raws[i] = o.sent[i].RawTx
	}
	return o
}

// send sends the batch, the approvals first: the chain refuses none of
// them for the other, but a batch transaction cannot be mined before its
// approval, so the approvals' outcomes show in theirs.
func (o *outgoing) send(ctx context.Context, s *Sender) {
	defer close(o.done)
	if len(o.pre) > 0 {
		errs, err := s.cfg.Client.SendRaw(ctx, o.pre)
		if err == nil {
			err = errors.Join(errs...)
		}
		if err != nil {
			s.log.Debug("approval broadcast: some nodes refused (already known is usual)", "err", err)
		}
	}
	o.errs, o.err = s.cfg.Client.SendRaw(ctx, o.raws)
	answered := time.Now()
	h := s.cfg.Metrics.acceptToSend.WithLabelValues(s.cfg.Chain.Name)
	for _, t := range o.accepted {
		h.Observe(answered.Sub(t).Seconds())
	}
}

// apply records the nodes' answers to a batch on its flights, on the loop
// goroutine. A flight settled or replaced since the batch went out is left
// as it is now.
func (s *Sender) apply(o *outgoing) {
	if o.err != nil {
		kind, _ := evm.Classify(o.err)
		s.cfg.Metrics.broadcasts.WithLabelValues(s.cfg.Chain.Name, string(kind)).Add(float64(len(o.raws)))
		s.log.Warn("broadcast failed; will retry", "count", len(o.raws), "err", o.err)
		for i, f := range o.flights {
			if f.last() == o.sent[i] && s.st.flights[f.payoutID] == f {
				f.lastSent = 0 // send it again at the next round
			}
		}
		return
	}
	for i, f := range o.flights {
		kind, _ := evm.Classify(o.errs[i])
		outcome := "ok"
		if o.errs[i] != nil {
			outcome = string(kind)
		}
		s.cfg.Metrics.broadcasts.WithLabelValues(s.cfg.Chain.Name, outcome).Inc()
		if f.last() != o.sent[i] || s.st.flights[f.payoutID] != f {
			continue
		}
		f.lastSent = max(s.st.head, 1)
		switch {
		case o.errs[i] == nil || kind == evm.KindAlreadyKnown:
			f.refusals = 0 // a node holds it
		case kind == evm.KindNonceTooLow:
		default:
			a := f.last()
			s.log.Warn("node refused transaction; will retry", "payout_id", f.payoutID,
				"tx_hash", a.TxHash.Hex(), "nonce", a.Nonce, "kind", kind, "err", o.errs[i])
			if evm.Refusal(kind) {
				f.refusals++
				f.refusal = string(kind) + ": " + truncate(o.errs[i].Error(), 300)
			}
		}
	}
}
