package batchfile

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicepay/sluice/internal/payout"
)

func TestReadCSV(t *testing.T) {
	t.Parallel()
	const (
		a = addrA
		b = addrB
	)
	tests := []struct {
		name     string
		in       string
		opt      func(*Options)
		wantRows []flatRow
		wantErrs []flatErr
	}{
		{
			name:     "minimal with defaults",
			in:       "to,amount\n" + a + ",12.5\n",
			wantRows: []flatRow{{2, a, "12500000", "sandbox", "SUSD", "", ""}},
		},
		{
			name: "all columns in any order, header case and spaces",
			in: " Memo , AMOUNT,To,Chain , asset,External_ID\n" +
				"thanks,1," + a + ",sandbox,ETH,inv-1\n" +
				"," + "0.000001," + b + ",base,USDC,inv-2\n",
			wantRows: []flatRow{
				{2, a, "1000000000000000000", "sandbox", "ETH", "inv-1", "thanks"},
				{3, b, "1", "base", "USDC", "inv-2", ""},
			},
		},
		{
			name: "BOM and CRLF",
			in:   "\xef\xbb\xbfto,amount\r\n" + a + ",2\r\n" + b + ",3.25\r\n",
			wantRows: []flatRow{
				{2, a, "2000000", "sandbox", "SUSD", "", ""},
				{3, b, "3250000", "sandbox", "SUSD", "", ""},
			},
		},
		{
			name: "quoted cells with commas, quotes and newlines",
			in: "to,amount,memo\n" +
				`"` + a + `","1.5","rent, March"` + "\n" +
				a + `,2,"she said ""hi"""` + "\n" +
				a + ",3,\"two\r\nlines\"\n" +
				b + ",4,after\n",
			wantRows: []flatRow{
				{2, a, "1500000", "sandbox", "SUSD", "", "rent, March"},
				{3, a, "2000000", "sandbox", "SUSD", "", `she said "hi"`},
				{4, a, "3000000", "sandbox", "SUSD", "", "two\nlines"},
				{5, b, "4000000", "sandbox", "SUSD", "", "after"},
			},
		},
		{
			name: "blank lines count as rows; blank trailing lines ignored",
			in:   "to,amount\n" + a + ",1\n\n" + b + ",2\n,\n\n\n",
			wantRows: []flatRow{
				{2, a, "1000000", "sandbox", "SUSD", "", ""},
				{4, b, "2000000", "sandbox", "SUSD", "", ""},
			},
		},
		{
			name:     "no final newline, spaces around cells",
			in:       "to,amount\n  " + a + " ,  7 ",
			wantRows: []flatRow{{2, a, "7000000", "sandbox", "SUSD", "", ""}},
		},
		{
			name: "empty chain and asset cells take the defaults",
			in:   "to,amount,chain,asset\n" + a + ",1,,\n" + a + ",1,base,USDC\n",
			wantRows: []flatRow{
				{2, a, "1000000", "sandbox", "SUSD", "", ""},
				{3, a, "1000000", "base", "USDC", "", ""},
			},
		},
		{
			name: "trailing zeros beyond the asset's decimals are fine; leading zeros too",
			in:   "to,amount,chain,asset\n" + a + ",5.000,base,ZERO\n" + a + ",0.5000000,,\n" + a + ",007,,\n" + a + ",.25,,\n",
			wantRows: []flatRow{
				{2, a, "5", "base", "ZERO", "", ""},
				{3, a, "500000", "sandbox", "SUSD", "", ""},
				{4, a, "7000000", "sandbox", "SUSD", "", ""},
				{5, a, "250000", "sandbox", "SUSD", "", ""},
			},
		},
		{
			name:     "checksummed address",
			in:       "to,amount\n" + addrChecksum + ",1\n",
			wantRows: []flatRow{{2, addrChecksum, "1000000", "sandbox", "SUSD", "", ""}},
		},
		{
			name: "address errors",
			in:   "to,amount\nnope,1\n" + addrBadChecksum + ",1\n" + addrZero + ",1\n,1\n" + a[:41] + ",1\n",
			wantErrs: []flatErr{
				{2, "to", payout.CodeInvalidAddress},
				{3, "to", payout.CodeInvalidChecksum},
				{4, "to", payout.CodeZeroAddress},
				{5, "to", CodeMissingValue},
				{6, "to", payout.CodeInvalidAddress},
			},
		},
		{
			name: "amount errors",
			in: "to,amount,asset\n" +
				a + ",1e6,\n" + a + ",1E-3,\n" + a + ",2.5e+3,\n" +
				a + ",1.0000001,\n" + a + ",0.0000000000000000001,ETH\n" +
				a + ",-5,\n" + a + ",0,\n" + a + ",0.000,\n" + a + ",+5,\n" +
				a + ",\"1,000\",\n" + a + ",\"12,5\",\n" + a + ",1 000,\n" + a + ",1_000,\n" +
				a + ",12.,\n" + a + ",.,\n" + a + ",abc,\n" + a + ",1.2.3,\n" + a + ",0x10,\n" +
				a + ",,\n" + a + "," + strings.Repeat("9", 80) + ",\n" + a + "," + strings.Repeat("9", 400) + ",\n" +
				a + ",e5,\n",
			wantErrs: []flatErr{
				{2, "amount", CodeScientificNotation},
				{3, "amount", CodeScientificNotation},
				{4, "amount", CodeScientificNotation},
				{5, "amount", CodeTooManyDecimals},
				{6, "amount", CodeTooManyDecimals},
				{7, "amount", payout.CodeInvalidAmount},
				{8, "amount", payout.CodeInvalidAmount},
				{9, "amount", payout.CodeInvalidAmount},
				{10, "amount", payout.CodeInvalidAmount},
				{11, "amount", payout.CodeInvalidAmount},
				{12, "amount", payout.CodeInvalidAmount},
				{13, "amount", payout.CodeInvalidAmount},
				{14, "amount", payout.CodeInvalidAmount},
				{15, "amount", payout.CodeInvalidAmount},
				{16, "amount", payout.CodeInvalidAmount},
				{17, "amount", payout.CodeInvalidAmount},
				{18, "amount", payout.CodeInvalidAmount},
				{19, "amount", payout.CodeInvalidAmount},
				{20, "amount", CodeMissingValue},
				{21, "amount", payout.CodeAmountTooLarge},
				{22, "amount", payout.CodeAmountTooLarge},
				{23, "amount", payout.CodeInvalidAmount},
			},
		},
		{
			name: "chain and asset errors; several errors in one row",
			in: "to,amount,chain,asset\n" +
				a + ",1,mars,SUSD\n" + a + ",1,sandbox,DOGE\n" + a + ",1,base,SUSD\n" +
				"bad,-1,sandbox,DOGE\n",
			wantErrs: []flatErr{
				{2, "chain", payout.CodeUnknownChain},
				{3, "asset", payout.CodeUnknownAsset},
				{4, "asset", payout.CodeUnknownAsset},
				{5, "to", payout.CodeInvalidAddress},
				{5, "asset", payout.CodeUnknownAsset},
				{5, "amount", payout.CodeInvalidAmount},
			},
		},
		{
			name: "no chain or asset anywhere",
			in:   "to,amount\n" + a + ",1\n",
			opt:  func(o *Options) { o.Chain, o.Asset = "", "" },
			wantErrs: []flatErr{
				{2, "chain", CodeMissingValue},
				{2, "asset", CodeMissingValue},
			},
		},
		{
			name: "external_id: duplicates after the first, invalid ones",
			in: "to,amount,external_id\n" +
				a + ",1,x-1\n" + a + ",1,x-2\n" + a + ",1,x-1\n" + a + ",1,\n" + a + ",1,\n" + a + ",1,x-1\n" +
				a + ",1,has space\n" + a + ",1," + strings.Repeat("i", 256) + "\n" + a + ",1,caf\u00e9\n",
			wantRows: []flatRow{
				{2, a, "1000000", "sandbox", "SUSD", "x-1", ""},
				{3, a, "1000000", "sandbox", "SUSD", "x-2", ""},
				{5, a, "1000000", "sandbox", "SUSD", "", ""},
				{6, a, "1000000", "sandbox", "SUSD", "", ""},
			},
			wantErrs: []flatErr{
				{4, "external_id", payout.CodeDuplicateExternalID},
				{7, "external_id", payout.CodeDuplicateExternalID},
				{8, "external_id", payout.CodeInvalidExternalID},
				{9, "external_id", payout.CodeInvalidExternalID},
				{10, "external_id", payout.CodeInvalidExternalID},
			},
		},
		{
			name: "memo too long",
			in:   "to,amount,memo\n" + a + ",1," + strings.Repeat("m", 500) + "\n" + a + ",1," + strings.Repeat("m", 501) + "\n",
			wantRows: []flatRow{
				{2, a, "1000000", "sandbox", "SUSD", "", strings.Repeat("m", 500)},
			},
			wantErrs: []flatErr{{3, "memo", CodeInvalidMemo}},
		},
		{
			name:     "wrong field count and broken quoting are row errors; reading goes on",
			in:       "to,amount\n" + a + ",1,extra\n" + a + "\n" + a + `,"1"x` + "\n" + a + `,1"` + "\n" + b + ",2\n",
			wantRows: []flatRow{{6, b, "2000000", "sandbox", "SUSD", "", ""}},
			wantErrs: []flatErr{
				{2, "", CodeWrongFieldCount},
				{3, "", CodeWrongFieldCount},
				{4, "", CodeMalformedCSV},
				{5, "", CodeMalformedCSV},
			},
		},
		{
			name:     "unclosed quote runs to the end",
			in:       "to,amount\n" + a + ",1\n" + a + ",\"1\n" + b + ",2\n",
			wantRows: []flatRow{{2, a, "1000000", "sandbox", "SUSD", "", ""}},
			wantErrs: []flatErr{{3, "", CodeMalformedCSV}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := opts()
			if tt.opt != nil {
				tt.opt(&o)
			}
			res, err := ReadCSV(strings.NewReader(tt.in), o)
			if err != nil {
				t.Fatalf("ReadCSV: %v", err)
			}
			if diff := cmp.Diff(tt.wantRows, flatten(t, res.Rows)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantErrs, flattenErrs(res.Errors)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\n%v", diff, res.Errors)
			}
			bad := map[int]bool{}
			for _, e := range tt.wantErrs {
				bad[e.Row] = true
			}
			if res.Invalid != len(bad) {
				t.Errorf("Invalid = %d, want %d", res.Invalid, len(bad))
			}
		})
	}
}

