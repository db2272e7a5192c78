package txm_test

import (
	"context"
	"math/big"
	"testing"
)

// What the tracker reads of the chain on every round, asked of a real
// node: its head number (eth_blockNumber) and the canonical hash of a
// block (eth_getHeaderByNumber), the same as the node's own header says.
func TestHeadAndBlockHashFromTheNode(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	for range 3 {
		if _, err := e.chain.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	n, err := e.client.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	latest, err := e.eth.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != latest.Number.Uint64() || n < 3 {
		t.Fatalf("BlockNumber = %d, the node's latest header is %d", n, latest.Number)
	}
	for b := uint64(1); b <= n; b++ {
		want, err := e.eth.HeaderByNumber(ctx, new(big.Int).SetUint64(b))
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.client.BlockHash(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if got != want.Hash() {
			t.Fatalf("BlockHash(%d) = %s, the node's header hashes to %s", b, got.Hex(), want.Hash().Hex())
		}
	}
	if _, err := e.client.BlockHash(ctx, n+100); err == nil {
		t.Fatal("BlockHash of a block the node does not have succeeded")
	}
}
