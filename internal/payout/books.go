package payout

import "math/big"

// Paid is what a hot wallet's payouts of one asset paid over a range of
// blocks: the payouts whose transaction was mined there and succeeded
// (a mined cancel or a reverted transaction pays no amount, only its fee).
// It is the ledger side of a reconciliation with the chain.
type Paid struct {
	Asset   string
	Amount  *big.Int // base units
	Payouts int
}