func TestReadCSVRowErrorDetails(t *testing.T) {
	t.Parallel()
	in := "to,amount,external_id\n" +
		addrA + ",1,dup\n" +
		addrA + ",1,dup\n" +
		"\x1b[31m" + strings.Repeat("x", 100) + ",1,\n" +
		addrA + ",1.0000001,\n"
	res, err := ReadCSV(strings.NewReader(in), opts())
	if err != nil {
		t.Fatal(err)
	}
	got := res.Errors
	want := []RowError{
		{Row: 3, Column: "external_id", Value: "dup", Code: payout.CodeDuplicateExternalID,
			Message: `external_id "dup" is already used by row 2 of this batch`},
		{Row: 4, Column: "to", Value: "\uFFFD[31m" + strings.Repeat("x", 59) + "…", Code: payout.CodeInvalidAddress},
		{Row: 5, Column: "amount", Value: "1.0000001", Code: CodeTooManyDecimals,
			Message: `amount "1.0000001" has 7 decimal places; SUSD has 6`},
	}
	// The address message is payout's; only check it does not echo the escape.
	if strings.Contains(got[1].Message, "\x1b") {
		t.Errorf("message echoes a control character: %q", got[1].Message)
	}
	got[1].Message = ""
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestReadCSVFileErrors(t *testing.T) {
	t.Parallel()
	row := addrA + ",1\n"
	tests := []struct {
		name string
		in   string
		opt  func(*Options)
		want payout.Code
	}{
		{"empty", "", nil, CodeEmptyFile},
		{"only blank lines", "\n\r\n\n", nil, CodeEmptyFile},
		{"only a BOM", "\xef\xbb\xbf", nil, CodeEmptyFile},
		{"header only", "to,amount\n", nil, CodeEmptyFile},
		{"header and blank rows", "to,amount\n,\n\n", nil, CodeEmptyFile},
		{"no to column", "amount\n1\n", nil, CodeMissingColumn},
		{"no amount column", "to,memo\n" + addrA + ",x\n", nil, CodeMissingColumn},
		{"unknown column", "to,amount,fee\n" + addrA + ",1,2\n", nil, CodeUnknownColumn},
		{"no header at all", row + row, nil, CodeUnknownColumn},
		{"empty column name", "to,amount,\n" + addrA + ",1,\n", nil, CodeUnknownColumn},
		{"duplicate column", "to,amount,TO\n" + addrA + ",1," + addrA + "\n", nil, CodeDuplicateColumn},
		{"broken header", "to,\"amount\n", nil, CodeMalformedCSV},
		{"invalid UTF-8 in a row", "to,amount,memo\n" + addrA + ",1,caf\xe9\n", nil, CodeNotUTF8},
		{"invalid UTF-8 in the header", "to,amount,m\xffemo\n", nil, CodeNotUTF8},
		{"UTF-16 LE", "\xff\xfet\x00o\x00", nil, CodeNotUTF8},
		{"UTF-16 BE", "\xfe\xff\x00t\x00o", nil, CodeNotUTF8},
		{"too many rows", "to,amount\n" + row + row + row, func(o *Options) { o.MaxRows = 2 }, CodeTooManyRows},
		{"too many rows, invalid ones count", "to,amount\n" + row + "x,1\n" + "x\n", func(o *Options) { o.MaxRows = 2 }, CodeTooManyRows},
		{"too large", "to,amount\n" + row + row, func(o *Options) { o.MaxBytes = int64(len("to,amount\n"+row+row)) - 1 }, CodeFileTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := opts()
			if tt.opt != nil {
				tt.opt(&o)
			}
			res, err := ReadCSV(strings.NewReader(tt.in), o)
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("ReadCSV = %+v, %v; want a *FileError", res, err)
			}
			if res != nil {
				t.Errorf("result %+v with a file error", res)
			}
			if fe.Code != tt.want {
				t.Errorf("code = %s (%s), want %s", fe.Code, fe.Message, tt.want)
			}
			if fe.Message == "" || fe.Error() != fe.Message {
				t.Errorf("message %q, Error() %q", fe.Message, fe.Error())
			}
		})
	}
}

