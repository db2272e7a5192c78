package rpcpool

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicepay/sluice/internal/rpcpool/rpcfault"
)

// TestHedging shows a read stuck on a slow upstream answered by a second
// one, and hedges staying within the budget when every read is slow.
func TestHedging(t *testing.T) {
	c := startChain(t)
	tests := []struct {
		name      string
		every     int64 // every n-th request to the primary is slow
		delay     time.Duration
		calls     int
		minHedges float64
	}{
		{"one in twenty slow", 20, 300 * time.Millisecond, 200, 5},
		{"all slow", 1, 40 * time.Millisecond, 60, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slow := rpcfault.New(t, c.RPCURL(), rpcfault.None)
			slow.Delay, slow.SlowEvery = tt.delay, tt.every
			fast := rpcfault.New(t, c.RPCURL(), rpcfault.None)
			cfg := testConfig(slow.URL, fast.URL)
			cfg.Upstreams[1].Role = RoleFallback // the slow primary always goes first
			cfg.HealthInterval = time.Hour
			p := startPool(t, cfg)
			const warmup = 20
			for range warmup {
				callHead(t, p)
			}
			slow.Set(rpcfault.SlowSome)
			slowCalls := 0
			for range tt.calls {
				if took := callHead(t, p); took >= tt.delay {
					slowCalls++
				}
			}
			hedges := testutil.ToFloat64(p.ups[1].m.hedges)
			bound := p.cfg.HedgeBurst + p.cfg.HedgeRatio*float64(warmup+tt.calls)
			if hedges < tt.minHedges || hedges > bound {
				t.Errorf("hedges: got %g, want within [%g, %g]", hedges, tt.minHedges, bound)
			}
			if tt.every > 1 {
				slowRequests := tt.calls / int(tt.every)
				if slowCalls > slowRequests/2 {
					t.Errorf("%d calls waited for the slow upstream, want at most %d of its %d slow answers", slowCalls, slowRequests/2, slowRequests)
				}
			}
			t.Logf("%d calls, %g hedges, %d slow calls", tt.calls, hedges, slowCalls)
		})
	}
}

func callHead(t *testing.T, p *Pool) time.Duration {
	t.Helper()
	start := time.Now()
	var head hexutil.Uint64
	if err := p.Call(context.Background(), &head, "eth_blockNumber"); err != nil || head == 0 {
		t.Fatalf("eth_blockNumber: %d, %v", head, err)
	}
	return time.Since(start)
}

// TestHedgeWinsOverCallersAttempt shows the first attempt, which runs on
// the caller's goroutine, losing to a hedge: the call returns with the
// hedge's answer long before the stuck first attempt would end.
func TestHedgeWinsOverCallersAttempt(t *testing.T) {
	c := startChain(t)
	slow := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	slow.Delay = 3 * time.Second
	fast := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	cfg := testConfig(slow.URL, fast.URL)
	cfg.Upstreams[1].Role = RoleFallback // the slow primary always goes first
	cfg.AttemptTimeout, cfg.RequestTimeout, cfg.HealthInterval = 5*time.Second, 10*time.Second, time.Hour
	p := startPool(t, cfg)
	for range 20 {
		callHead(t, p) // the primary's p90: the hedge delay
	}
	before := testutil.ToFloat64(p.ups[1].m.hedges) // a loaded machine may have hedged a warm-up call
	slow.Set(rpcfault.Slow)
	for i := range 3 {
		if took := callHead(t, p); took > time.Second {
			t.Errorf("call %d took %s with a hedge available, want well under the primary's 3 s", i, took)
		}
	}
	if hedges := testutil.ToFloat64(p.ups[1].m.hedges) - before; hedges != 3 {
		t.Errorf("hedges of the slow calls: got %g, want 3", hedges)
	}
}
