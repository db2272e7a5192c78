package batchfile_test

import (
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/sluicepay/sluice/internal/batchfile"
	"github.com/sluicepay/sluice/internal/payout"
)

func ExampleReadCSV() {
	susd := common.HexToAddress("0x3333333333333333333333333333333333333333")
	catalog := &payout.Catalog{Chains: map[string]payout.Chain{
		"sandbox": {Name: "sandbox", Assets: map[string]payout.Asset{
			"ETH":  {Symbol: "ETH", Decimals: 18},
			"SUSD": {Symbol: "SUSD", Token: &susd, Decimals: 6},
		}},
	}}
	file := "to,amount,asset,external_id\n" +
		"0x1111111111111111111111111111111111111111,12.5,,inv-1\n" +
		"0x2222222222222222222222222222222222222222,0.01,ETH,inv-2\n" +
		"0x2222222222222222222222222222222222222222,1e6,,inv-1\n"
	res, err := batchfile.ReadCSV(strings.NewReader(file), batchfile.Options{Catalog: catalog, Chain: "sandbox", Asset: "SUSD"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range res.Rows {
		fmt.Printf("row %d: %s %s base units of %s\n", r.Number, r.To.Hex()[:6], r.Amount, r.Asset)
	}
	for _, e := range res.Errors {
		fmt.Printf("row %d %s: %s\n", e.Row, e.Column, e.Code)
	}
	fmt.Println("invalid rows:", res.Invalid)
	// Output:
	// row 2: 0x1111 12500000 base units of SUSD
	// row 3: 0x2222 10000000000000000 base units of ETH
	// row 4 amount: scientific_notation
	// row 4 external_id: duplicate_external_id
	// invalid rows: 1
}
