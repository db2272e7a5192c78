package batchfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/google/go-cmp/cmp"
	"github.com/sluicepay/sluice/internal/payout"
)

func TestValidateRows(t *testing.T) {
	t.Parallel()
	const a, b = addrA, addrB
	tests := []struct {
		name     string
		in       []RawRow
		opt      func(*Options)
		wantRows []flatRow
		wantErrs []flatErr
	}{
		{
			name: "base units, defaults and explicit chain and asset",
			in: []RawRow{
				{To: a, Amount: "12500000"},
				{To: b, Amount: "1", Chain: "base", Asset: "USDC", ExternalID: "e-1", Memo: "hello"},
				{To: addrChecksum, Amount: "115792089237316195423570985008687907853269984665640564039457584007913129639935", Asset: "ETH"},
			},
			wantRows: []flatRow{
				{1, a, "12500000", "sandbox", "SUSD", "", ""},
				{2, b, "1", "base", "USDC", "e-1", "hello"},
				{3, addrChecksum, payout.MaxAmount.String(), "sandbox", "ETH", "", ""},
			},
		},
		{
			name: "every row error",
			in: []RawRow{
				{To: "", Amount: ""},
				{To: "0x12", Amount: "1.5"},
				{To: addrBadChecksum, Amount: "1e18"},
				{To: addrZero, Amount: "0"},
				{To: a, Amount: "-1"},
				{To: a, Amount: "115792089237316195423570985008687907853269984665640564039457584007913129639936"},
				{To: a, Amount: "1", Chain: "mars"},
				{To: a, Amount: "1", Asset: "DOGE"},
				{To: a, Amount: "1", ExternalID: "x"},
				{To: a, Amount: "1", ExternalID: "x"},
				{To: a, Amount: "1", ExternalID: " x"},
				{To: a, Amount: "1", Memo: strings.Repeat("m", 501)},
				{To: a, Amount: "1", Memo: "\xff"},
				{To: a, Amount: " 1"},
			},
			wantRows: []flatRow{{9, a, "1", "sandbox", "SUSD", "x", ""}},
			wantErrs: []flatErr{
				{1, "to", CodeMissingValue},
				{1, "amount", CodeMissingValue},
				{2, "to", payout.CodeInvalidAddress},
				{2, "amount", payout.CodeInvalidAmount},
				{3, "to", payout.CodeInvalidChecksum},
				{3, "amount", CodeScientificNotation},
				{4, "to", payout.CodeZeroAddress},
				{4, "amount", payout.CodeInvalidAmount},
				{5, "amount", payout.CodeInvalidAmount},
				{6, "amount", payout.CodeAmountTooLarge},
				{7, "chain", payout.CodeUnknownChain},
				{8, "asset", payout.CodeUnknownAsset},
				{10, "external_id", payout.CodeDuplicateExternalID},
				{11, "external_id", payout.CodeInvalidExternalID},
				{12, "memo", CodeInvalidMemo},
				{13, "memo", CodeInvalidMemo},
				{14, "amount", payout.CodeInvalidAmount},
			},
		},
		{
			name:     "no defaults",
			in:       []RawRow{{To: a, Amount: "1"}},
			opt:      func(o *Options) { o.Chain, o.Asset = "", "" },
			wantErrs: []flatErr{{1, "chain", CodeMissingValue}, {1, "asset", CodeMissingValue}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := opts()
			if tt.opt != nil {
				tt.opt(&o)
			}
			res, err := ValidateRows(tt.in, o)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantRows, flatten(t, res.Rows)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantErrs, flattenErrs(res.Errors)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateRowsFileErrors(t *testing.T) {
	t.Parallel()
	o := opts()
	o.MaxRows = 2
	row := RawRow{To: addrA, Amount: "1"}
	for _, tt := range []struct {
		name string
		in   []RawRow
		want payout.Code
	}{
		{"none", nil, CodeEmptyFile},
		{"too many", []RawRow{row, row, row}, CodeTooManyRows},
	} {
		_, err := ValidateRows(tt.in, o)
		var fe *FileError
		if !errors.As(err, &fe) || fe.Code != tt.want {
			t.Errorf("%s: err = %v, want %s", tt.name, err, tt.want)
		}
	}
}

// failing is a resolver whose backend fails: not a row's fault.
type failing struct{}

func (failing) Lookup(string, string) (payout.Chain, payout.Asset, error) {
	return payout.Chain{}, payout.Asset{}, errors.New("catalog unavailable")
}

func TestResolverFailureAborts(t *testing.T) {
	t.Parallel()
	o := opts()
	o.Catalog = failing{}
	if _, err := ValidateRows([]RawRow{{To: addrA, Amount: "1"}}, o); err == nil || !strings.Contains(err.Error(), "catalog unavailable") {
		t.Errorf("err = %v, want the resolver's", err)
	}
	o.Catalog = nil
	if _, err := ReadCSV(strings.NewReader("to,amount\n"), o); err == nil {
		t.Error("no error without a catalog")
	}
}

func TestCSVAndJSONAgree(t *testing.T) {
	t.Parallel()
	csvRes, err := ReadCSV(strings.NewReader("to,amount,asset\n"+addrA+",1.5,SUSD\n"+addrB+",0.000000000000000002,ETH\n"), opts())
	if err != nil {
		t.Fatal(err)
	}
	jsonRes, err := ValidateRows([]RawRow{{To: addrA, Amount: "1500000", Asset: "SUSD"}, {To: addrB, Amount: "2", Asset: "ETH"}}, opts())
	if err != nil {
		t.Fatal(err)
	}
	for i := range csvRes.Rows {
		jsonRes.Rows[i].Number = csvRes.Rows[i].Number // CSV counts the header
	}
	if diff := cmp.Diff(flatten(t, csvRes.Rows), flatten(t, jsonRes.Rows)); diff != "" {
		t.Errorf("CSV and JSON rows differ (-csv +json):\n%s", diff)
	}
	if got := jsonRes.Rows[0].To; got != common.HexToAddress(addrA) {
		t.Errorf("to = %s", got.Hex())
	}
}

func TestScientific(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"1e6": true, "1E-3": true, "2.5e+3": true, "-1e5": true, ".5e2": true, "1.e2": true,
		"e5": false, "1e": false, "1e+": false, "abc": false, "1.2.3e4": false, "1ee4": false, "0x1e": false, "1e5x": false, "--1e5": false,
	} {
		if got := scientific(s); got != want {
			t.Errorf("scientific(%q) = %v, want %v", s, got, want)
		}
	}
}
