// Package batchfile reads and validates the rows of a batch payout: a CSV
// upload (amounts as decimals in the asset's units) or JSON rows (amounts in
// base units). Every row is checked and all errors are reported together, so
// that a user fixes a file once rather than once per mistake.
//
// It owns only the parsing and the per-row checks. The caller decides what to
// do with a partly valid batch (all_or_nothing or accept_valid), and checks
// whether an external_id is already used by a stored payout: only duplicates
// within the input are found here.
//
// Like internal/payout, it imports only the standard library, go-ethereum's
// common value types and internal/payout.
package batchfile

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/sluicepay/sluice/internal/payout"
)

// Codes this package adds to those of internal/payout. A row error may also
// carry payout.CodeInvalidAddress, payout.CodeInvalidChecksum,
// payout.CodeZeroAddress, payout.CodeInvalidAmount, payout.CodeAmountTooLarge,
// payout.CodeUnknownChain, payout.CodeUnknownAsset,
// payout.CodeInvalidExternalID and payout.CodeDuplicateExternalID.
const (
	// Row errors.

	// CodeScientificNotation: an amount written with an exponent (1e6, 1E-3).
	CodeScientificNotation payout.Code = "scientific_notation"
	// CodeTooManyDecimals: an amount with more decimal places than its asset.
	CodeTooManyDecimals payout.Code = "too_many_decimals"
	// CodeMissingValue: a required cell (to, amount) is empty, or a row has
	// no chain or asset and the request gives no default.
	CodeMissingValue payout.Code = "missing_value"
	// CodeWrongFieldCount: a CSV row has more or fewer cells than the header.
	CodeWrongFieldCount payout.Code = "wrong_field_count"
	// CodeMalformedCSV: a row breaks RFC 4180 quoting (a bare or unclosed
	// quote). It is a row error, or a file error when it is the header.
	CodeMalformedCSV payout.Code = "malformed_csv"
	// CodeInvalidMemo: a memo longer than payout.MaxMetadataValueLen bytes or
	// not valid UTF-8.
	CodeInvalidMemo payout.Code = "invalid_memo"

	// File errors (see FileError).

	// CodeEmptyFile: no header, or a header and no rows.
	CodeEmptyFile payout.Code = "empty_file"
	// CodeMissingColumn: the header lacks "to" or "amount".
	CodeMissingColumn payout.Code = "missing_column"
	// CodeUnknownColumn: the header names a column this package does not know.
	CodeUnknownColumn payout.Code = "unknown_column"
	// CodeDuplicateColumn: the header names a column twice.
	CodeDuplicateColumn payout.Code = "duplicate_column"
	// CodeTooManyRows: more rows than Options.MaxRows.
	CodeTooManyRows payout.Code = "too_many_rows"
	// CodeFileTooLarge: more bytes than Options.MaxBytes.
	CodeFileTooLarge payout.Code = "file_too_large"
	// CodeNotUTF8: the file is not UTF-8 (or is UTF-16).
	CodeNotUTF8 payout.Code = "not_utf8"
)

// Defaults of Options.
const (
	DefaultMaxRows   = 50_000
	DefaultMaxBytes  = 10 << 20 // 10 MiB
	DefaultMaxErrors = 1_000
)

// Resolver finds a chain and an asset on it. *payout.Catalog is one; its
// errors are *payout.FieldError with CodeUnknownChain or CodeUnknownAsset,
// which become row errors. Any other error aborts the read.
type Resolver interface {
	Lookup(chain, asset string) (payout.Chain, payout.Asset, error)
}

var _ Resolver = (*payout.Catalog)(nil)

// Options configure a read. The zero value of each limit means its default.
type Options struct {
	// Catalog resolves each row's chain and asset. Required.
	Catalog Resolver
	// Chain and Asset apply to rows whose chain or asset is absent or empty
	// (the --chain and --asset of the request).
	Chain, Asset string
	// MaxRows is the most data rows accepted (blank rows not counted);
	// default DefaultMaxRows.
	MaxRows int
	// MaxBytes is the largest CSV accepted, BOM included; default
	// DefaultMaxBytes. ValidateRows ignores it: the caller limits its body.
	MaxBytes int64
	// MaxErrors is the most row errors kept in Result.Errors; the rest are
	// only counted in Result.Omitted. Default DefaultMaxErrors.
	MaxErrors int
}

func (o Options) withDefaults() (Options, error) {
	if o.Catalog == nil {
		return o, errors.New("batchfile: Options.Catalog is nil")
	}
	if o.MaxRows <= 0 {
		o.MaxRows = DefaultMaxRows
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	o.MaxBytes = min(o.MaxBytes, math.MaxInt64-1) // ReadCSV reads one byte more to tell
	if o.MaxErrors <= 0 {
		o.MaxErrors = DefaultMaxErrors
	}
	return o, nil
}

// RawRow is one row as given, before validation: the cells of a CSV row or
// the fields of a JSON row. In JSON, Amount is in base units.
type RawRow struct {
	To         string `json:"to"`
	Amount     string `json:"amount"`
	Asset      string `json:"asset,omitempty"`
	Chain      string `json:"chain,omitempty"`
	ExternalID string `json:"external_id,omitempty"`
	Memo       string `json:"memo,omitempty"`
}

// Row is a valid row, ready to become a payout.
type Row struct {
	// Number is the row's number as in RowError.Row.
	Number int
	To     common.Address
	// Amount is in base units, positive and at most payout.MaxAmount.
	Amount *big.Int
	// Chain and Asset are the catalog's names, defaults applied.
	Chain, Asset string
	ExternalID   string // "" when none
	Memo         string // "" when none
}

// RowError is one problem with one row. A row may have several.
//
// Row numbers: in a CSV, Row counts rows as a spreadsheet shows the file:
// the header is row 1 and the first data row is row 2; a blank line is a row
// too, and a row whose quoted cell spans several lines is still one row. For
// JSON rows, Row is the 1-based position in the array (rows[0] is row 1).
type RowError struct {
	Row int
	// Column is the column at fault ("to", "amount", "chain", "asset",
	// "external_id", "memo"), or "" when the whole row is at fault.
	Column string
	// Value is the offending cell, at most 64 characters (then "…"), with
	// control characters and invalid UTF-8 replaced: safe to echo.
	Value   string
	Code    payout.Code
	Message string // safe to show; names the value and the rule
}

// Result is what a read finds: the valid rows in input order, and the errors
// of the others.
type Result struct {
	Rows   []Row
	Errors []RowError
	// Invalid counts the rows with at least one error.
	Invalid int
	// Omitted counts the row errors left out of Errors (Options.MaxErrors).
	Omitted int
}

// FileError is a problem with the whole input (empty, too large, not UTF-8,
// a bad header, too many rows): no row is returned with it.
type FileError struct {
	Code    payout.Code
	Message string // safe to show
}

func (e *FileError) Error() string { return e.Message }

// safeValue makes a cell safe to echo: valid UTF-8, no control characters,
// at most 64 characters.
func safeValue(s string) string {
	const max = 64
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if r == utf8.RuneError || unicode.IsControl(r) {
			r = '\uFFFD'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
