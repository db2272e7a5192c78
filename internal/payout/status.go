package payout

import (
	"fmt"

	"github.com/ethereum/go-ethereum/common"
)

// Status is where a payout is in its life. The happy path is
// queued → submitted → confirming → completed.
type Status string

// The statuses a payout can have.
const (
	// StatusQueued: accepted and stored, waiting for its sender to sign it.
	StatusQueued Status = "queued"
	// StatusSubmitted: a signed transaction is stored and being broadcast.
	StatusSubmitted Status = "submitted"
	// StatusStuck: signed and broadcast, but not mined, and the fee cap
	// forbids the next replacement (or its nonce was taken by a
	// transaction Sluice did not send). Reason says why; an operator may
	// raise the payout's fee cap (speed-up) or cancel it. Its transaction
	// may still be mined.
	StatusStuck Status = "stuck"
	// StatusConfirming: mined; waiting for the chain's confirmations.
	StatusConfirming Status = "confirming"
	// StatusCompleted: mined, successful and confirmed. Terminal.
	StatusCompleted Status = "completed"
	// StatusFailed: will never be paid; FailureCode says why. Terminal.
	StatusFailed Status = "failed"
	// StatusCancelled: cancelled before anything was signed, or by a
	// zero-value self-transfer that took the payout's nonce. Terminal.
	StatusCancelled Status = "cancelled"
	// StatusPendingApproval: stored, but the policy asks for approvals (a
	// quorum of approvers) or a hold (a delay) first; nothing is signed
	// until it moves to queued.
	StatusPendingApproval Status = "pending_approval"
	// StatusRejected: an approver rejected it, or its approvals expired;
	// FailureCode says which. Nothing was signed. Terminal.
	StatusRejected Status = "rejected"
	// StatusSigningOffline: its wallet's signer is down and an operator
	// exported its transaction, nonce reserved, to sign it offline
	// (OfflinePlan); it goes to submitted when the signed file is
	// submitted, or back to queued if the plan is voided. It cannot be
	// cancelled: the signed transaction may exist.
	StatusSigningOffline Status = "signing_offline"
)

// Statuses lists every status, in life order.
var Statuses = []Status{StatusPendingApproval, StatusQueued, StatusSigningOffline, StatusSubmitted, StatusStuck, StatusConfirming, StatusCompleted, StatusFailed, StatusCancelled, StatusRejected}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// Terminal reports whether a payout in s will never change again.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled || s == StatusRejected
}

// transitions lists the moves the state machine allows.
var transitions = map[Status][]Status{
	StatusPendingApproval: {StatusQueued, StatusRejected, StatusCancelled},
	StatusQueued:          {StatusSubmitted, StatusFailed, StatusCancelled, StatusSigningOffline},
	StatusSigningOffline:  {StatusSubmitted, StatusQueued},
	StatusSubmitted:       {StatusConfirming, StatusStuck},
	StatusStuck:           {StatusSubmitted, StatusConfirming, StatusCancelled},
	StatusConfirming:      {StatusCompleted, StatusFailed, StatusCancelled, StatusSubmitted, StatusQueued},
}

// CanMove reports whether a payout may go from one status to another.
func CanMove(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// EventType names the event written when a payout enters a status.
func (s Status) EventType() string {
	if s == StatusQueued {
		return EventRequeued // a new payout's event is EventCreated
	}
	return "payout." + string(s)
}

// EventRequeued is written when a payout goes back to the queue: the batch
// transaction that carried it reverted, so it is planned again.
const EventRequeued = "payout.requeued"

// EventCreated is the type of the event written when a payout is accepted.
const EventCreated = "payout.created"

// InFlight reports whether a payout in s has a signed transaction that is
// not yet seen mined.
func (s Status) InFlight() bool { return s == StatusSubmitted || s == StatusStuck }

// EventReorged is the type of the event written when a mined payout's block
// left the canonical chain and the payout went back to submitted.
const EventReorged = "payout.reorged"

// Events about a payout that do not change its status.
const (
	// EventReplaced: a new attempt at the payout's nonce was signed and
	// stored (a fee bump, or a cancel); the data is the payout.
	EventReplaced = "payout.replaced"
	// EventWaiting: a queued payout waits; Reason says why (e.g.
	// insufficient_funds, a fee over its cap).
	EventWaiting = "payout.waiting"
	// EventCancelRequested: cancel was asked for a payout already
	// broadcast; a zero-value self-transfer at its nonce will race it.
	EventCancelRequested = "payout.cancel_requested"
	// EventFeeCapRaised: an operator raised the payout's fee cap (speed-up).
	EventFeeCapRaised = "payout.fee_cap_raised"
	// EventReassigned: a queued payout its hot wallet could not cover was
	// handed to another hot wallet of the chain that can; "from" in the
	// data is the new wallet.
	EventReassigned = "payout.reassigned"
)

// WalletObjectID names a hot wallet as the object of its events.
func WalletObjectID(chainID uint64, addr common.Address) string {
	return fmt.Sprintf("wallet_%d_%s", chainID, addr.Hex())
}

// Events about a hot wallet (the object is WalletObjectID).
const (
	// EventWalletLowBalance: a hot wallet's balance of an asset fell below
	// its configured threshold.
	EventWalletLowBalance = "wallet.low_balance"
	// EventWalletForeignNonce: a nonce of the wallet was used by a
	// transaction Sluice did not send: someone else holds the key. The
	// wallet's sender stops until an operator acts.
	EventWalletForeignNonce = "wallet.foreign_nonce"
	// EventWalletDrift: reconciling the wallet's books with the chain over
	// a range of blocks left something unexplained: tokens or coin gone
	// without a payout or a fee of Sluice's, or a nonce used by a
	// transaction Sluice did not sign.
	EventWalletDrift = "wallet.drift"
)
