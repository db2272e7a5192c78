package payout

import (
	"context"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
)

// SigningIntent is what a transaction handed to a signer is meant to do,
// told beside the transaction so that a signer that can (a networked MPC
// party) checks the two agree before it takes part: a payout's transfer
// must pay exactly its payee and amount, a cancel must be a zero-value
// transfer to the wallet itself.
type SigningIntent struct {
	PayoutID string          `json:"payout_id"`
	Kind     IntentKind      `json:"kind"`
	To       common.Address  `json:"to"`              // the payee (transfer) or the wallet (cancel)
	Token    *common.Address `json:"token,omitempty"` // the ERC-20 contract of a token transfer; nil: the native coin
	Amount   *big.Int        `json:"amount"`          // base units (0 for a cancel)
}

// IntentKind says what kind of transaction a SigningIntent describes.
type IntentKind string

// The kinds of intent. Batch transactions and approvals pay or allow many
// payouts at once; a signer cannot check their contents against one
// payout and relies on its own limits.
const (
	IntentTransfer IntentKind = "transfer"
	IntentCancel   IntentKind = "cancel"
	IntentBatch    IntentKind = "batch"
	IntentApprove  IntentKind = "approve"
)

type intentKey struct{}

// WithSigningIntent returns ctx carrying what the transaction signed under
// it is meant to do.
func WithSigningIntent(ctx context.Context, in SigningIntent) context.Context {
	return context.WithValue(ctx, intentKey{}, in)
}

// SigningIntentFrom returns the intent ctx carries, if any.
func SigningIntentFrom(ctx context.Context) (SigningIntent, bool) {
	in, ok := ctx.Value(intentKey{}).(SigningIntent)
	return in, ok
}
