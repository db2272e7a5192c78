package payout

import (
	"fmt"
	"math/big"
	"strings"
)

// MaxAmount is the largest amount an EVM word can hold: 2^256 - 1.
var MaxAmount = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// ParseAmount parses an amount in base units (wei, token units) written as a
// decimal string of digits. It refuses signs, fractions, exponents, leading
// zeros, zero and anything above MaxAmount.
func ParseAmount(s string) (*big.Int, error) {
	if s == "" {
		return nil, &FieldError{Field: "amount", Code: CodeInvalidAmount, Message: "amount is required, in base units as a decimal string"}
	}
	if len(s) > 80 {
		return nil, &FieldError{Field: "amount", Code: CodeAmountTooLarge, Message: "amount is above 2^256-1"}
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return nil, &FieldError{Field: "amount", Code: CodeInvalidAmount,
				Message: fmt.Sprintf("amount %q must be a positive whole number of base units (digits only)", s)}
		}
	}
	if s[0] == '0' {
		if strings.Trim(s, "0") == "" {
			return nil, &FieldError{Field: "amount", Code: CodeInvalidAmount, Message: "amount must be greater than zero"}
		}
		return nil, &FieldError{Field: "amount", Code: CodeInvalidAmount, Message: fmt.Sprintf("amount %q has leading zeros", s)}
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, &FieldError{Field: "amount", Code: CodeInvalidAmount, Message: fmt.Sprintf("amount %q is not a number", s)}
	}
	if v.Cmp(MaxAmount) > 0 {
		return nil, &FieldError{Field: "amount", Code: CodeAmountTooLarge, Message: "amount is above 2^256-1"}
	}
	return v, nil
}

// ParseDecimal converts a human amount such as "1.5" into base units of an
// asset with the given decimals, exactly. It refuses signs, exponents,
// more fractional digits than the asset has, zero and overflow.
func ParseDecimal(s string, decimals uint8) (*big.Int, error) {
	bad := func(msg string) error {
		return &FieldError{Field: "amount", Code: CodeInvalidAmount, Message: fmt.Sprintf("amount %q %s", s, msg)}
	}
	if s == "" {
		return nil, bad("is empty")
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if hasDot && frac == "" || whole == "" && frac == "" {
		return nil, bad("is not a decimal number")
	}
	for _, part := range []string{whole, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return nil, bad("must be a positive decimal number like 12.5 (no signs, exponents or separators)")
			}
		}
	}
	if len(frac) > int(decimals) {
		return nil, bad(fmt.Sprintf("has %d decimal places; the asset has %d", len(frac), decimals))
	}
	digits := strings.TrimLeft(whole+frac+strings.Repeat("0", int(decimals)-len(frac)), "0")
	if digits == "" {
		return nil, bad("must be greater than zero")
	}
	if len(digits) > 80 {
		return nil, &FieldError{Field: "amount", Code: CodeAmountTooLarge, Message: fmt.Sprintf("amount %q is above 2^256-1 base units", s)}
	}
	v, _ := new(big.Int).SetString(digits, 10)
	if v.Cmp(MaxAmount) > 0 {
		return nil, &FieldError{Field: "amount", Code: CodeAmountTooLarge, Message: fmt.Sprintf("amount %q is above 2^256-1 base units", s)}
	}
	return v, nil
}

// FormatDecimal writes base units as a human decimal with the asset's
// decimals, without trailing zeros: FormatDecimal(1500000, 6) == "1.5".
func FormatDecimal(v *big.Int, decimals uint8) string {
	if v == nil {
		return ""
	}
	neg := v.Sign() < 0
	s := new(big.Int).Abs(v).String()
	if decimals > 0 {
		if len(s) <= int(decimals) {
			s = strings.Repeat("0", int(decimals)-len(s)+1) + s
		}
		cut := len(s) - int(decimals)
		whole, frac := s[:cut], strings.TrimRight(s[cut:], "0")
		s = whole
		if frac != "" {
			s += "." + frac
		}
	}
	if neg {
		s = "-" + s
	}
	return s
}
