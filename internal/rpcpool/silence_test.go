package rpcpool

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/sluicepay/sluice/internal/rpcpool/rpcfault"
)

// TestSilentPrimaryIsLeftQuickly black-holes the primary under load (it
// stops answering, connections stay open) and checks that reads keep
// answering, none fails, and those caught by the switch wait well under a
// second: the hedge, or the rescue hedge once the budget is spent, sends
// them elsewhere long before the 5 s attempt deadline.
func TestSilentPrimaryIsLeftQuickly(t *testing.T) {
	c := startChain(t)
	primary := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	fallback := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	cfg := testConfig(primary.URL, fallback.URL)
	cfg.AttemptTimeout, cfg.HealthTimeout, cfg.HealthInterval = 5*time.Second, 3*time.Second, time.Second
	cfg.Upstreams[1].Role = RoleFallback
	p := startPool(t, cfg)

	var (
		mu     sync.Mutex
		after  []time.Duration
		failed int
	)
	switchAt := time.Now().Add(500 * time.Millisecond)
	stop := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				start := time.Now()
				var got hexutil.Uint64
				err := p.Call(context.Background(), &got, "eth_blockNumber")
				took := time.Since(start)
				mu.Lock()
				if err != nil {
					failed++
				}
				if start.After(switchAt.Add(-100 * time.Millisecond)) {
					after = append(after, took)
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Until(switchAt))
	primary.Set(rpcfault.Hang)
	wg.Wait()
	if failed != 0 {
		t.Errorf("%d reads failed during the switch", failed)
	}
	slices.Sort(after)
	worst := after[len(after)-1]
	if worst > time.Second {
		t.Errorf("slowest read around the switch took %s (of %d), want under 1 s", worst, len(after))
	}
	t.Logf("%d reads around the switch; p50 %s, max %s", len(after), after[len(after)/2], worst)
}
