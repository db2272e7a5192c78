package fees

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/sluicepay/sluice/internal/evm"
)

// PriceBump is geth's default txpool.pricebump: a replacement must raise
// both fee fields by at least this percent. (Blob transactions need 100%;
// Sluice sends none.)
const PriceBump = 10

// ErrCapReached means the cap forbids the smallest replacement geth would
// accept. The payout is stuck until the cap is raised or it is cancelled.
var ErrCapReached = errors.New("fee cap reached")

// CapReachedError is ErrCapReached with what a replacement would need.
type CapReachedError struct {
	// Need is the smallest replacement geth accepts: both fields of the old
	// fees raised by PriceBump percent, rounded up.
	Need evm.Fees
	// Cap is the max fee per gas that was allowed.
	Cap *big.Int
}

func (e *CapReachedError) Error() string {
	return fmt.Sprintf("fee cap reached: replacement needs max fee %s wei/gas (tip %s), cap is %s",
		e.Need.MaxFeePerGas, e.Need.MaxPriorityFeePerGas, e.Cap)
}

// Is makes errors.Is(err, ErrCapReached) true.
func (e *CapReachedError) Is(target error) bool { return target == ErrCapReached }

// Reason is the stable code a stuck payout shows.
func (e *CapReachedError) Reason() string { return "fee_cap_reached" }

// MinReplacement returns the smallest value geth accepts in place of old:
// old × (100 + PriceBump) / 100 rounded up, and at least old + 1 (geth also
// requires a strict increase, which matters at 0-9 wei).
func MinReplacement(old *big.Int) *big.Int {
	n := new(big.Int).Mul(old, big.NewInt(100+PriceBump))
	n.Add(n, big.NewInt(99))
	n.Quo(n, big.NewInt(100))
	return bigMax(n, new(big.Int).Add(old, big.NewInt(1)))
}

// Bump returns the fees replacing old: each field at least
// MinReplacement(old) and at least the current quote's, the max fee never
// below the tip and never above limit (max fee per gas; nil is no limit).
// When the limit only allows less than the minimum, the max fee is clamped
// to it if the minimum still fits; otherwise Bump returns a
// *CapReachedError.
func Bump(old evm.Fees, current Quote, limit *big.Int) (evm.Fees, error) {
	if old.MaxFeePerGas == nil || old.MaxPriorityFeePerGas == nil {
		return evm.Fees{}, errors.New("bump: old fees are incomplete")
	}
	need := evm.Fees{
		MaxFeePerGas:         MinReplacement(old.MaxFeePerGas),
		MaxPriorityFeePerGas: MinReplacement(old.MaxPriorityFeePerGas),
	}
	need.MaxFeePerGas = bigMax(need.MaxFeePerGas, need.MaxPriorityFeePerGas)
	tip := bigMax(need.MaxPriorityFeePerGas, current.Fees.MaxPriorityFeePerGas)
	fee := bigMax(need.MaxFeePerGas, current.Fees.MaxFeePerGas, tip)
	if limit != nil && fee.Cmp(limit) > 0 {
		if need.MaxFeePerGas.Cmp(limit) > 0 {
			return evm.Fees{}, &CapReachedError{Need: need, Cap: new(big.Int).Set(limit)}
		}
		fee = new(big.Int).Set(limit)
		tip = bigMin(tip, fee)
	}
	if old.Legacy { // one gas price: both fields hold it
		tip = fee
	}
	return evm.Fees{MaxFeePerGas: fee, MaxPriorityFeePerGas: tip, Legacy: old.Legacy}, nil
}

// Headroom returns base × 1.125^k, multiplying by 9 and dividing by 8
// rounded up, k times, so the result covers k full blocks of base-fee rises
// exactly or slightly over, never under.
func Headroom(base *big.Int, k int) *big.Int {
	v := new(big.Int).Set(base)
	nine, eight, seven := big.NewInt(9), big.NewInt(8), big.NewInt(7)
	for range k {
		v.Mul(v, nine)
		v.Add(v, seven)
		v.Quo(v, eight)
	}
	return v
}

// bigMax returns a copy of the largest non-nil value, at least 0 (fees
// are never negative).
func bigMax(vs ...*big.Int) *big.Int {
	m := new(big.Int)
	for _, v := range vs {
		if v != nil && v.Cmp(m) > 0 {
			m.Set(v)
		}
	}
	return m
}

// bigMin returns a copy of the smaller of a and b.
func bigMin(a, b *big.Int) *big.Int {
	if a.Cmp(b) <= 0 {
		return new(big.Int).Set(a)
	}
	return new(big.Int).Set(b)
}