func TestReadCSVLimitsExact(t *testing.T) {
	t.Parallel()
	in := "to,amount\n" + addrA + ",1\n" + addrA + ",2\n"
	o := opts()
	o.MaxRows, o.MaxBytes = 2, int64(len(in))
	res, err := ReadCSV(strings.NewReader(in), o)
	if err != nil {
		t.Fatalf("at the limits: %v", err)
	}
	if len(res.Rows) != 2 {
		t.Errorf("%d rows, want 2", len(res.Rows))
	}
}

// endless is an upload that never ends; it counts what was read of it.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	line := "0x1111111111111111111111111111111111111111,1\n"
	for i := range p {
		p[i] = line[(e.n+int64(i))%int64(len(line))]
	}
	if e.n == 0 {
		copy(p, "to,amount\n")
	}
	e.n += int64(len(p))
	return len(p), nil
}

func TestReadCSVHugeUploadNotBuffered(t *testing.T) {
	t.Parallel()
	src := &endless{}
	o := opts()
	o.MaxBytes = 1 << 20
	o.MaxRows = 1 << 30
	_, err := ReadCSV(src, o)
	var fe *FileError
	if !errors.As(err, &fe) || fe.Code != CodeFileTooLarge {
		t.Fatalf("err = %v, want %s", err, CodeFileTooLarge)
	}
	if !strings.Contains(fe.Message, "1048576 bytes") {
		t.Errorf("message %q does not name the limit", fe.Message)
	}
	if src.n > o.MaxBytes+1 {
		t.Errorf("read %d bytes, limit %d", src.n, o.MaxBytes)
	}
}

