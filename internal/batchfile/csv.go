package batchfile

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Column names of a CSV header.
const (
	ColTo         = "to"
	ColAmount     = "amount"
	ColAsset      = "asset"
	ColChain      = "chain"
	ColExternalID = "external_id"
	ColMemo       = "memo"
)

var knownColumns = []string{ColTo, ColAmount, ColAsset, ColChain, ColExternalID, ColMemo}

// ReadCSV reads and validates a CSV batch: a header row naming the columns
// (to and amount required; asset, chain, external_id and memo optional; in
// any order and case, surrounding spaces ignored), then one payout per row
// with the amount as an exact decimal in the asset's units (12.5 SUSD).
//
// The file is UTF-8 with or without a byte order mark, with CRLF or LF line
// ends and RFC 4180 quoting. Every cell is trimmed of surrounding white
// space (quoted or not). Rows whose cells are all blank (blank
// lines, or only commas as spreadsheets export them) are skipped but still
// counted in the row numbers (see RowError).
//
// It reads at most o.MaxBytes (+1 to tell) from r. Whole-file problems are
// returned as *FileError with no result; row problems are in
// Result.Errors, next to the valid rows. Any other error is not the file's
// fault: a nil Options.Catalog, a failing Resolver, or r failing to read.
func ReadCSV(r io.Reader, o Options) (*Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	lr := &io.LimitedReader{R: r, N: o.MaxBytes + 1}
	br := bufio.NewReader(lr)
	if err := skipBOM(br); err != nil {
		return nil, err
	}
	c := &csvReader{r: csv.NewReader(br), lr: lr, o: o}
	c.r.FieldsPerRecord = -1 // the count is checked against the header, as a row error
	c.r.LazyQuotes = false
	c.r.TrimLeadingSpace = true
	c.r.ReuseRecord = true
	return c.read()
}

func skipBOM(br *bufio.Reader) error {
	b, _ := br.Peek(3)
	switch {
	case bytes.HasPrefix(b, []byte("\xef\xbb\xbf")):
		_, err := br.Discard(3)
		return err
	case bytes.HasPrefix(b, []byte("\xff\xfe")), bytes.HasPrefix(b, []byte("\xfe\xff")):
		return &FileError{Code: CodeNotUTF8, Message: "the file is UTF-16; save it as CSV UTF-8"}
	}
	return nil
}

type csvReader struct {
	r  *csv.Reader
	lr *io.LimitedReader
	o  Options

	row     int // spreadsheet row number of the last record read
	lastEnd int // file line the last record ended on
}

func (c *csvReader) tooLarge() error {
	return &FileError{Code: CodeFileTooLarge,
		Message: fmt.Sprintf("the file is larger than %d bytes, the most one batch may have; split it into several batches", c.o.MaxBytes)}
}

// next reads a record and numbers it. It returns io.EOF at the end, a
// *csv.ParseError for broken quoting (after which reading goes on), a
// *FileError or an I/O error.
func (c *csvReader) next() ([]string, error) {
	rec, err := c.r.Read()
	if c.lr.N <= 0 {
		// Past the limit: whatever was read last may be cut short.
		return nil, c.tooLarge()
	}
	if err == io.EOF {
		return nil, err
	}
	var start, end int
	var pe *csv.ParseError
	switch {
	case errors.As(err, &pe):
		start, end = pe.StartLine, pe.Line
	case err != nil:
		return nil, fmt.Errorf("batchfile: read csv: %w", err)
	default:
		start, _ = c.r.FieldPos(0)
		last := len(rec) - 1
		end, _ = c.r.FieldPos(last)
		end += strings.Count(rec[last], "\n") // a quoted cell may span lines
	}
	// encoding/csv skips blank lines; a spreadsheet shows each as a row.
	c.row += 1 + max(0, start-c.lastEnd-1)
	c.lastEnd = end
	if err != nil {
		return nil, err
	}
	for _, f := range rec {
		if !utf8.ValidString(f) {
			return nil, &FileError{Code: CodeNotUTF8,
				Message: fmt.Sprintf("row %d is not valid UTF-8; save the file as CSV UTF-8", c.row)}
		}
	}
	return rec, nil
}

