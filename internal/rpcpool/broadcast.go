package rpcpool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluicepay/sluice/internal/evm"
)

// ErrNonceTaken means the nodes answered "nonce too low" and none of them
// knows the transaction: another transaction used its nonce.
var ErrNonceTaken = errors.New("nonce used by another transaction")

// sendResult is one upstream's answer to a broadcast.
type sendResult struct {
	u    *upstream
	err  error
	kind evm.ErrorKind
	out  outcome
}

// Broadcast sends a signed transaction to every usable upstream at once
// and returns its hash when at least one accepted it. "already known" is
// acceptance; "nonce too low" is acceptance only when an upstream knows
// the same hash. Upstreams still answering after the first acceptance
// keep going in the background until AttemptTimeout; Stop waits for them.
func (p *Pool) Broadcast(ctx context.Context, raw []byte) (common.Hash, error) {
	var tx types.Transaction
	if err := tx.UnmarshalBinary(raw); err != nil {
		return common.Hash{}, fmt.Errorf("decode transaction: %w", err)
	}
	hash := tx.Hash()
	ups := p.candidates(time.Now(), false)
	if len(ups) == 0 {
		return hash, fmt.Errorf("broadcast %s: %w", hash.Hex(), ErrNoUpstream)
	}
	results := fanOut(p, ctx, ups, func(ctx context.Context, u *upstream) sendResult { return p.sendTo(ctx, u, raw) })
	return hash, p.collect(ctx, hash, results, len(ups))
}

// fanOut runs send for every upstream at once and returns their results as
// they come. The sends are not cancelled with ctx (a broadcast that one
// upstream accepted still goes to the others); Stop waits for them.
func fanOut[T any](p *Pool, ctx context.Context, ups []*upstream, send func(context.Context, *upstream) T) <-chan T {
	results := make(chan T, len(ups))
	sendCtx := context.WithoutCancel(ctx)
	for _, u := range ups {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			results <- send(sendCtx, u)
		}()
	}
	return results
}

// sendTo sends raw to one upstream with the attempt deadline.
func (p *Pool) sendTo(ctx context.Context, u *upstream, raw []byte) sendResult {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.AttemptTimeout)
	defer cancel()
	if !u.brk.allow(time.Now()) {
		return sendResult{u: u, err: fmt.Errorf("upstream %s: breaker open", u.name), out: outcomeFailure}
	}
	start := time.Now()
	var got common.Hash
	err := u.scrub(u.client.CallContext(ctx, &got, "eth_sendRawTransaction", hexutil.Bytes(raw)))
	out, label := classify(err)
	p.record(u, "eth_sendRawTransaction", start, out, label)
	kind, _ := evm.Classify(err)
	return sendResult{u: u, err: err, kind: kind, out: out}
}

// collect waits for the first acceptance, or for every answer, and
// decides the broadcast's outcome.
func (p *Pool) collect(ctx context.Context, hash common.Hash, results <-chan sendResult, n int) error {
	var answer, lastErr error
	nonceLow := false
	for range n {
		var r sendResult
		select {
		case <-ctx.Done():
			return fmt.Errorf("broadcast %s: %w", hash.Hex(), ctx.Err())
		case r = <-results:
		}
		switch {
		case r.err == nil || r.kind == evm.KindAlreadyKnown:
			return nil
		case r.kind == evm.KindNonceTooLow:
			nonceLow = true
		case r.out == outcomeAnswer:
			answer = r.err
		default:
			lastErr = r.err
		}
	}
	if nonceLow {
		return p.confirmKnown(ctx, hash)
	}
	if answer != nil {
		return fmt.Errorf("broadcast %s: %w", hash.Hex(), answer)
	}
	return fmt.Errorf("broadcast %s: all upstreams failed: %w", hash.Hex(), lastErr)
}

// confirmKnown decides a "nonce too low": success when the network has
// this very transaction (pending or mined), ErrNonceTaken when not.
func (p *Pool) confirmKnown(ctx context.Context, hash common.Hash) error {
	var tx map[string]any
	if err := p.Call(ctx, &tx, "eth_getTransactionByHash", hash); err != nil {
		return fmt.Errorf("broadcast %s: nonce too low, lookup: %w", hash.Hex(), err)
	}
	if tx == nil {
		return fmt.Errorf("broadcast %s: %w", hash.Hex(), ErrNonceTaken)
	}
	return nil
}
