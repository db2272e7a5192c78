package sandbox

import (
	"bytes"

	"context"
	"errors"
	"fmt"
	"github.com/sluicepay/sluice/contracts"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
)

// replayBatch is how many contiguous blocks go to one InsertChain call.
const replayBatch = 512

// openDataDir opens the data dir (if any) and returns the genesis to build
// the chain from: the one recorded there, checked, or a new one.
func (c *Chain) openDataDir() (*core.Genesis, error) {
	code := contracts.BatchExecutor().DeployedBytecode
	genesis := genesisFor(c.hot, c.cfg.GasLimit, code)
	c.executor = BatchExecutorAddress
	if c.cfg.DataDir == "" {
		return genesis, nil
	}
	want := meta{
		Format:          metaFormat,
		ChainID:         ChainID,
		GenesisHash:     genesis.ToBlock().Hash(),
		GenesisGasLimit: c.cfg.GasLimit,
		HotWallet:       c.hot,
		SUSD:            c.susd,
		BatchExecutor:   BatchExecutorAddress,
		ExecutorCode:    code,
		CreatedAt:       time.Now().UTC(),
	}
	d, err := openDataDir(c.cfg.DataDir, want, c.cfg.MustExist)
	if err != nil {
		return nil, err
	}
	c.dir = d
	// A chain created before batch payouts has no executor: batch
	// transactions are unavailable on it (its payouts go one by one).
	c.executor = d.meta.BatchExecutor
	if d.meta.GenesisGasLimit != c.cfg.GasLimit || !bytes.Equal(d.meta.ExecutorCode, code) {
		genesis = genesisFor(c.hot, d.meta.GenesisGasLimit, d.meta.ExecutorCode)
	}
	if err := d.checkGenesis(genesis.ToBlock().Hash()); err != nil {
		return nil, err
	}
	if d.fresh {
		c.log.Info("created a new dev chain", "data_dir", c.cfg.DataDir, "genesis_hash", d.meta.GenesisHash)
	}
	return genesis, nil
}

// restore replays the journal into the (not yet started) node and opens it
// for appending. It returns the number of records replayed.
func (c *Chain) restore(ctx context.Context) (int, error) {
	if c.dir == nil {
		return 0, nil
	}
	r := &replayer{ctx: ctx, c: c}
	end, size, err := scanJournal(c.dir.journalPath(), r.apply)
	if err == nil {
		err = r.flush()
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return 0, fmt.Errorf("sandbox: replay journal: %w", ctxErr)
		}
		if errors.Is(err, errCorrupt) {
			return 0, c.dir.refuse("its block journal "+chainSubdir+"/"+journalFile+" cannot be read", err)
		}
		return 0, c.dir.refuse("its block journal could not be replayed", err)
	}
	if err := r.checkHead(); err != nil {
		return 0, c.dir.refuse("the replayed chain does not end where the journal does", err)
	}
	if end < size {
		c.log.Warn("cut a torn record off the block journal", "offset", end, "bytes", size-end)
	}
	if c.journal, err = openJournal(c.dir.journalPath(), end); err != nil {
		return 0, fmt.Errorf("sandbox: open journal: %w", err)
	}
	return r.records, nil
}

// replayer feeds journal records to the blockchain, batching contiguous
// blocks.
type replayer struct {
	ctx     context.Context
	c       *Chain
	batch   types.Blocks
	last    common.Hash // head the journal says the chain should have
	records int
}

func (r *replayer) apply(rec record) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	r.records++
	switch rec.kind {
	case recordBlock:
		b := new(types.Block)
		if err := rlp.DecodeBytes(rec.payload, b); err != nil {
			return fmt.Errorf("record %d: decode block: %w", r.records, err)
		}
		if n := len(r.batch); n > 0 && (b.ParentHash() != r.batch[n-1].Hash() || n >= replayBatch) {
			if err := r.flush(); err != nil {
				return err
			}
		}
		r.batch = append(r.batch, b)
		r.last = b.Hash()
		return nil
	case recordHead:
		if err := r.flush(); err != nil {
			return err
		}
		r.last = common.BytesToHash(rec.payload)
		return r.setHead(r.last)
	}
	return fmt.Errorf("record %d: unknown kind %d", r.records, rec.kind)
}

// flush inserts the pending blocks and makes the last one the head, as it
// was when it was made.
func (r *replayer) flush() error {
	if len(r.batch) == 0 {
		return nil
	}
	bc := r.c.eth.BlockChain()
	last := r.batch[len(r.batch)-1]
	if n, err := bc.InsertChain(r.batch); err != nil {
		n = min(max(n, 0), len(r.batch)-1)
		return fmt.Errorf("import block %d (%s): %w", r.batch[n].NumberU64(), r.batch[n].Hash(), err)
	}
	r.batch = r.batch[:0]
	if bc.CurrentBlock().Hash() != last.Hash() {
		return r.setHead(last.Hash())
	}
	return nil
}

func (r *replayer) setHead(h common.Hash) error {
	bc := r.c.eth.BlockChain()
	b := bc.GetBlockByHash(h)
	if b == nil {
		return fmt.Errorf("head %s is not a known block", h)
	}
	if _, err := bc.SetCanonical(b); err != nil {
		return fmt.Errorf("set head %s: %w", h, err)
	}
	return nil
}

func (r *replayer) checkHead() error {
	if r.records == 0 {
		return nil
	}
	if got := r.c.eth.BlockChain().CurrentBlock().Hash(); got != r.last {
		return fmt.Errorf("head is %s, want %s", got, r.last)
	}
	return nil
}
