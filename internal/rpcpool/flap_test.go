package rpcpool

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/sluicepay/sluice/internal/rpcpool/rpcfault"
)

// TestFlappingFaults shows concurrent reads never failing while two of
// three upstreams change faults every few milliseconds, as long as one
// stays sound.
func TestFlappingFaults(t *testing.T) {
	c := startChain(t)
	flappy := []*rpcfault.Upstream{rpcfault.New(t, c.RPCURL(), rpcfault.None), rpcfault.New(t, c.RPCURL(), rpcfault.None)}
	good := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	cfg := testConfig(flappy[0].URL, flappy[1].URL, good.URL)
	// Under -race on a busy machine the sound upstream's p90 reaches
	// 100 ms: give it room, so that only the faults fail attempts.
	cfg.AttemptTimeout = time.Second
	p := startPool(t, cfg)
	want, err := c.Client().BalanceAt(context.Background(), c.HotWallet(), nil)
	if err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var flips sync.WaitGroup
	flips.Go(func() {
		faults := []rpcfault.Fault{rpcfault.None, rpcfault.TooManyRequests, rpcfault.ServerError, rpcfault.Malformed, rpcfault.Hang, rpcfault.Slow, rpcfault.WrongChain, rpcfault.Stale}
		for {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
				flappy[rand.IntN(2)].Set(faults[rand.IntN(len(faults))])
			}
		}
	})
	var readers sync.WaitGroup
	var mu sync.Mutex
	var failed []error
	for range 4 {
		readers.Go(func() {
			for range 60 {
				var got hexutil.Big
				err := p.Call(context.Background(), &got, "eth_getBalance", c.HotWallet(), "latest")
				if err == nil && got.ToInt().Cmp(want) != 0 {
					err = errWrongAnswer
				}
				if err != nil {
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
				}
			}
		})
	}
	readers.Wait()
	close(stop)
	flips.Wait()
	if len(failed) > 0 {
		t.Errorf("%d of 240 reads failed, want 0; first: %v", len(failed), failed[0])
		for _, st := range p.Status() {
			t.Logf("%+v", st)
		}
	}
}

var errWrongAnswer = errors.New("wrong balance")
