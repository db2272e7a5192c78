package payout

import (
	"errors"
	"fmt"
)

// Code is a stable, snake_case error code that clients may branch on.
type Code string

// The error codes Sluice answers with. They never change meaning.
const (
	CodeInvalidRequest        Code = "invalid_request"
	CodeMalformedJSON         Code = "malformed_json"
	CodeUnknownField          Code = "unknown_field"
	CodeBodyTooLarge          Code = "body_too_large"
	CodeUnsupportedMediaType  Code = "unsupported_media_type"
	CodeUnauthorized          Code = "unauthorized"
	CodeForbidden             Code = "forbidden"
	CodeNotFound              Code = "not_found"
	CodeMethodNotAllowed      Code = "method_not_allowed"
	CodeInvalidAddress        Code = "invalid_address"
	CodeInvalidChecksum       Code = "invalid_address_checksum"
	CodeZeroAddress           Code = "zero_address"
	CodeInvalidAmount         Code = "invalid_amount"
	CodeAmountTooLarge        Code = "amount_too_large"
	CodeUnknownChain          Code = "unknown_chain"
	CodeUnknownAsset          Code = "unknown_asset"
	CodeInvalidExternalID     Code = "invalid_external_id"
	CodeInvalidMetadata       Code = "invalid_metadata"
	CodeIdempotencyKeyMissing Code = "idempotency_key_missing"
	CodeIdempotencyKeyInvalid Code = "idempotency_key_invalid"
	CodeIdempotencyInFlight   Code = "idempotency_key_in_use"
	CodeIdempotencyMismatch   Code = "idempotency_key_reused"
	CodeDuplicateExternalID   Code = "duplicate_external_id"
	CodeNotCancellable        Code = "payout_not_cancellable"
	CodeNotRebroadcastable    Code = "payout_not_rebroadcastable"
	CodeNotInFlight           Code = "payout_not_in_flight"
	CodeInvalidPriority       Code = "invalid_priority"
	CodeInvalidFee            Code = "invalid_fee"
	CodeInvalidCursor         Code = "invalid_cursor"
	CodeInvalidLimit          Code = "invalid_limit"
	CodeInvalidStatus         Code = "invalid_status"
	CodeUnknownEventType      Code = "unknown_event_type"
	CodeInternal              Code = "internal_error"
	CodeUnavailable           Code = "service_unavailable"

	// API keys, request signing, rate limits and versions (issue 5).
	CodeInvalidScope       Code = "invalid_scope"
	CodeInvalidAPIVersion  Code = "invalid_api_version"
	CodeSignatureMissing   Code = "signature_missing"
	CodeSignatureMalformed Code = "signature_malformed"
	CodeSignatureExpired   Code = "signature_expired"
	CodeSignatureInvalid   Code = "signature_invalid"
	CodeSignatureReplayed  Code = "signature_replayed"
	CodeRateLimited        Code = "rate_limited"
	// CodeInvalidBatch: rows of a batch are invalid; errors lists each.
	CodeInvalidBatch Code = "invalid_batch"

	// Failure codes set on a payout that ends failed.
	FailureWouldRevert       Code = "transfer_would_revert"
	FailureInsufficientFunds Code = "insufficient_funds"
	FailureRevertedOnChain   Code = "reverted_on_chain"
	FailureInvalidTx         Code = "invalid_transaction"

	// Reasons a payout waits (queued) or is stuck; see Payout.Reason.
	ReasonInsufficientFunds Code = "insufficient_funds"
	ReasonFeeCapReached     Code = "fee_cap_reached"
	ReasonForeignNonce      Code = "nonce_used_by_foreign_tx"
	ReasonCancelFailed      Code = "cancel_lost_race"
	// ReasonBroadcastRefused: every node refused the payout's signed
	// transaction for a reason a fee bump does not cure (the detail quotes
	// the node). It goes back to submitted once a node takes it.
	ReasonBroadcastRefused  Code = "broadcast_refused"
	ReasonSignerUnavailable Code = "signer_unavailable"
	// ReasonChunkReverted: the batch transaction that carried the payout
	// was mined but reverted, so nobody in it was paid; it is planned
	// again (its fee was paid by the wallet and shows on the attempt).
	ReasonChunkReverted Code = "batch_transaction_reverted"
)

// Sentinel errors that callers branch on.
var (
	ErrNotFound        = errors.New("not found")
	ErrNotCancellable  = errors.New("payout is not cancellable in its status")
	ErrNotInFlight     = errors.New("payout has no transaction in flight")
	ErrLeaseHeld       = errors.New("lease held by another owner")
	ErrNonceConflict   = errors.New("nonce already used for this sender")
	ErrIdempotencyBusy = errors.New("idempotency key in use by a request in flight")
	// ErrSignerUnavailable wraps a signer's failure to sign (down, refused,
	// unreachable): the payout waits and nothing is stored.
	ErrSignerUnavailable = errors.New("signer unavailable")
)

// FieldError says which field of a request is wrong and why.
type FieldError struct {
	Field   string // JSON field name, e.g. "amount"
	Code    Code
	Message string // safe to show to the client; names the value where useful
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Message) }

// DuplicateExternalIDError is returned when a payout's external_id is taken.
type DuplicateExternalIDError struct {
	ExternalID string
	ExistingID string // the payout that already has it
}

func (e *DuplicateExternalIDError) Error() string {
	return fmt.Sprintf("external_id %q is already used by payout %s", e.ExternalID, e.ExistingID)
}

// IdempotencyConflictError is returned by Store.CreatePayout when the
// idempotency key was used before; Existing is what was stored then.
type IdempotencyConflictError struct {
	Existing *IdempotencyRecord
}

func (e *IdempotencyConflictError) Error() string {
	return fmt.Sprintf("idempotency key %q was used before", e.Existing.Key)
}

// StaleError is returned by Store.SubmitAttempts when some payouts left
// `queued` (e.g. were cancelled) after they were read, and by
// Store.ReplaceAttempts when some are no longer in flight; nothing was
// written.
type StaleError struct {
	PayoutIDs []string
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("%d payout(s) changed status since they were read", len(e.PayoutIDs))
}
