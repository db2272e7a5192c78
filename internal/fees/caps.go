package fees

import (
	"errors"
	"fmt"
	"math/big"
)

// Caps are a chain's fee limits. A nil field is no limit.
type Caps struct {
	// MaxFeePerGas caps the max fee per gas (legacy: the gas price).
	MaxFeePerGas *big.Int
	// MaxFeePerPayout caps what one payout's transaction may cost at most:
	// gas limit × max fee per gas, in wei.
	MaxFeePerPayout *big.Int
}

// Reason is a stable snake_case code for why a payout waits.
type Reason string

// The reasons a quote is over its cap.
const (
	ReasonMaxFeePerGas Reason = "max_fee_per_gas_over_cap"
	ReasonPayoutFee    Reason = "payout_fee_over_cap"
)

// ErrOverCap means the quoted fee exceeds a cap; the payout should wait.
var ErrOverCap = errors.New("fee over cap")

// OverCapError is ErrOverCap with the reason and the amounts.
type OverCapError struct {
	Reason Reason
	// Need is the fee that would be paid at most: per gas for
	// ReasonMaxFeePerGas, per payout (gas limit × max fee) for
	// ReasonPayoutFee. Cap is the limit it exceeds, in the same unit.
	Need, Cap *big.Int
}

func (e *OverCapError) Error() string {
	return fmt.Sprintf("%s: needs %s wei, cap is %s wei", e.Reason, e.Need, e.Cap)
}

// Is makes errors.Is(err, ErrOverCap) true.
func (e *OverCapError) Is(target error) bool { return target == ErrOverCap }

// Check returns an *OverCapError when a transaction of gasLimit at the
// quote's max fee would exceed a cap, else nil. override, when not nil,
// is an operator's fee cap for this one payout (wei): it replaces both caps.
func (c Caps) Check(q Quote, gasLimit uint64, override *big.Int) error {
	perGas := q.MaxFee()
	total := new(big.Int).Mul(perGas, new(big.Int).SetUint64(gasLimit))
	if override != nil {
		if total.Cmp(override) > 0 {
			return &OverCapError{Reason: ReasonPayoutFee, Need: total, Cap: new(big.Int).Set(override)}
		}
		return nil
	}
	if c.MaxFeePerGas != nil && perGas.Cmp(c.MaxFeePerGas) > 0 {
		return &OverCapError{Reason: ReasonMaxFeePerGas, Need: perGas, Cap: new(big.Int).Set(c.MaxFeePerGas)}
	}
	if c.MaxFeePerPayout != nil && total.Cmp(c.MaxFeePerPayout) > 0 {
		return &OverCapError{Reason: ReasonPayoutFee, Need: total, Cap: new(big.Int).Set(c.MaxFeePerPayout)}
	}
	return nil
}

// Limit returns the highest max fee per gas the caps allow a transaction
// of gasLimit (nil: no limit), for Bump. override is as in Check.
func (c Caps) Limit(gasLimit uint64, override *big.Int) *big.Int {
	perPayout := func(total *big.Int) *big.Int {
		if gasLimit == 0 {
			return new(big.Int).Set(total)
		}
		return new(big.Int).Quo(total, new(big.Int).SetUint64(gasLimit))
	}
	if override != nil {
		return perPayout(override)
	}
	var limit *big.Int
	if c.MaxFeePerGas != nil {
		limit = new(big.Int).Set(c.MaxFeePerGas)
	}
	if c.MaxFeePerPayout != nil {
		p := perPayout(c.MaxFeePerPayout)
		if limit == nil || p.Cmp(limit) < 0 {
			limit = p
		}
	}
	return limit
}

func (c Caps) validate() error {
	if c.MaxFeePerGas != nil && c.MaxFeePerGas.Sign() <= 0 {
		return fmt.Errorf("fees: Config.Caps.MaxFeePerGas must be positive, got %s", c.MaxFeePerGas)
	}
	if c.MaxFeePerPayout != nil && c.MaxFeePerPayout.Sign() <= 0 {
		return fmt.Errorf("fees: Config.Caps.MaxFeePerPayout must be positive, got %s", c.MaxFeePerPayout)
	}
	return nil
}
