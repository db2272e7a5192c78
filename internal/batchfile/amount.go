package batchfile

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/sluicepay/sluice/internal/payout"
)

// maxAmountLen bounds the amounts looked at digit by digit: 2^256-1 has 78
// digits, and an asset has at most 255 decimals.
const maxAmountLen = 340

func amountErr(code payout.Code, format string, args ...any) error {
	return &payout.FieldError{Field: "amount", Code: code, Message: fmt.Sprintf(format, args...)}
}

// parseBaseUnits parses a JSON row's amount: base units, as for a single
// payout.
func parseBaseUnits(s string, _ payout.Asset, _ bool) (*big.Int, error) {
	if scientific(s) {
		return nil, amountErr(CodeScientificNotation, "amount %q uses scientific notation; write the base units as digits", safeValue(s))
	}
	return payout.ParseAmount(s)
}

// parseDecimalUnits parses a CSV amount: an exact decimal in the asset's
// units, such as 12.5. Trailing zeros after the point are ignored (1.50 is
// 1.5, as a spreadsheet may format it), so only significant decimals count
// against the asset's.
func parseDecimalUnits(s string, asset payout.Asset, known bool) (*big.Int, error) {
	switch {
	case scientific(s):
		return nil, amountErr(CodeScientificNotation, "amount %q uses scientific notation; write it in full, like 1000000 or 0.001", safeValue(s))
	case s[0] == '-':
		return nil, amountErr(payout.CodeInvalidAmount, "amount %q is negative; amounts must be greater than zero", safeValue(s))
	case s[0] == '+':
		return nil, amountErr(payout.CodeInvalidAmount, "amount %q must be written without a sign", safeValue(s))
	case strings.ContainsAny(s, ", _'"):
		return nil, amountErr(payout.CodeInvalidAmount, "amount %q has a thousands separator or a decimal comma; write digits with a dot as the decimal point, like 1234.5", safeValue(s))
	case len(s) > maxAmountLen:
		return nil, amountErr(payout.CodeAmountTooLarge, "amount %q is too long", safeValue(s))
	}
	whole, frac, dot := strings.Cut(s, ".")
	if dot && frac == "" || whole == "" && frac == "" || !digits(whole) || !digits(frac) {
		return nil, amountErr(payout.CodeInvalidAmount, "amount %q is not a decimal number like 12.5", safeValue(s))
	}
	frac = strings.TrimRight(frac, "0")
	if strings.Trim(whole, "0") == "" && frac == "" {
		return nil, amountErr(payout.CodeInvalidAmount, "amount %q must be greater than zero", safeValue(s))
	}
	if !known {
		return nil, nil
	}
	if len(frac) > int(asset.Decimals) {
		return nil, amountErr(CodeTooManyDecimals, "amount %q has %d decimal places; %s has %d", safeValue(s), len(frac), asset.Symbol, asset.Decimals)
	}
	norm := whole
	if norm == "" {
		norm = "0"
	}
	if frac != "" {
		norm += "." + frac
	}
	v, err := payout.ParseDecimal(norm, asset.Decimals)
	if fe, ok := err.(*payout.FieldError); ok && fe.Code == payout.CodeAmountTooLarge {
		return nil, amountErr(payout.CodeAmountTooLarge, "amount %q is above 2^256-1 base units of %s", safeValue(s), asset.Symbol)
	} else if err != nil {
		return nil, err
	}
	return v, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// scientific reports whether s is a number with an exponent: a mantissa of
// digits and at most one point (with an optional sign), e or E, and an
// exponent of digits (with an optional sign).
func scientific(s string) bool {
	i := strings.IndexAny(s, "eE")
	if i <= 0 {
		return false
	}
	m, e := strings.TrimLeft(s[:i], "+-"), strings.TrimLeft(s[i+1:], "+-")
	if len(s[:i])-len(m) > 1 || len(s[i+1:])-len(e) > 1 || e == "" || !digits(e) {
		return false
	}
	whole, frac, _ := strings.Cut(m, ".")
	return whole+frac != "" && digits(whole) && digits(frac)
}
