package txm

import (
	"context"
	"fmt"

	"github.com/sluicepay/sluice/internal/payout"
)

// refusedRounds is how many broadcasts in a row every node must refuse a
// transaction (evm.Refusal) before its payout is marked stuck: one refusal
// may be one node's passing state, three at three heads are not.
const refusedRounds = 3

// explainRefusals makes a transaction the nodes keep refusing visible:
// its payout becomes stuck with ReasonBroadcastRefused and the node's own
// words, an event that webhooks and the event stream carry, instead of
// "submitted" for ever with the cause only in logs. The sender keeps
// offering it (a node may take it later, and then the payout goes back
// to submitted); meanwhile an operator may cancel it, which fills its
// nonce with a zero-value self-transfer so the payouts behind it move.
func (s *Sender) explainRefusals(ctx context.Context) error {
	var stick, unstick []payout.Hold
	var stickFlights, unstickFlights []*flight
	for _, f := range s.st.flights {
		switch {
		case f.foreign:
		case !f.stuck && f.refusals >= refusedRounds:
			detail := fmt.Sprintf("every node refused the signed transaction %s (nonce %d) %d times in a row: %s; it is offered again every block. Cancel the payout to fill its nonce with a zero-value self-transfer, or fix the cause (e.g. fund the wallet)",
				f.last().TxHash.Hex(), f.nonce(), f.refusals, f.refusal)
			stick = append(stick, payout.Hold{PayoutID: f.payoutID, Reason: payout.ReasonBroadcastRefused, Detail: detail})
			stickFlights = append(stickFlights, f)
		case f.refusedStuck && f.refusals == 0 && f.lastSent != 0:
			unstick = append(unstick, payout.Hold{PayoutID: f.payoutID}) // a node took it
			unstickFlights = append(unstickFlights, f)
		}
	}
	if len(stick) > 0 {
		if err := s.cfg.Store.MarkStuck(ctx, stick); err != nil {
			return fmt.Errorf("mark refused payouts stuck: %w", err)
		}
		for i, f := range stickFlights {
			f.stuck, f.refusedStuck = true, true
			s.cfg.Metrics.holds.WithLabelValues(s.cfg.Chain.Name, string(payout.ReasonBroadcastRefused)).Inc()
			s.log.Error("nodes keep refusing a transaction; payout marked stuck", "payout_id", f.payoutID,
				"nonce", f.nonce(), "refusal", f.refusal, "reason", stick[i].Reason)
		}
	}
	if len(unstick) > 0 {
		if err := s.cfg.Store.MarkStuck(ctx, unstick); err != nil {
			return fmt.Errorf("unstick accepted payouts: %w", err)
		}
		for _, f := range unstickFlights {
			f.stuck, f.refusedStuck, f.attemptHead = false, false, max(s.st.head, 1)
			s.log.Info("a node took the refused transaction; payout submitted again", "payout_id", f.payoutID, "nonce", f.nonce())
		}
	}
	return nil
}

// truncate shortens a node's message for a payout's status detail.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
