package rpcpool

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/sluicepay/sluice/internal/rpcpool/rpcfault"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// TestFaultMovesToTheOnlyFitUpstream is the moment the faults of
// TestFaultsTwoOfThreeUpstreams (cmd/sluice) move: the upstream that was
// sound fails, and the one that recovered still has an open breaker and
// the stale head of its last failed check. A read must not fail, and must
// not wait out the attempt deadline either: the pool re-checks, finds the
// recovered upstream and asks it.
func TestFaultMovesToTheOnlyFitUpstream(t *testing.T) {
	c := startChain(t)
	for _, tt := range []struct {
		name    string
		fault   rpcfault.Fault
		maxTook time.Duration
	}{
		{"fails fast", rpcfault.ServerError, time.Second},
		{"black hole", rpcfault.Hang, 2 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := rpcfault.New(t, c.RPCURL(), rpcfault.None)
			b := rpcfault.New(t, c.RPCURL(), rpcfault.None)
			cfg := testConfig(a.URL, b.URL)
			cfg.HealthInterval, cfg.BreakerOpenFor = time.Hour, time.Hour
			cfg.AttemptTimeout, cfg.HealthTimeout, cfg.RequestTimeout = 5*time.Second, 3*time.Second, 15*time.Second
			p := startPool(t, cfg)

			// b fails until its breaker opens, and misses blocks meanwhile.
			b.Set(rpcfault.ServerError)
			for p.ups[1].brk.current() != BreakerOpen {
				readLatest(t, p, c)
			}
			for range 2 * p.cfg.MaxLag {
				if _, err := c.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			p.checkAll(context.Background())
			if p.sound(p.ups[1], true) {
				t.Fatalf("b still looks sound for fresh reads (head %d, best %d); the test needs it stale", p.ups[1].head.Load(), p.bestHead.Load())
			}

			// The faults move: a fails, b is back.
			a.Set(tt.fault)
			b.Set(rpcfault.None)
			start := time.Now()
			var bal hexutil.Big
			if err := p.Call(context.Background(), &bal, "eth_getBalance", c.HotWallet(), "latest"); err != nil {
				t.Fatalf("read after the faults moved: %v", err)
			}
			if took := time.Since(start); took > tt.maxTook {
				t.Errorf("read took %s, want under %s", took, tt.maxTook)
			}
			if got := p.ups[1].brk.current(); got != BreakerClosed {
				t.Errorf("b answered: breaker %s, want closed", got)
			}
		})
	}
}

// TestImplausibleAnswersMoveOn shows an upstream that fell behind or
// moved to another chain since its last health check misleading no one:
// its eth_blockNumber or eth_chainId answer is checked, the upstream is
// marked lagging or refused, and the request goes to the next one.
func TestImplausibleAnswersMoveOn(t *testing.T) {
	c := startChain(t)
	for _, tt := range []struct {
		fault  rpcfault.Fault
		method string
		want   func(got hexutil.Uint64) bool
		marked func(p *Pool, u *upstream) bool
	}{
		{rpcfault.Stale, "eth_blockNumber",
			func(got hexutil.Uint64) bool { return uint64(got) >= 6 },
			func(p *Pool, u *upstream) bool { return !p.sound(u, true) }},
		{rpcfault.WrongChain, "eth_chainId",
			func(got hexutil.Uint64) bool { return uint64(got) == sandbox.ChainID },
			func(p *Pool, u *upstream) bool { return !p.sound(u, false) }},
	} {
		t.Run(string(tt.fault), func(t *testing.T) {
			first := rpcfault.New(t, c.RPCURL(), rpcfault.None)
			second := rpcfault.New(t, c.RPCURL(), rpcfault.None)
			cfg := testConfig(first.URL, second.URL)
			cfg.Upstreams[1].Role = RoleFallback
			cfg.HealthInterval = time.Hour
			p := startPool(t, cfg)
			first.Set(tt.fault)
			before := first.Count(tt.method) // the health check's
			for range 5 {
				var got hexutil.Uint64
				if err := p.Call(context.Background(), &got, tt.method); err != nil {
					t.Fatalf("%s: %v", tt.method, err)
				}
				if !tt.want(got) {
					t.Fatalf("%s answered %d: the faulty upstream's answer was passed on", tt.method, got)
				}
			}
			if !tt.marked(p, p.ups[0]) {
				t.Errorf("the faulty upstream is still used for %s", tt.method)
			}
			if got := first.Count(tt.method) - before; got != 1 {
				t.Errorf("the faulty upstream was asked %s %d times, want once", tt.method, got)
			}
		})
	}
}
