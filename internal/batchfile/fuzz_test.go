package batchfile

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/sluicepay/sluice/internal/payout"
)

// FuzzReadCSV checks that no input makes ReadCSV panic, and that what it
// returns is consistent: every row valid, numbers in order, each row either
// valid or in error, limits kept.
func FuzzReadCSV(f *testing.F) {
	seeds := []string{
		"to,amount\n" + addrA + ",12.5\n",
		"\xef\xbb\xbfTO , Amount,asset,chain,external_id,memo\r\n" + addrA + ",1,ETH,sandbox,x,\"a,\"\"b\"\"\nc\"\r\n",
		"to,amount,external_id\n" + addrA + ",1,d\n" + addrB + ",2,d\n\n\n",
		"to,amount\n" + addrA + ",1e6\n" + addrZero + ",-1\n" + addrBadChecksum + ",1.0000001\n",
		"to,amount,chain,asset\n" + addrA + ",5,base,ZERO\n" + addrA + ",5.5,base,ZERO\n" + addrA + ",1,mars,X\n",
		"to,amount\n" + addrA + ",\"1\n" + addrA + `,1"x` + "\n",
		"to,amount\n" + addrA + ",1,2\n,\n",
		"amount,to\n99999999999999999999999999999999999999999999999999999999999999999999999999999999,0x1\n",
		"to,amount\n" + addrA + ",caf\xe9\n",
		"\xff\xfe",
		"",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	cat := testCatalog()
	f.Fuzz(func(t *testing.T, data []byte) {
		o := Options{Catalog: cat, Chain: "sandbox", Asset: "SUSD", MaxRows: 50, MaxBytes: 4096, MaxErrors: 20}
		res, err := ReadCSV(bytes.NewReader(data), o)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a *FileError: %v", err)
			}
			if res != nil || fe.Code == "" || fe.Message == "" {
				t.Fatalf("file error %+v with result %+v", fe, res)
			}
			return
		}
		checkResult(t, cat, o, res, 2)
	})
}

// FuzzValidateRows checks JSON rows the same way: two rows, so that
// duplicates are reached.
func FuzzValidateRows(f *testing.F) {
	f.Add(addrA, "1", "", "", "x", "", addrB, "2", "ETH", "sandbox", "x", "memo")
	f.Add(addrZero, "1e18", "DOGE", "mars", " ", "\xff", addrBadChecksum, "0", "ZERO", "base", "", "")
	cat := testCatalog()
	f.Fuzz(func(t *testing.T, to1, amt1, asset1, chain1, id1, memo1, to2, amt2, asset2, chain2, id2, memo2 string) {
		o := Options{Catalog: cat, Chain: "sandbox", Asset: "SUSD", MaxErrors: 20}
		rows := []RawRow{{to1, amt1, asset1, chain1, id1, memo1}, {to2, amt2, asset2, chain2, id2, memo2}}
		res, err := ValidateRows(rows, o)
		if err != nil {
			t.Fatalf("ValidateRows: %v", err)
		}
		o, _ = o.withDefaults()
		checkResult(t, cat, o, res, 1)
		if len(res.Rows)+res.Invalid != 2 {
			t.Fatalf("%d rows + %d invalid, want 2", len(res.Rows), res.Invalid)
		}
	})
}

func checkResult(t *testing.T, cat *payout.Catalog, o Options, res *Result, first int) {
	t.Helper()
	valid := map[int]bool{}
	ids := map[string]bool{}
	last := 0
	for _, r := range res.Rows {
		if r.Number <= last || r.Number < first {
			t.Fatalf("row number %d after %d", r.Number, last)
		}
		last = r.Number
		valid[r.Number] = true
		if r.To == (common.Address{}) {
			t.Fatalf("row %d: zero address", r.Number)
		}
		if r.Amount == nil || r.Amount.Sign() <= 0 || r.Amount.Cmp(payout.MaxAmount) > 0 {
			t.Fatalf("row %d: amount %v", r.Number, r.Amount)
		}
		if _, _, err := cat.Lookup(r.Chain, r.Asset); err != nil {
			t.Fatalf("row %d: %v", r.Number, err)
		}
		if r.ExternalID != "" {
			if ids[r.ExternalID] {
				t.Fatalf("row %d: external_id %q twice among valid rows", r.Number, r.ExternalID)
			}
			ids[r.ExternalID] = true
		}
	}
	bad := map[int]bool{}
	for _, e := range res.Errors {
		if valid[e.Row] || e.Row < first {
			t.Fatalf("error %+v on row %d, which is valid or the header", e, e.Row)
		}
		bad[e.Row] = true
		if e.Code == "" || e.Message == "" || !utf8.ValidString(e.Value) || utf8.RuneCountInString(strings.TrimSuffix(e.Value, "…")) > 64 {
			t.Fatalf("bad error %+v", e)
		}
	}
	if len(res.Errors) > o.MaxErrors || res.Omitted > 0 && len(res.Errors) != o.MaxErrors {
		t.Fatalf("%d errors reported, %d omitted, cap %d", len(res.Errors), res.Omitted, o.MaxErrors)
	}
	if res.Omitted == 0 && len(bad) != res.Invalid || len(bad) > res.Invalid {
		t.Fatalf("invalid = %d, rows with errors %d", res.Invalid, len(bad))
	}
	if n := len(res.Rows) + res.Invalid; n == 0 || n > o.MaxRows {
		t.Fatalf("%d rows + %d invalid, limit %d", len(res.Rows), res.Invalid, o.MaxRows)
	}
}
