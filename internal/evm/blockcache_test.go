package evm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/rpc"
)

// receiptsNode answers eth_getBlockReceipts with one receipt per block
// (null for blocks above head), counting calls and holding each answer
// until release is closed.
type receiptsNode struct {
	calls   atomic.Int64
	head    uint64
	release chan struct{}
}

func (n *receiptsNode) CallContext(ctx context.Context, result any, method string, args ...any) error {
	n.calls.Add(1)
	<-n.release
	var number uint64
	fmt.Sscanf(args[0].(string), "0x%x", &number)
	body := "null"
	if number <= n.head {
		body = fmt.Sprintf(`[{"type":"0x2","status":"0x1","cumulativeGasUsed":"0x5208","logsBloom":"0x%0512x","logs":[],`+
			`"transactionHash":"0x%064x","gasUsed":"0x5208","effectiveGasPrice":"0x1","blockHash":"0x%064x","blockNumber":"0x%x","transactionIndex":"0x0"}]`,
			0, number, number, number)
	}
	return json.Unmarshal([]byte(body), result)
}

func (n *receiptsNode) BatchCallContext(context.Context, []rpc.BatchElem) error { return nil }

func TestBlockReceiptsFetchedOnceForAllSenders(t *testing.T) {
	node := &receiptsNode{head: 10, release: make(chan struct{})}
	c := NewClient(node, "test", nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	got := make([]int, 8)
	for i := range got {
		wg.Go(func() {
			rs, err := c.BlockReceipts(ctx, 7)
			if err != nil || len(rs) != 1 || rs[0].BlockNumber != 7 {
				t.Errorf("caller %d: %v, %v", i, rs, err)
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // all eight are waiting on the first fetch
	close(node.release)
	wg.Wait()
	if n := node.calls.Load(); n != 1 {
		t.Fatalf("8 concurrent readers of block 7 made %d node calls, want 1", n)
	}
	if _, err := c.BlockReceipts(ctx, 7); err != nil || node.calls.Load() != 1 {
		t.Errorf("a recent block was fetched again (%d calls, %v)", node.calls.Load(), err)
	}
	// A reorg: the sender forgets the blocks from the fork point on.
	c.ForgetBlocks(5)
	if _, err := c.BlockReceipts(ctx, 7); err != nil || node.calls.Load() != 2 {
		t.Errorf("after ForgetBlocks(5), block 7 made %d calls in all, want 2 (%v)", node.calls.Load(), err)
	}
	// A block the node does not have is an error, and is not cached.
	for range 2 {
		if _, err := c.BlockReceipts(ctx, 11); !errors.Is(err, ErrNotFound) {
			t.Errorf("block above the node's head: %v, want ErrNotFound", err)
		}
	}
	if n := node.calls.Load(); n != 4 {
		t.Errorf("%d calls, want 4 (a missing block is asked for again)", n)
	}
	// Entries expire.
	old := blockCacheTTL
	blockCacheTTL = 10 * time.Millisecond
	defer func() { blockCacheTTL = old }()
	time.Sleep(20 * time.Millisecond)
	if _, err := c.BlockReceipts(ctx, 7); err != nil || node.calls.Load() != 5 {
		t.Errorf("an expired block was served from the cache (%d calls, %v)", node.calls.Load(), err)
	}
}
