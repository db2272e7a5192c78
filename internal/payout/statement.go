package payout

import (
	"encoding/csv"
	"io"
	"math/big"
	"sort"
	"strconv"
	"time"
)

// StatementHeader is the first line of a batch's statement.
var StatementHeader = []string{"row", "external_id", "to", "asset", "amount", "amount_base_units", "status",
	"tx_hash", "log_index", "block", "timestamp", "fee_wei", "failure_code"}

// WriteStatement writes a batch's statement as CSV: one line per stored
// row in input order (ps sorted by row), then one "total" line per asset
// and status with the sum of the amounts and of the fee shares. Amounts
// are in the asset's units (as the input had them) and in base units;
// fees are wei. times gives the block timestamps by chain and block (a
// missing one leaves the column empty). It reconciles: the completed
// total of an asset is what left the hot wallets for the batch.
func WriteStatement(w io.Writer, b *Batch, ps []*Payout, c *Catalog, times map[string]map[uint64]time.Time) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(StatementHeader); err != nil {
		return err
	}
	type key struct {
		asset  string
		status Status
	}
	amounts, fees, decimals := map[key]*big.Int{}, map[key]*big.Int{}, map[string]uint8{}
	for _, p := range ps {
		dec := uint8(0)
		if _, a, err := c.Lookup(p.Chain, p.Asset); err == nil {
			dec = a.Decimals
		}
		decimals[p.Asset] = dec
		k := key{p.Asset, p.Status}
		add(amounts, k, p.Amount)
		add(fees, k, p.Fee)
		if err := cw.Write(statementLine(p, dec, times)); err != nil {
			return err
		}
	}
	keys := make([]key, 0, len(amounts))
	for k := range amounts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].asset != keys[j].asset {
			return keys[i].asset < keys[j].asset
		}
		return keys[i].status < keys[j].status
	})
	for _, k := range keys {
		line := make([]string, len(StatementHeader))
		line[0], line[3], line[6] = "total", k.asset, string(k.status)
		line[4], line[5], line[11] = FormatDecimal(amounts[k], decimals[k.asset]), amounts[k].String(), fees[k].String()
		if err := cw.Write(line); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func add[K comparable](m map[K]*big.Int, k K, v *big.Int) {
	if m[k] == nil {
		m[k] = new(big.Int)
	}
	if v != nil {
		m[k].Add(m[k], v)
	}
}

// statementLine is one payout's line of the statement.
func statementLine(p *Payout, decimals uint8, times map[string]map[uint64]time.Time) []string {
	line := []string{strconv.Itoa(p.BatchRow), p.ExternalID, p.To.Hex(), p.Asset, FormatDecimal(p.Amount, decimals),
		p.Amount.String(), string(p.Status), "", "", "", "", "", string(p.FailureCode)}
	if p.TxHash != nil && p.BlockNumber != 0 {
		line[7] = p.TxHash.Hex()
	}
	if p.LogIndex != nil {
		line[8] = strconv.FormatUint(uint64(*p.LogIndex), 10)
	}
	if p.BlockNumber != 0 {
		line[9] = strconv.FormatUint(p.BlockNumber, 10)
		if t, ok := times[p.Chain][p.BlockNumber]; ok {
			line[10] = t.UTC().Format(time.RFC3339)
		}
	}
	if p.Fee != nil {
		line[11] = p.Fee.String()
	}
	return line
}
