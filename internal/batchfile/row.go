package batchfile

import (
	"errors"
	"fmt"
	"math/big"
	"unicode/utf8"

	"github.com/sluicepay/sluice/internal/payout"
)

// ValidateRows validates JSON rows, whose amounts are in base units as
// decimal strings of digits (as for a single payout). Values are taken as
// given, without trimming. It returns a *FileError when there are no rows or
// more than o.MaxRows.
func ValidateRows(rows []RawRow, o Options) (*Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, &FileError{Code: CodeEmptyFile, Message: "the batch has no rows"}
	}
	if len(rows) > o.MaxRows {
		return nil, tooManyRows(o.MaxRows)
	}
	v := newValidator(o, parseBaseUnits)
	for i, r := range rows {
		if err := v.validate(i+1, r); err != nil {
			return nil, err
		}
	}
	return v.res, nil
}

func tooManyRows(max int) *FileError {
	return &FileError{Code: CodeTooManyRows,
		Message: fmt.Sprintf("the batch has more than %d rows, the most one batch may have; split it into several batches", max)}
}

// amountParser turns a row's amount into base units of asset. When known is
// false the asset could not be resolved: only the syntax is checked and the
// amount returned is nil.
type amountParser func(s string, asset payout.Asset, known bool) (*big.Int, error)

type resolved struct {
	chain payout.Chain
	asset payout.Asset
	err   error
}

// validator checks rows one at a time, the same way for CSV and JSON.
type validator struct {
	o      Options
	parse  amountParser
	res    *Result
	cache  map[[2]string]resolved // a batch names few (chain, asset) pairs
	seen   map[string]int         // external_id -> first row
	errbuf []RowError
}

func newValidator(o Options, parse amountParser) *validator {
	return &validator{o: o, parse: parse, res: &Result{},
		cache: map[[2]string]resolved{}, seen: map[string]int{}}
}

// rowError records errors of a row that cannot be split into fields (a
// wrong field count, broken quoting).
func (v *validator) rowError(e RowError) {
	v.res.Invalid++
	v.add(e)
}

func (v *validator) add(e RowError) {
	if len(v.res.Errors) >= v.o.MaxErrors {
		v.res.Omitted++
		return
	}
	v.res.Errors = append(v.res.Errors, e)
}

func (v *validator) lookup(chain, asset string) resolved {
	k := [2]string{chain, asset}
	r, ok := v.cache[k]
	if !ok {
		r.chain, r.asset, r.err = v.o.Catalog.Lookup(chain, asset)
		v.cache[k] = r
	}
	return r
}

// validate checks one row; it adds the row to the result or its errors.
// Only a resolver failure that is not a field error is returned.
func (v *validator) validate(n int, raw RawRow) error {
	errs := v.errbuf[:0]
	fail := func(col, val string, err error) {
		var fe *payout.FieldError
		if errors.As(err, &fe) {
			errs = append(errs, RowError{Row: n, Column: col, Value: safeValue(val), Code: fe.Code, Message: fe.Message})
		}
	}
	row := Row{Number: n, ExternalID: raw.ExternalID, Memo: raw.Memo}
	if raw.To == "" {
		fail("to", "", missing("to", "to is empty: the recipient's address is required"))
	} else if a, err := payout.ParseAddress("to", raw.To); err != nil {
		fail("to", raw.To, err)
	} else {
		row.To = a
	}
	chain, asset := orDefault(raw.Chain, v.o.Chain), orDefault(raw.Asset, v.o.Asset)
	if chain == "" {
		fail("chain", "", missing("chain", "no chain: the row has none and the batch gives no default chain"))
	}
	if asset == "" {
		fail("asset", "", missing("asset", "no asset: the row has none and the batch gives no default asset"))
	}
	var known bool
	var r resolved
	if chain != "" && asset != "" {
		r = v.lookup(chain, asset)
		if r.err != nil {
			var fe *payout.FieldError
			if !errors.As(r.err, &fe) {
				return fmt.Errorf("batchfile: resolve %s/%s: %w", chain, asset, r.err)
			}
			val := asset
			if fe.Field == "chain" {
				val = chain
			}
			fail(fe.Field, val, r.err)
		} else {
			known = true
			row.Chain, row.Asset = r.chain.Name, r.asset.Symbol
		}
	}
	if raw.Amount == "" {
		fail("amount", "", missing("amount", "amount is empty: the amount to pay is required"))
	} else if amt, err := v.parse(raw.Amount, r.asset, known); err != nil {
		fail("amount", raw.Amount, err)
	} else {
		row.Amount = amt
	}
	if err := checkExternalID(raw.ExternalID); err != nil {
		fail("external_id", raw.ExternalID, err)
	} else if raw.ExternalID != "" {
		if first, dup := v.seen[raw.ExternalID]; dup {
			fail("external_id", raw.ExternalID, &payout.FieldError{Field: "external_id", Code: payout.CodeDuplicateExternalID,
				Message: fmt.Sprintf("external_id %q is already used by row %d of this batch", safeValue(raw.ExternalID), first)})
		} else {
			v.seen[raw.ExternalID] = n
		}
	}
	if err := checkMemo(raw.Memo); err != nil {
		fail("memo", raw.Memo, err)
	}
	v.errbuf = errs
	if len(errs) > 0 {
		v.res.Invalid++
		for _, e := range errs {
			v.add(e)
		}
		return nil
	}
	v.res.Rows = append(v.res.Rows, row)
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func missing(field, msg string) error {
	return &payout.FieldError{Field: field, Code: CodeMissingValue, Message: msg}
}

// checkExternalID applies the rule of single payouts.
func checkExternalID(s string) error { return payout.ValidateExternalID(s) }

// checkMemo applies the rule of a single payout's metadata value.
func checkMemo(s string) error {
	if len(s) > payout.MaxMetadataValueLen {
		return &payout.FieldError{Field: "memo", Code: CodeInvalidMemo,
			Message: fmt.Sprintf("memo is %d bytes long; at most %d are allowed", len(s), payout.MaxMetadataValueLen)}
	}
	if !utf8.ValidString(s) {
		return &payout.FieldError{Field: "memo", Code: CodeInvalidMemo, Message: "memo is not valid UTF-8"}
	}
	return nil
}
