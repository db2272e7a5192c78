package txm

import (
	"context"

	"github.com/sluicepay/sluice/internal/evm"
)

// receiptsFetch is one block's receipts being read off the loop's
// goroutine. At a new head the node takes tens of milliseconds to build
// and send a busy block's receipts (about 100 ms for 500 transfers on the
// sandbox under load); the loop used to wait for them, and payouts that
// arrived meanwhile waited with it. Now the loop sends while they come,
// and scans the block once they are here.
type receiptsFetch struct {
	number   uint64
	done     chan struct{} // closed once receipts and err are set
	receipts []*evm.Receipt
	err      error
}

// ready reports whether the fetch has ended (false for nil).
func (f *receiptsFetch) ready() bool {
	if f == nil {
		return false
	}
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// bulkRound is the size of a send round from which the loop waits for a
// block's receipts instead of sending on meanwhile. Payouts then arrive
// faster than rounds can be kept small, and many small rounds cost more
// than they save: each is a store commit, an estimate and a broadcast
// batch, and the node re-sorts its pool for each batch (in interleaved
// 20,000-payout runs, sending on under that load lowered the sustained
// rate by about 15%, and still by about 10% from 50-payout rounds on).
// At 500 payouts a second over four wallets rounds hold a few payouts, and
// the background read halves the p99 from accept to broadcast.
const bulkRound = 16

// blockReceipts returns the receipts of block number once they have been
// read, and starts reading them in the background the first time it is
// asked (ready false until then). When the read ends the loop is woken
// through st.fetched. A fetch of another block under way is abandoned: a
// reorg moved the scan back. After a bulk round (bulkRound) it waits for
// the read instead.
func (s *Sender) blockReceipts(ctx context.Context, number uint64) (receipts []*evm.Receipt, ready bool, err error) {
	st := s.st
	f := st.fetch
	if f == nil || f.number != number {
		f = &receiptsFetch{number: number, done: make(chan struct{})}
		st.fetch = f
		ctx, fetched, timeout := st.ctx, st.fetched, s.cfg.StepTimeout
		go func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			f.receipts, f.err = s.cfg.Client.BlockReceipts(ctx, number)
			close(f.done)
			select {
			case fetched <- struct{}{}:
			default:
			}
		}()
	}
	if st.lastRound >= bulkRound {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	if !f.ready() {
		return nil, false, nil
	}
	st.fetch = nil
	return f.receipts, true, f.err
}
