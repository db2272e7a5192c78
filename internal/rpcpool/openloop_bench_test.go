package rpcpool

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// openLoopInterval is the fixed schedule of BenchmarkProxyOpenLoop: one
// request every millisecond, 1,000 requests/s, whether or not the ones
// before have been answered.
const openLoopInterval = time.Millisecond

// BenchmarkProxyOpenLoop measures the latency the failover endpoint adds
// over calling the node directly, at a fixed open-loop rate of 1,000
// requests/s (issue 3: p50 under 150 µs, p99 under 1 ms added). The node
// is the dev chain's HTTP JSON-RPC; the endpoint runs in an httptest
// server over a pool of three upstreams, all that node, with the pool's
// default timings and bearer-token auth. b.N requests (eth_blockNumber
// and eth_getBalance in turn) go straight to the node, then b.N through
// the endpoint. Each request is sent at its scheduled time on its own
// goroutine, whether or not the ones before were answered, so a stall
// delays every request scheduled behind it instead of hiding them (no
// coordinated omission). Use -benchtime=Nx: N requests take N ms per
// phase. The *_added_µs figures compare the time from send to answer;
// *_added_sched_µs from the scheduled time, which adds the generator's
// own lateness (p50_send_lag_µs) to both paths alike.
func BenchmarkProxyOpenLoop(b *testing.B) {
	c := startChain(b)
	node := c.RPCURL()
	p := startPool(b, Config{Chain: "sandbox", ChainID: c.ChainID(), Upstreams: []UpstreamConfig{
		{Name: "a", URL: node}, {Name: "b", URL: node}, {Name: "c", URL: node},
	}})
	tp := startProxy(b, p, ProxyConfig{Tokens: [][32]byte{HashToken("bench")}})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Bounded, so that a stall (a GC of the in-process chain) queues
	// requests rather than opening a connection each until the process
	// runs out of file descriptors; the wait counts in their latency.
	tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = 128, 128
	// Uncompressed both ways, as the pool asks a node on this machine
	// (a gzipping node would make the direct path the slower one).
	tr.DisableCompression = true
	hc := &http.Client{Transport: tr}
	bodies := []string{
		`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`,
		fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":[%q,"latest"]}`, c.HotWallet().Hex()),
	}
	send := func(url string) func(int) error {
		return func(i int) error { return openLoopPost(hc, url, bodies[i%len(bodies)]) }
	}
	// Warm both paths' connections and the pool's latency windows.
	for i := range 200 {
		if err := send(node)(i); err != nil {
			b.Fatal(err)
		}
		if err := send(tp.url)(i); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	direct := openLoop(b, b.N, send(node))
	proxied := openLoop(b, b.N, send(tp.url))
	b.StopTimer()

	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p99", 0.99}} {
		d, v := latencyAt(direct.took, q.q), latencyAt(proxied.took, q.q)
		b.ReportMetric(us(d), q.name+"_direct_µs")
		b.ReportMetric(us(v), q.name+"_proxy_µs")
		b.ReportMetric(us(v-d), q.name+"_added_µs")
		d, v = latencyAt(direct.fromSchedule, q.q), latencyAt(proxied.fromSchedule, q.q)
		b.ReportMetric(us(v-d), q.name+"_added_sched_µs")
	}
	b.ReportMetric(us(latencyAt(proxied.took, 1)), "max_proxy_µs")
	b.ReportMetric(us(latencyAt(direct.lag, 0.5)), "p50_send_lag_µs")
}

// loopResult is what openLoop measured of each request: took from its
// send to its answer, fromSchedule from its scheduled time to its answer,
// lag from its scheduled time to its send (the generator's own lateness:
// a sleeping goroutine wakes some 0.5 ms late on a busy VM).
type loopResult struct {
	took, fromSchedule, lag []time.Duration
}

// openLoop sends n requests at openLoopInterval from now, each on its
// own goroutine at its scheduled time. A failed request fails the
// benchmark.
func openLoop(b *testing.B, n int, send func(i int) error) loopResult {
	r := loopResult{took: make([]time.Duration, n), fromSchedule: make([]time.Duration, n), lag: make([]time.Duration, n)}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * openLoopInterval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			sent := time.Now()
			if err := send(i); err != nil {
				b.Error(err)
			}
			done := time.Now()
			r.took[i], r.fromSchedule[i], r.lag[i] = done.Sub(sent), done.Sub(at), sent.Sub(at)
		})
	}
	wg.Wait()
	return r
}

// latencyAt is the q-quantile (nearest rank) of ds; it sorts ds.
func latencyAt(ds []time.Duration, q float64) time.Duration {
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// openLoopPost sends one JSON-RPC request and checks it got a result.
func openLoopPost(hc *http.Client, url, body string) error {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer bench")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(out), `"result"`) {
		return fmt.Errorf("%s: %d %s, %v", body, resp.StatusCode, out, err)
	}
	return nil
}