func TestReadCSVErrorCap(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("to,amount\n")
	for range 30 {
		b.WriteString("bad,-1\n") // two errors per row
	}
	o := opts()
	o.MaxErrors = 25
	res, err := ReadCSV(strings.NewReader(b.String()), o)
	if err != nil {
		t.Fatal(err)
	}
	got := []int{len(res.Errors), res.Omitted, res.Invalid, len(res.Rows)}
	if want := []int{25, 35, 30, 0}; !cmp.Equal(got, want) {
		t.Errorf("errors, omitted, invalid, rows = %v, want %v", got, want)
	}
}

func TestReadCSVTenThousandRows(t *testing.T) {
	t.Parallel()
	in := mixedCSV(10_000, 7)
	res, err := ReadCSV(strings.NewReader(in), opts())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(res.Rows)+res.Invalid, 10_000; got != want {
		t.Fatalf("rows + invalid = %d, want %d", got, want)
	}
	if got, want := res.Invalid, 10_000/7+1; got != want {
		t.Errorf("invalid = %d, want %d", got, want)
	}
	for i, r := range res.Rows {
		if i > 0 && r.Number <= res.Rows[i-1].Number {
			t.Fatalf("row %d after row %d: not in input order", r.Number, res.Rows[i-1].Number)
		}
	}
	if res.Rows[len(res.Rows)-1].Number != 10_001 {
		t.Errorf("last row is %d, want 10001", res.Rows[len(res.Rows)-1].Number)
	}
}

// mixedCSV writes n rows alternating SUSD (6 decimals) and ETH (18), with
// an invalid amount every badEvery rows (0: none).
func mixedCSV(n, badEvery int) string {
	var b strings.Builder
	b.WriteString("to,amount,asset,external_id,memo\r\n")
	for i := range n {
		asset, amount := "SUSD", fmt.Sprintf("%d.%06d", i%5000+1, i%1000000)
		if i%2 == 1 {
			asset, amount = "ETH", fmt.Sprintf("0.%018d", i+1)
		}
		if badEvery > 0 && i%badEvery == 0 {
			amount = "1e6"
		}
		fmt.Fprintf(&b, "0x%040x,%s,%s,inv-%d,\"salary, %d\"\r\n", i+1, amount, asset, i, i)
	}
	return b.String()
}

var _ io.Reader = (*endless)(nil)
