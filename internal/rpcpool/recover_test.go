package rpcpool

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/sluicepay/sluice/internal/rpcpool/rpcfault"
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
