package rpcpool

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/sluicepay/sluice/internal/evm"
)

// batchResult is one upstream's answers to a batch of transactions.
type batchResult struct {
	u    *upstream
	errs []error // per transaction; all the same on a transport failure
}

// BroadcastBatch sends many signed transactions to every usable upstream
// at once, one JSON-RPC batch per upstream, and returns each transaction's
// outcome: nil when at least one upstream accepted it ("already known"
// included). It returns as soon as every transaction is accepted somewhere
// or every upstream has answered; slower upstreams finish in the
// background (Stop waits for them). A transaction no upstream accepted gets
// the most telling answer: a node's deterministic error (e.g. "nonce too
// low", which the caller settles by receipt), else the last failure.
func (p *Pool) BroadcastBatch(ctx context.Context, raws [][]byte) ([]error, error) {
	ups := p.candidates(time.Now(), false)
	if len(ups) == 0 {
		return nil, fmt.Errorf("broadcast %d transactions: %w", len(raws), ErrNoUpstream)
	}
	results := fanOut(p, ctx, ups, func(ctx context.Context, u *upstream) batchResult { return p.sendBatchTo(ctx, u, raws) })
	return mergeBatch(ctx, results, len(ups), len(raws))
}

// mergeBatch folds the upstreams' answers into one outcome per transaction.
func mergeBatch(ctx context.Context, results <-chan batchResult, n, size int) ([]error, error) {
	out := make([]error, size)
	accepted := make([]bool, size)
	left := size
	for range n {
		var r batchResult
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case r = <-results:
		}
		for i, err := range r.errs {
			if accepted[i] {
				continue
			}
			kind, deterministic := evm.Classify(err)
			switch {
			case err == nil || kind == evm.KindAlreadyKnown:
				accepted[i], out[i] = true, nil
				left--
			case deterministic || out[i] == nil:
				out[i] = err
			}
		}
		if left == 0 {
			return out, nil
		}
	}
	return out, nil
}

// sendBatchTo sends the transactions to one upstream in one batch.
func (p *Pool) sendBatchTo(ctx context.Context, u *upstream, raws [][]byte) batchResult {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.AttemptTimeout)
	defer cancel()
	res := batchResult{u: u, errs: make([]error, len(raws))}
	fail := func(err error) batchResult {
		for i := range res.errs {
			res.errs[i] = err
		}
		return res
	}
	if !u.brk.allow(time.Now()) {
		return fail(fmt.Errorf("upstream %s: breaker open", u.name))
	}
	elems := make([]rpc.BatchElem, len(raws))
	for i, raw := range raws {
		elems[i] = rpc.BatchElem{Method: "eth_sendRawTransaction", Args: []any{hexutil.Bytes(raw)}, Result: new(common.Hash)}
	}
	start := time.Now()
	err := u.scrub(u.client.BatchCallContext(ctx, elems))
	out, label := classify(err)
	p.record(u, "eth_sendRawTransaction", start, out, label)
	if err != nil {
		return fail(err)
	}
	for i := range elems {
		res.errs[i] = u.scrub(elems[i].Error)
	}
	return res
}
