package evm

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

// The receipts of a block are fetched once for every sender of a chain:
// each hot wallet's sender scans every new block, and without sharing, N
// wallets make the node build and encode each block's receipts N times.
const blockCacheSize = 32 // blocks kept at most

// blockCacheTTL is how long a cached block is served (a variable for tests).
var blockCacheTTL = 3 * time.Second

// blockCache holds recent blocks' receipts by number. A reorg can replace
// a block under the same number, so entries live only briefly and a
// sender that sees a reorg calls ForgetBlocks; a stale entry is caught by
// the sender's canonical re-check all the same (it stores block hashes).
type blockCache struct {
	mu      sync.Mutex
	entries map[uint64]*blockEntry
}

type blockEntry struct {
	ready    chan struct{} // closed once fetched
	fetched  time.Time
	receipts []*Receipt
	err      error
}

// BlockReceipts returns every receipt of a block (eth_getBlockReceipts),
// fetching it once for concurrent and recent callers.
func (c *Client) BlockReceipts(ctx context.Context, number uint64) ([]*Receipt, error) {
	bc := &c.blocks
	bc.mu.Lock()
	if bc.entries == nil {
		bc.entries = map[uint64]*blockEntry{}
	}
	e, ok := bc.entries[number]
	if ok {
		select {
		case <-e.ready:
			if e.err != nil || time.Since(e.fetched) > blockCacheTTL {
				ok = false // failed or old: fetch again
			}
		default: // being fetched: wait for it
		}
	}
	if !ok {
		e = &blockEntry{ready: make(chan struct{})}
		bc.entries[number] = e
		bc.evictLocked(number)
		bc.mu.Unlock()
		e.receipts, e.err = c.fetchBlockReceipts(ctx, number)
		e.fetched = time.Now()
		close(e.ready)
		return e.receipts, e.err
	}
	bc.mu.Unlock()
	c.metrics.calls.WithLabelValues(c.chain, "eth_getBlockReceipts", "cached").Inc()
	select {
	case <-e.ready:
		return e.receipts, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// evictLocked drops entries far below newest.
func (bc *blockCache) evictLocked(newest uint64) {
	if len(bc.entries) <= blockCacheSize {
		return
	}
	for n := range bc.entries {
		if n+blockCacheSize < newest || n > newest+blockCacheSize {
			delete(bc.entries, n)
		}
	}
}

// ForgetBlocks drops cached receipts of blocks from number on: a sender
// that saw them reorged away reads them again.
func (c *Client) ForgetBlocks(from uint64) {
	c.blocks.mu.Lock()
	defer c.blocks.mu.Unlock()
	for n := range c.blocks.entries {
		if n >= from {
			delete(c.blocks.entries, n)
		}
	}
}

func (c *Client) fetchBlockReceipts(ctx context.Context, number uint64) ([]*Receipt, error) {
	var lean []*leanReceipt
	if err := c.call(ctx, &lean, "eth_getBlockReceipts", hexutil.EncodeUint64(number)); err != nil {
		return nil, err
	}
	if lean == nil { // null: the node does not have the block (yet)
		return nil, fmt.Errorf("receipts of block %d: %w", number, ErrNotFound)
	}
	rs := make([]*Receipt, len(lean))
	for i, r := range lean {
		rs[i] = r.receipt()
	}
	return rs, nil
}