func (c *csvReader) read() (*Result, error) {
	cols, err := c.header()
	if err != nil {
		return nil, err
	}
	v := newValidator(c.o, parseDecimalUnits)
	rows := 0
	for {
		rec, err := c.next()
		var pe *csv.ParseError
		switch {
		case err == io.EOF:
			if rows == 0 {
				return nil, &FileError{Code: CodeEmptyFile, Message: "the file has a header but no rows"}
			}
			return v.res, nil
		case errors.As(err, &pe):
			rows++
			v.rowError(RowError{Row: c.row, Code: CodeMalformedCSV,
				Message: fmt.Sprintf("row %d is not valid CSV: %v (a cell with a quote must be quoted as a whole and its quotes doubled)", c.row, pe.Err)})
		case err != nil:
			return nil, err
		case blank(rec):
			continue
		case len(rec) != len(cols):
			rows++
			v.rowError(RowError{Row: c.row, Code: CodeWrongFieldCount,
				Message: fmt.Sprintf("row %d has %d cells; the header has %d", c.row, len(rec), len(cols))})
		default:
			rows++
			if err := v.validate(c.row, rawRow(rec, cols)); err != nil {
				return nil, err
			}
		}
		if rows > c.o.MaxRows {
			return nil, tooManyRows(c.o.MaxRows)
		}
	}
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

func rawRow(rec []string, cols []string) RawRow {
	var r RawRow
	for i, col := range cols {
		f := strings.TrimSpace(rec[i])
		switch col {
		case ColTo:
			r.To = f
		case ColAmount:
			r.Amount = f
		case ColAsset:
			r.Asset = f
		case ColChain:
			r.Chain = f
		case ColExternalID:
			r.ExternalID = f
		case ColMemo:
			r.Memo = f
		}
	}
	return r
}

// header reads the first record and returns the column of each cell.
func (c *csvReader) header() ([]string, error) {
	rec, err := c.next()
	var pe *csv.ParseError
	switch {
	case err == io.EOF:
		return nil, &FileError{Code: CodeEmptyFile, Message: "the file is empty; it needs a header row naming the columns to and amount"}
	case errors.As(err, &pe):
		return nil, &FileError{Code: CodeMalformedCSV, Message: fmt.Sprintf("the header row is not valid CSV: %v", pe.Err)}
	case err != nil:
		return nil, err
	}
	cols := make([]string, len(rec))
	at := map[string]int{}
	for i, f := range rec {
		name := strings.ToLower(strings.TrimSpace(f))
		switch {
		case name == "":
			return nil, &FileError{Code: CodeUnknownColumn,
				Message: fmt.Sprintf("column %d of the header has no name; the columns are %s", i+1, strings.Join(knownColumns, ", "))}
		case !known(name):
			msg := fmt.Sprintf("unknown column %q in the header; the columns are %s", safeValue(f), strings.Join(knownColumns, ", "))
			if strings.HasPrefix(name, "0x") || digits(name) {
				msg += "; the first row must be a header naming them"
			}
			return nil, &FileError{Code: CodeUnknownColumn, Message: msg}
		}
		if j, dup := at[name]; dup {
			return nil, &FileError{Code: CodeDuplicateColumn,
				Message: fmt.Sprintf("column %q appears twice in the header (columns %d and %d)", name, j+1, i+1)}
		}
		at[name] = i
		cols[i] = name
	}
	for _, req := range []string{ColTo, ColAmount} {
		if _, ok := at[req]; !ok {
			return nil, &FileError{Code: CodeMissingColumn, Message: fmt.Sprintf("the header has no %q column; it is required", req)}
		}
	}
	return cols, nil
}

func known(name string) bool {
	for _, k := range knownColumns {
		if name == k {
			return true
		}
	}
	return false
}
