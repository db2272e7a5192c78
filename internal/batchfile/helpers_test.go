package batchfile

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/sluicepay/sluice/internal/payout"
)

const (
	addrA = "0x1111111111111111111111111111111111111111"
	addrB = "0x2222222222222222222222222222222222222222"
	// The EIP-55 example address, and the same with its last letter's case flipped.
	addrChecksum    = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	addrBadChecksum = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"
	addrZero        = "0x0000000000000000000000000000000000000000"
)

// testCatalog has the sandbox chain (ETH with 18 decimals, SUSD with 6) and
// a second chain, base (USDC with 6, ZERO with 0 decimals).
func testCatalog() *payout.Catalog {
	susd := common.HexToAddress("0x3333333333333333333333333333333333333333")
	usdc := common.HexToAddress("0x4444444444444444444444444444444444444444")
	zero := common.HexToAddress("0x5555555555555555555555555555555555555555")
	return &payout.Catalog{Chains: map[string]payout.Chain{
		"sandbox": {Name: "sandbox", ChainID: 1337, Assets: map[string]payout.Asset{
			"ETH":  {Symbol: "ETH", Decimals: 18},
			"SUSD": {Symbol: "SUSD", Token: &susd, Decimals: 6},
		}},
		"base": {Name: "base", ChainID: 8453, Assets: map[string]payout.Asset{
			"USDC": {Symbol: "USDC", Token: &usdc, Decimals: 6},
			"ZERO": {Symbol: "ZERO", Token: &zero, Decimals: 0},
		}},
	}}
}

func opts() Options {
	return Options{Catalog: testCatalog(), Chain: "sandbox", Asset: "SUSD"}
}

// flatRow is a Row that cmp can compare and a test can write briefly.
type flatRow struct {
	N                   int
	To, Amount          string
	Chain, Asset, ExtID string
	Memo                string
}

func flatten(t *testing.T, rows []Row) []flatRow {
	t.Helper()
	var out []flatRow
	for _, r := range rows {
		out = append(out, flatRow{N: r.Number, To: r.To.Hex(), Amount: r.Amount.String(),
			Chain: r.Chain, Asset: r.Asset, ExtID: r.ExternalID, Memo: r.Memo})
	}
	return out
}

// flatErr is a RowError without its message.
type flatErr struct {
	Row    int
	Column string
	Code   payout.Code
}

func flattenErrs(errs []RowError) []flatErr {
	var out []flatErr
	for _, e := range errs {
		out = append(out, flatErr{e.Row, e.Column, e.Code})
	}
	return out
}
