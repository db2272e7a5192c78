package main

import (
	"context"
	"fmt"
	"io"
	"math/big"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/rpcpool"
)

// traceRow is what one upstream says of one transaction.
type traceRow struct {
	TxHash   string `json:"tx_hash"`
	Nonce    uint64 `json:"nonce"`
	Fees     string `json:"fees,omitempty"` // max fee / tip, in gwei
	Upstream string `json:"upstream"`
	State    string `json:"state"` // not_found, pending, mined, reverted, error
	Block    uint64 `json:"block,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// txTrace asks every upstream about each attempt of a payout (or about one
// transaction hash) and shows the answers side by side.
func txTrace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := txFlags("trace", stderr)
	cfgPath := fs.String("config", "", "config file whose chain upstreams to ask")
	var rpcs listOf
	fs.Var(&rpcs, "rpc", "a JSON-RPC endpoint to ask (repeatable; instead of --config)")
	pos, err := parseFlags(fs, args, 1, "a payout id or a transaction hash")
	if err != nil {
		return err
	}
	var attempts []client.Attempt
	if strings.HasPrefix(pos[0], "0x") && len(pos[0]) == 66 {
		attempts = []client.Attempt{{TxHash: pos[0]}}
	} else if attempts, err = attemptsOf(ctx, f, pos[0]); err != nil {
		return err
	}
	urls, err := upstreamsFor(*cfgPath, rpcs, attempts[0].ChainID)
	if err != nil {
		return err
	}
	var rows []traceRow
	for _, a := range attempts {
		for _, u := range urls {
			rows = append(rows, traceOne(ctx, u, a))
		}
	}
	note := foreignNonceNote(ctx, urls, attempts, rows)
	verdicts := attemptVerdicts(attempts, rows)
	if f.json {
		return writeJSONOut(stdout, map[string]any{"object": "trace", "rows": rows, "attempts": verdicts, "note": note})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TX HASH\tNONCE\tFEES (GWEI)\tUPSTREAM\tSTATE\tBLOCK\tDETAIL")
	for _, r := range rows {
		block := "-"
		if r.Block > 0 {
			block = fmt.Sprint(r.Block)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.TxHash, r.Nonce, orDash(r.Fees), r.Upstream, r.State, block, r.Detail)
	}
	if len(verdicts) > 1 || len(attempts) > 0 && attempts[0].From != "" {
		fmt.Fprintln(tw)
		for _, v := range verdicts {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", v.TxHash, v.Kind, v.Verdict)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if note != "" {
		_, err = fmt.Fprintln(stdout, "\n"+note)
	}
	return err
}

// traceOne asks one upstream for a transaction and its receipt.
func traceOne(ctx context.Context, url string, a client.Attempt) traceRow {
	row := traceRow{TxHash: a.TxHash, Nonce: a.Nonce, Upstream: rpcpool.RedactURL(url), Fees: gweiPair(a)}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := rpc.DialContext(ctx, url)
	if err != nil {
		row.State, row.Detail = "error", err.Error()
		return row
	}
	defer c.Close()
	var tx *struct {
		Nonce       hexutil.Uint64 `json:"nonce"`
		BlockNumber *hexutil.Big   `json:"blockNumber"`
	}
	var rc *types.Receipt
	elems := []rpc.BatchElem{
		{Method: "eth_getTransactionByHash", Args: []any{common.HexToHash(a.TxHash)}, Result: &tx},
		{Method: "eth_getTransactionReceipt", Args: []any{common.HexToHash(a.TxHash)}, Result: &rc},
	}
	if err := c.BatchCallContext(ctx, elems); err != nil {
		row.State, row.Detail = "error", err.Error()
		return row
	}
	switch {
	case elems[0].Error != nil:
		row.State, row.Detail = "error", elems[0].Error.Error()
	case rc != nil:
		row.State, row.Block = "mined", rc.BlockNumber.Uint64()
		if rc.Status != types.ReceiptStatusSuccessful {
			row.State = "reverted"
		}
	case tx != nil:
		row.State, row.Nonce = "pending", uint64(tx.Nonce)
	default:
		row.State = "not_found"
	}
	return row
}

// foreignNonceNote says when a payout's nonce was used on chain by a
// transaction that is none of its attempts: someone else holds the key.
func foreignNonceNote(ctx context.Context, urls []string, attempts []client.Attempt, rows []traceRow) string {
	if attempts[0].From == "" {
		return ""
	}
	for _, r := range rows {
		if r.State == "mined" || r.State == "reverted" {
			return ""
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := rpc.DialContext(ctx, urls[0])
	if err != nil {
		return ""
	}
	defer c.Close()
	var n hexutil.Uint64
	if err := c.CallContext(ctx, &n, "eth_getTransactionCount", common.HexToAddress(attempts[0].From), "latest"); err != nil {
		return ""
	}
	if uint64(n) > attempts[0].Nonce {
		return fmt.Sprintf("Nonce %d of %s is used on chain, but by none of this payout's transactions: "+
			"another wallet signs with this key. This payout will not be mined as it is.", attempts[0].Nonce, attempts[0].From)
	}
	return ""
}

// attemptVerdict says what became of one attempt across every upstream.
type attemptVerdict struct {
	TxHash  string `json:"tx_hash"`
	Kind    string `json:"kind"`    // transfer, or cancel (a zero-value self-transfer at the payout's nonce)
	Verdict string `json:"verdict"` // mined, reverted, pending, replaced (another attempt mined), dropped (no upstream knows it)
}

func attemptVerdicts(attempts []client.Attempt, rows []traceRow) []attemptVerdict {
	states := map[string]map[string]bool{}
	minedHash := ""
	for _, r := range rows {
		if states[r.TxHash] == nil {
			states[r.TxHash] = map[string]bool{}
		}
		states[r.TxHash][r.State] = true
		if r.State == "mined" || r.State == "reverted" {
			minedHash = r.TxHash
		}
	}
	out := make([]attemptVerdict, 0, len(attempts))
	for _, a := range attempts {
		st := states[a.TxHash]
		v := "dropped: no upstream knows it"
		switch {
		case st["mined"]:
			v = "mined"
		case st["reverted"]:
			v = "mined, reverted"
		case minedHash != "" && minedHash != a.TxHash:
			v = "replaced: another attempt of this nonce was mined"
		case st["pending"]:
			v = "pending"
		case st["error"] && !st["not_found"]:
			v = "unknown: no upstream answered"
		}
		kind := a.Kind
		if kind == "" {
			kind = "transfer"
		}
		out = append(out, attemptVerdict{TxHash: a.TxHash, Kind: kind, Verdict: v})
	}
	return out
}

func gweiPair(a client.Attempt) string {
	if a.MaxFeePerGas == "" {
		return ""
	}
	return gwei(a.MaxFeePerGas) + " / " + gwei(a.MaxPriorityFeePerGas)
}

// gwei writes a wei amount as gwei with up to 9 decimals.
func gwei(wei string) string {
	v, ok := new(big.Int).SetString(wei, 10)
	if !ok {
		return wei
	}
	return payout.FormatDecimal(v, 9)
}
