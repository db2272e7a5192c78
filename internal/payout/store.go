package payout

import (
	"context"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// Store persists payouts, their attempts and their events. Every method that
// changes a payout writes its event in the same database transaction, and
// every method is atomic: on error nothing was written.
//
// Two adapters implement it (SQLite and PostgreSQL, package store); one
// conformance suite checks both.
type Store interface {
	// CreatePayout stores a new queued (or pending_approval) payout (Version 1) with its
	// payout.created event and, when idem is not nil, the idempotency record
	// holding the response, all in one transaction. p.CreatedAt and
	// p.UpdatedAt are set by the caller. It returns
	// *IdempotencyConflictError when (idem.Scope, idem.Key) exists, and
	// *DuplicateExternalIDError when p.ExternalID is taken.
	CreatePayout(ctx context.Context, p *Payout, idem *IdempotencyRecord) error
	// GetPayout returns ErrNotFound when there is no such payout.
	GetPayout(ctx context.Context, id string) (*Payout, error)
	// ListPayouts returns payouts newest first and whether more exist
	// beyond the page in the direction of travel.
	ListPayouts(ctx context.Context, f ListFilter) ([]*Payout, bool, error)
	// CancelPayout moves a queued payout to cancelled. A payout in flight
	// (submitted or stuck) gets CancelRequested (event
	// EventCancelRequested): its sender races a cancel transaction for the
	// nonce, and whichever mines decides. A payout stuck because another
	// transaction took its nonce (ReasonForeignNonce) is cancelled at once. Asking again changes nothing. It
	// returns ErrNotFound, or ErrNotCancellable when the payout is mined or
	// finished.
	CancelPayout(ctx context.Context, id string) (*Payout, error)
	// RaiseFeeCap sets the fee cap of a payout in flight (speed-up); a
	// stuck payout goes back to submitted so its sender replaces it again.
	// Event EventFeeCapRaised. It returns ErrNotFound, or ErrNotInFlight.
	RaiseFeeCap(ctx context.Context, id string, feeCap *big.Int) (*Payout, error)
	// GetIdempotency returns ErrNotFound when the key was never used.
	GetIdempotency(ctx context.Context, scope, key string) (*IdempotencyRecord, error)
	// DeleteIdempotencyBefore removes records created before t and says how
	// many it removed.
	DeleteIdempotencyBefore(ctx context.Context, t time.Time) (int64, error)

	// AcquireLease takes or renews the lease that makes owner the only
	// sender for (chainID, sender) until now+ttl. It returns ErrLeaseHeld
	// when another owner holds an unexpired lease.
	AcquireLease(ctx context.Context, chainID uint64, sender common.Address, owner string, ttl time.Duration) error
	// ReleaseLease gives the lease up if owner holds it.
	ReleaseLease(ctx context.Context, chainID uint64, sender common.Address, owner string) error

	// QueuedPayouts returns up to limit queued payouts of a sender, oldest first.
	QueuedPayouts(ctx context.Context, chainID uint64, sender common.Address, limit int) ([]*Payout, error)
	// FailQueued moves queued payouts to failed before any nonce was used.
	// Payouts no longer queued are left alone.
	FailQueued(ctx context.Context, failures []Failure) error
	// HoldQueued records why queued payouts wait (event EventWaiting when
	// the reason changes); an empty Reason clears it. Payouts no longer
	// queued are left alone.
	HoldQueued(ctx context.Context, holds []Hold) error
	// MoveQueued hands queued payouts from one hot wallet to another of the
	// same chain, clearing their waiting reason, with an EventReassigned
	// each, in one transaction. A payout no longer queued, or no longer
	// held by Move.From, is left alone.
	MoveQueued(ctx context.Context, moves []Move) error
	// MaxNonce returns the highest nonce ever allocated for a sender, and
	// false when none was.
	MaxNonce(ctx context.Context, chainID uint64, sender common.Address) (uint64, bool, error)
	// SubmitAttempts stores signed first attempts, allocating their nonces
	// (unique per chain and sender), and moves their payouts from queued to
	// submitted, in one transaction. When any payout is no longer queued it
	// writes nothing and returns *StaleError naming them; a nonce already
	// allocated gives ErrNonceConflict.
	SubmitAttempts(ctx context.Context, attempts []*Attempt) error
	// ReplaceAttempts stores new attempts (fee bumps or cancels) at the
	// nonce their payouts already hold, in one transaction, with an
	// EventReplaced each; a stuck payout goes back to submitted. When any
	// payout is not in flight or holds another nonce it writes nothing and
	// returns *StaleError naming them.
	ReplaceAttempts(ctx context.Context, attempts []*Attempt) error
	// MarkStuck moves submitted payouts to stuck with their reason; a hold
	// with no reason moves a stuck payout back to submitted, clearing it.
	// Others are left alone.
	MarkStuck(ctx context.Context, holds []Hold) error
	// InFlightAttempts returns every attempt of the sender's payouts that
	// are in flight (submitted or stuck), oldest nonce first.
	InFlightAttempts(ctx context.Context, chainID uint64, sender common.Address) ([]*Attempt, error)
	// InFlightPayouts returns the sender's payouts in flight.
	InFlightPayouts(ctx context.Context, chainID uint64, sender common.Address) ([]*Payout, error)
	// PayoutRequests returns the sender's payouts in flight that carry an
	// operator's request: CancelRequested or a FeeCap.
	PayoutRequests(ctx context.Context, chainID uint64, sender common.Address) ([]*Payout, error)
	// ConfirmingPayouts returns the sender's payouts that are mined and
	// waiting for confirmations.
	ConfirmingPayouts(ctx context.Context, chainID uint64, sender common.Address) ([]*Payout, error)
	// MarkMined records receipts and moves their payouts from submitted or
	// stuck to confirming, with tx hash, block, fee, outcome and whether
	// the cancel mined.
	MarkMined(ctx context.Context, receipts []Receipt) error
	// MarkReorged moves confirming payouts whose block left the canonical
	// chain back to submitted, clearing block and fee; their event is
	// EventReorged.
	MarkReorged(ctx context.Context, payoutIDs []string) error
	// Finalize moves confirming payouts to completed, to cancelled when the
	// cancel mined, or to failed with FailureRevertedOnChain (fee kept)
	// when their receipt failed.
	Finalize(ctx context.Context, payoutIDs []string) error

	// OldestUnfinished returns the oldest payout not yet in a terminal
	// status, or ErrNotFound when every payout is finished.
	OldestUnfinished(ctx context.Context) (*Payout, error)
	// CountByStatus counts payouts per status.
	CountByStatus(ctx context.Context) (map[Status]int64, error)
	// ListEvents returns events with Seq > afterSeq, oldest first.
	ListEvents(ctx context.Context, afterSeq int64, limit int) ([]Event, error)
	// ListEventPage returns events newest first (in commit order, not by
	// id) and whether more exist beyond the page in the direction of
	// travel. A cursor that names no event returns ErrNotFound.
	ListEventPage(ctx context.Context, f EventFilter) ([]Event, bool, error)
	// GetEvent returns the event with this id (Seq included), or
	// ErrNotFound.
	GetEvent(ctx context.Context, id string) (*Event, error)
	// AppendEvent writes an event about an object that is not a payout
	// (e.g. WalletObjectID); data is encoded as JSON.
	AppendEvent(ctx context.Context, objectID, eventType string, data any) error
	// ListAttempts returns every attempt of a payout, oldest first.
	ListAttempts(ctx context.Context, payoutID string) ([]*Attempt, error)

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}

// Signer signs 32-byte digests for one address.
type Signer interface {
	// Address is the account the signer signs for.
	Address() common.Address
	// SignDigest returns a 65-byte [R || S || V] signature with V in {0, 1}
	// and a low S.
	SignDigest(ctx context.Context, digest [32]byte) ([]byte, error)
}
