package sandbox

import (
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
)

// ErrClosed is returned by Commit and Fork after Close.
var ErrClosed = errors.New("sandbox: chain is closed")

// errNotSealed means the simulated beacon made no block; it logs the cause
// as a geth warning.
var errNotSealed = errors.New("sandbox: no block was sealed (see the geth warning in the log)")

// Commit seals a block with the pending transactions, journals it, and
// returns its hash. It returns once the transaction pool has taken the new
// head in, as a node has between blocks: a transaction sent next is checked
// against the new state, not against the mined transactions still pooled
// (a rival at a mined nonce is "nonce too low", not "replacement
// underpriced"). After a journal write fails the chain makes no more
// blocks: every later Commit returns that failure.
func (c *Chain) Commit() (common.Hash, error) {
	head, err := c.seal()
	if err != nil {
		return head, err
	}
	if err := c.eth.TxPool().Sync(); err != nil {
		return head, fmt.Errorf("sandbox: transaction pool after block %s: %w", head, err)
	}
	return head, nil
}

// seal is Commit without waiting for the pool, for the timer's blocks: the
// pool catches up on its own, and the next seal brings it up to date
// first. Waiting would cost a busy chain a pool reset per block.
func (c *Chain) seal() (common.Hash, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commitLocked()
}

func (c *Chain) commitLocked() (common.Hash, error) {
	if err := c.usableLocked(); err != nil {
		return common.Hash{}, err
	}
	bc := c.eth.BlockChain()
	before := bc.CurrentBlock().Hash()
	head := c.beacon.Commit()
	if head == before {
		return head, errNotSealed
	}
	block := bc.GetBlockByHash(head)
	if block == nil {
		return head, fmt.Errorf("sandbox: sealed block %s not found", head)
	}
	if err := c.journalBlock(block); err != nil {
		return head, err
	}
	c.metrics.observe(block)
	return head, nil
}

// Fork makes the block parent the head, dropping the blocks above it from
// the canonical chain; the next Commit builds on parent. It is how tests
// make reorgs. The transaction pool must be empty.
func (c *Chain) Fork(parent common.Hash) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usableLocked(); err != nil {
		return err
	}
	if err := c.beacon.Fork(parent); err != nil {
		return fmt.Errorf("sandbox: fork at %s: %w", parent, err)
	}
	if c.journal != nil {
		if err := c.journal.appendHead(parent); err != nil {
			return c.failLocked(err)
		}
	}
	c.metrics.head.Set(float64(c.eth.BlockChain().CurrentBlock().Number.Uint64()))
	c.log.Info("forked", "head_hash", parent)
	return nil
}

// Reorg drops the top depth blocks from the canonical chain, whatever the
// transaction pool holds, and returns the dropped blocks, lowest first. As
// on a real node, the transactions of the dropped blocks go back to the
// pool and the next blocks mine them again (at other heights, in other
// blocks) unless other transactions took their nonces. Fork, like geth's
// simulated beacon, refuses a pool with pending transactions, which a chain
// under steady traffic never has; Reorg is for such chains. Taking the head
// and cutting it under the chain's lock makes the depth exact: no block is
// made in between.
func (c *Chain) Reorg(depth uint64) ([]*types.Block, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usableLocked(); err != nil {
		return nil, err
	}
	bc := c.eth.BlockChain()
	head := bc.CurrentBlock().Number.Uint64()
	if depth == 0 || depth >= head {
		return nil, fmt.Errorf("sandbox: reorg of %d blocks on a chain at block %d", depth, head)
	}
	dropped := make([]*types.Block, 0, depth)
	for n := head - depth + 1; n <= head; n++ {
		dropped = append(dropped, bc.GetBlockByNumber(n))
	}
	parent := bc.GetBlockByNumber(head - depth)
	if _, err := bc.SetCanonical(parent); err != nil {
		return nil, fmt.Errorf("sandbox: reorg to block %d: %w", parent.NumberU64(), err)
	}
	if c.journal != nil {
		if err := c.journal.appendHead(parent.Hash()); err != nil {
			return nil, c.failLocked(err)
		}
	}
	c.metrics.head.Set(float64(parent.NumberU64()))
	c.log.Info("reorganised", "depth", depth, "head_hash", parent.Hash())
	return dropped, nil
}

func (c *Chain) usableLocked() error {
	if c.closed {
		return ErrClosed
	}
	return c.failed
}

func (c *Chain) journalBlock(b *types.Block) error {
	if c.journal == nil {
		return nil
	}
	payload, err := rlp.EncodeToBytes(b)
	if err != nil {
		return c.failLocked(fmt.Errorf("encode block %d: %w", b.NumberU64(), err))
	}
	if err := c.journal.append(recordBlock, payload); err != nil {
		return c.failLocked(err)
	}
	return nil
}

// failLocked stops block production for good: a block missing from the
// journal would make every later block unreplayable.
func (c *Chain) failLocked(err error) error {
	c.failed = fmt.Errorf("sandbox: block journal failed, no more blocks will be made: %w", err)
	c.log.Error("block journal failed; the chain is halted", "data_dir", c.cfg.DataDir, "err", err)
	return c.failed
}

// produce makes a block every BlockTime until Close.
func (c *Chain) produce() {
	defer close(c.done)
	if c.cfg.BlockTime <= 0 {
		return
	}
	t := time.NewTicker(c.cfg.BlockTime)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		_, err := c.seal()
		switch {
		case err == nil:
			lastErr = ""
		case errors.Is(err, ErrClosed) || c.isFailed():
			return
		case err.Error() != lastErr: // one line per distinct failure, not per tick
			lastErr = err.Error()
			c.log.Warn("block production failed", "err", err)
		}
	}
}

func (c *Chain) isFailed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed != nil
}
