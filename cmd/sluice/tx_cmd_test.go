package main

import (
	"bytes"
	"context"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// TestTxExportRebroadcastTrace runs the engine in process against a dev
// chain that mines only on demand, so a payout stays submitted: export
// prints its signed transaction, rebroadcast sends it again (also to an
// extra endpoint), trace shows it pending, then mined, on every upstream.
func TestTxExportRebroadcastTrace(t *testing.T) {
	ctx := context.Background()
	te := startTestEngine(t, 0, 1)
	eng, chain, apiKey := te.engine, te.chain, te.apiKey
	to := common.HexToAddress("0x00000000000000000000000000000000000fEE01")
	id := createWithRetry(t, eng.URL, apiKey, wanted{asset: "ETH", to: to, amount: big.NewInt(42)}, "tx-1")
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		full := append(args, "--api-url", eng.URL(), "--api-key", apiKey)
		err := runTx(ctx, full, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	// Wait until the payout is signed and stored.
	var raw string
	for deadline := time.Now().Add(10 * time.Second); ; {
		out, err := run("export", id)
		if err == nil {
			raw = strings.TrimSpace(out)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("export never found a signed transaction: %v %s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tx, err := decodeRaw(raw)
	if err != nil || *tx.To() != to || tx.Value().Int64() != 42 {
		t.Fatalf("exported transaction = %v, %v; want 42 wei to %s", tx, err, to.Hex())
	}
	if out, err := run("rebroadcast", id, "--to", chain.RPCURL()); err != nil || strings.Count(out, " ok") != 2 {
		t.Fatalf("rebroadcast = %v\n%s", err, out)
	}
	out, err := run("trace", id, "--rpc", chain.RPCURL())
	if err != nil || !strings.Contains(out, "pending") || !strings.Contains(out, tx.Hash().Hex()) || !strings.Contains(out, "FEES (GWEI)") {
		t.Fatalf("trace of a pending payout = %v\n%s", err, out)
	}
	chain.Commit()
	if out, err := run("trace", id, "--rpc", chain.RPCURL()); err != nil || !strings.Contains(out, tx.Hash().Hex()+"  transfer  mined") {
		t.Errorf("trace verdict of a mined payout = %v\n%s", err, out)
	}
	out, err = run("trace", tx.Hash().Hex(), "--rpc", chain.RPCURL())
	if err != nil || !strings.Contains(out, "mined") {
		t.Fatalf("trace of a mined transaction = %v\n%s", err, out)
	}
	if _, err := run("trace", id); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("trace without upstreams: err = %v, want it to ask for --config", err)
	}
}
