package rpcpool

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

// BenchmarkProxyBlockNumber measures the endpoint's overhead for
// eth_blockNumber: "pool" is Pool.Call on three in-memory upstreams,
// "proxy" the same request over HTTP through the endpoint in front of that
// pool; the difference is what the endpoint and its HTTP hop add.
func BenchmarkProxyBlockNumber(b *testing.B) {
	cfg := testConfig("http://mem-a.invalid", "http://mem-b.invalid", "http://mem-c.invalid")
	cfg.HTTPClient = &http.Client{Transport: memTransport{}}
	p := startPool(b, cfg)
	b.Run("pool", func(b *testing.B) {
		benchCalls(b, func(ctx context.Context, res *hexutil.Uint64) error {
			return p.Call(ctx, res, "eth_blockNumber")
		})
	})
	tp := startProxy(b, p, ProxyConfig{Tokens: [][32]byte{HashToken("bench")}})
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	hc := &http.Client{Transport: t}
	const getBalance = `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x00000000000000000000000000000000000b0b","latest"]}`
	for _, bb := range []struct{ name, body string }{
		{"proxy", blockNumberBody},
		{"proxy_getBalance", getBalance},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := proxyPost(hc, tp.url, bb.body); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	// One request at a time: the latency of a request through the endpoint,
	// as quantiles, with no queueing behind other requests.
	b.Run("pool_serial", func(b *testing.B) {
		var res hexutil.Uint64
		serialLatency(b, func() error { return p.Call(context.Background(), &res, "eth_blockNumber") })
	})
	b.Run("proxy_serial", func(b *testing.B) {
		serialLatency(b, func() error { return proxyPost(hc, tp.url, blockNumberBody) })
	})
}

// serialLatency runs call b.N times, one at a time, and reports its
// latency quantiles.
func serialLatency(b *testing.B, call func() error) {
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if err := call(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50_µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99_µs")
}

const blockNumberBody = `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`

// proxyPost sends body to the endpoint at url and checks the answer of
// the in-memory upstream, which is 0x10 whatever the method.
func proxyPost(hc *http.Client, url, body string) error {
	const want = `{"jsonrpc":"2.0","id":1,"result":"0x10"}`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer bench")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil || string(out) != want {
		return fmt.Errorf("got %s, %v; want %s", out, err, want)
	}
	return nil
}
