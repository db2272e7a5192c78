package rpcpool

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/sluicepay/sluice/internal/rpcpool/rpcfault"
)

// TestProxyFaultsUnderLoad shows concurrent clients see zero failed
// requests while two of three upstreams turn faulty in the middle of the
// run: the first black-holed, the second failing with 500s.
func TestProxyFaultsUnderLoad(t *testing.T) {
	c := startChain(t)
	ups := []*rpcfault.Upstream{rpcfault.New(t, c.RPCURL(), rpcfault.None), rpcfault.New(t, c.RPCURL(), rpcfault.None), rpcfault.New(t, c.RPCURL(), rpcfault.None)}
	tp := startProxy(t, startPool(t, testConfig(ups[0].URL, ups[1].URL, ups[2].URL)), ProxyConfig{})
	cl, err := ethclient.Dial(tp.url)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want, err := c.Client().BalanceAt(context.Background(), c.HotWallet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				got, err := cl.BalanceAt(context.Background(), c.HotWallet(), nil)
				mu.Lock()
				lat = append(lat, time.Since(start))
				mu.Unlock()
				if err != nil || got.Cmp(want) != 0 {
					failed.Add(1)
					t.Errorf("balance: got %v, %v", got, err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	ups[0].Set(rpcfault.Hang)
	ups[1].Set(rpcfault.ServerError)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	sendAndMine(t, c, cl)
	if failed.Load() != 0 || ok.Load() < 100 {
		t.Errorf("requests: %d ok, %d failed; want at least 100 ok and none failed", ok.Load(), failed.Load())
	}
	if n := testutilCount(tp, "eth_getBalance", "ok"); n != float64(ok.Load()) {
		t.Errorf("endpoint counted %g eth_getBalance ok, clients %d", n, ok.Load())
	}
	slices.Sort(lat)
	p99, worst := lat[len(lat)*99/100], lat[len(lat)-1]
	if p99 > time.Second {
		t.Errorf("p99 latency through the switch: got %s, want under 1s", p99)
	}
	t.Logf("%d requests, %d failed; p50 %s, p99 %s, max %s", ok.Load(), failed.Load(), lat[len(lat)/2], p99, worst)
}
