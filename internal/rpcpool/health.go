package rpcpool

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
)

// checkAll checks every upstream in parallel and waits.
func (p *Pool) checkAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, u := range p.ups {
		wg.Go(func() { p.check(ctx, u) })
	}
	wg.Wait()
	p.refreshGauges()
}

func (p *Pool) healthLoop(ctx context.Context, u *upstream) {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.check(ctx, u)
			p.refreshGauges()
		}
	}
}

// health is one health check's answers.
type health struct {
	chainID uint64
	head    uint64
	syncing bool
}

// check asks u for its chain id, head and sync state in one batch and
// records what it learns. A failed check counts against the breaker; a
// good one is the half-open breaker's probe.
func (p *Pool) check(ctx context.Context, u *upstream) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.HealthTimeout)
	defer cancel()
	start := time.Now()
	h, err := p.ask(ctx, u)
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return // Stop: not the upstream's fault
	}
	if err != nil {
		out, label := classify(err)
		if out == outcomeAnswer {
			out = outcomeFailure // a node that cannot answer these is not usable
		}
		u.setErr(err.Error())
		p.record(u, "health", start, out, label)
		p.log.Warn("upstream health check failed", "upstream", u.name, "err", err)
		return
	}
	u.lastSeen.Store(time.Now().UnixNano())
	if h.chainID != p.cfg.ChainID {
		p.refuse(u, h.chainID)
		return
	}
	u.mu.Lock()
	u.chainKnown, u.wrongChain, u.syncing = true, 0, h.syncing
	u.mu.Unlock()
	u.head.Store(h.head)
	p.raiseBest(h.head)
	if u.brk.current() != BreakerClosed {
		// The check is a probe that answered: the upstream is back. Waiting
		// out BreakerOpenFor as well would leave it unused while the only
		// others fail, and faults move faster than that.
		p.breakerMoved(u, u.brk.success)
	}
}

// refuse marks u as being on the wrong chain: it is never used until a
// check finds it on the right one.
func (p *Pool) refuse(u *upstream, got uint64) {
	u.mu.Lock()
	first := u.wrongChain != got
	u.chainKnown, u.wrongChain = true, got
	u.lastErr = fmt.Sprintf("wrong chain: chain id %d, want %d", got, p.cfg.ChainID)
	u.mu.Unlock()
	if first {
		p.log.Error("upstream refused: wrong chain", "upstream", u.name, "chain_id", got, "want_chain_id", p.cfg.ChainID)
	}
}

func (p *Pool) raiseBest(head uint64) {
	for {
		cur := p.bestHead.Load()
		if head <= cur || p.bestHead.CompareAndSwap(cur, head) {
			return
		}
	}
}

// ask sends the health batch: eth_chainId, eth_blockNumber, eth_syncing.
// An upstream that refuses batches (some providers' plans do) is asked
// the three one by one.
func (p *Pool) ask(ctx context.Context, u *upstream) (health, error) {
	var id, head hexutil.Uint64
	var syncing any
	batch := []rpc.BatchElem{
		{Method: "eth_chainId", Result: &id},
		{Method: "eth_blockNumber", Result: &head},
		{Method: "eth_syncing", Result: &syncing},
	}
	err := u.scrub(u.client.BatchCallContext(ctx, batch))
	if err != nil && batchRefused(err) {
		for i := range batch {
			batch[i].Error = u.scrub(u.client.CallContext(ctx, batch[i].Result, batch[i].Method))
		}
		err = nil
	}
	if err != nil {
		return health{}, fmt.Errorf("health batch: %w", err)
	}
	for _, e := range batch {
		if e.Error != nil {
			return health{}, fmt.Errorf("health %s: %w", e.Method, e.Error)
		}
	}
	// eth_syncing answers false, or an object while the node catches up.
	isSyncing := syncing != nil && syncing != false
	return health{chainID: uint64(id), head: uint64(head), syncing: isSyncing}, nil
}

// batchRefused reports whether err looks like a refusal of batches rather
// than a node or network failure: an HTTP 4xx other than 429, or a
// JSON-RPC "invalid request".
func batchRefused(err error) bool {
	var httpErr rpc.HTTPError
	if errors.As(err, &httpErr) {
		return httpErr.StatusCode >= 400 && httpErr.StatusCode < 500 && httpErr.StatusCode != http.StatusTooManyRequests
	}
	var rpcErr rpc.Error
	return errors.As(err, &rpcErr) && rpcErr.ErrorCode() == -32600
}

// refreshGauges exports every upstream's score, lag and health.
func (p *Pool) refreshGauges() {
	now := time.Now()
	for _, u := range p.ups {
		u.m.score.Set(p.score(u, now))
		u.m.lag.Set(float64(p.lag(u)))
		u.m.breaker.Set(breakerValue(u.brk.current()))
		healthy := 0.0
		if p.fit(u, now, true) {
			healthy = 1
		}
		u.m.healthy.Set(healthy)
	}
}
