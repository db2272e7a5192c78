package main

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/evm"
)

// BenchmarkSandboxEndToEnd measures, with `sluice devchain` (1 s blocks)
// and `sluice serve` as separate processes on SQLite, how fast payouts are
// accepted over HTTP (16 clients) and how fast they all reach completed,
// and the engine's peak memory. SLUICE_BENCH_PAYOUTS sets the count
// (default 10,000), SLUICE_BENCH_CLIENTS the clients; run with
// -benchtime=1x. Timing starts once the engine is ready (waitReady):
// throughput, not the keys' decryption. completed/s is over the whole run
// (first request to last completion); sustained_completed/s is the rate
// from 10% to 90% completed.
func BenchmarkSandboxEndToEnd(b *testing.B) {
	n := envInt("SLUICE_BENCH_PAYOUTS", 10000)
	be := startBenchEngine(b)
	defer be.stop()
	url, info, engine, chain := be.url, be.info, be.engine, be.chain
	be.waitReady()
	for b.Loop() {
		cpu0 := [3]float64{procCPUSeconds(engine.cmd.Process.Pid), procCPUSeconds(chain.cmd.Process.Pid), procCPUSeconds(os.Getpid())}
		start := time.Now()
		samples := sampleCompleted(url)
		ids := submitAll(b, url, info.APIKey, n)
		accepted := time.Since(start)
		waitCompleted(b, url, n)
		elapsed := time.Since(start)
		b.ReportMetric(sustainedRate(samples.stop(), n), "sustained_completed/s")
		// CPU per payout while paying (key decryption at start excluded):
		// what decides throughput on a machine's cores.
		cpu1 := [3]float64{procCPUSeconds(engine.cmd.Process.Pid), procCPUSeconds(chain.cmd.Process.Pid), procCPUSeconds(os.Getpid())}
		for i, unit := range []string{"engine_cpu_ms/payout", "chain_cpu_ms/payout", "client_cpu_ms/payout"} {
			b.ReportMetric((cpu1[i]-cpu0[i])*1000/float64(n), unit)
		}
		if !allCompleted(b, url, info.APIKey, ids) {
			b.Fatal("the gauge says completed but a payout is not")
		}
		b.ReportMetric(float64(n)/accepted.Seconds(), "accepted/s")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "completed/s")
		b.ReportMetric(elapsed.Seconds(), "s_total")
		// Replacements (fees rising as full blocks raise the base fee) cost
		// a signature, a write and a broadcast each.
		b.ReportMetric(metricSum(b, url, "sluice_attempts_total{")/float64(n), "attempts/payout")
		if drift := metricSum(b, url, `sluice_reconcile_runs_total{chain="sandbox",outcome="drift"`); drift != 0 {
			b.Fatalf("the engine's reconciliation found drift %v times under load", drift)
		}
		b.ReportMetric(metricSum(b, url, `sluice_reconcile_runs_total{chain="sandbox",outcome="balanced"`), "balanced_reconciliations")
	}
	b.ReportMetric(procCPUSeconds(engine.cmd.Process.Pid), "engine_cpu_s")
	b.ReportMetric(procCPUSeconds(chain.cmd.Process.Pid), "chain_cpu_s")
	b.ReportMetric(float64(procMemKiB(engine.cmd.Process.Pid, "VmRSS"))/1024, "engine_rss_MiB")
	b.ReportMetric(float64(procMemKiB(engine.cmd.Process.Pid, "VmHWM"))/1024, "engine_peak_rss_MiB")
}

// benchEngine is `sluice devchain` and `sluice serve` as separate
// processes, as a user runs them.
type benchEngine struct {
	b             *testing.B
	bin, dir, url string
	info          devInfo
	chain, engine *proc
}

// envInt reads a positive integer from the environment, or def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// startBenchEngine starts a dev chain (1 s blocks, SLUICE_BENCH_WALLETS hot
// wallets, default 1) and an engine on it (SQLite, log level warn, the
// books reconciled every 2 s unless SLUICE_ENGINE_RECONCILE_EVERY says);
// SLUICE_BENCH_PPROF and SLUICE_BENCH_CHAIN_PPROF serve their profilers.
func startBenchEngine(b *testing.B) *benchEngine {
	be := &benchEngine{b: b, bin: buildBinary(b), dir: b.TempDir()}
	wallets := strconv.Itoa(envInt("SLUICE_BENCH_WALLETS", 1))
	chainArgs := []string{"devchain", "--data-dir", be.dir, "--rpc", "127.0.0.1:0", "--block-time", "1s", "--hot-wallets", wallets}
	if addr := os.Getenv("SLUICE_BENCH_CHAIN_PPROF"); addr != "" {
		chainArgs = append(chainArgs, "--pprof", addr)
	}
	be.chain, _ = startProc(b, be.bin, "Run the engine against it", chainArgs...)
	readJSON(b, filepath.Join(be.dir, "devchain.json"), &be.info)
	b.Setenv("SLUICE_LOG_LEVEL", "warn")
	if os.Getenv("SLUICE_ENGINE_RECONCILE_EVERY") == "" {
		// Reconcile the books with the chain during the run, not only once
		// a minute: a drift under load fails BenchmarkSandboxEndToEnd.
		b.Setenv("SLUICE_ENGINE_RECONCILE_EVERY", "2s")
	}
	be.startEngine()
	return be
}

// startEngine starts (or restarts) the engine on the chain's config.
func (be *benchEngine) startEngine() {
	serveArgs := []string{"serve", "--config", filepath.Join(be.dir, "sluice.yaml"), "--http", "127.0.0.1:0"}
	if addr := os.Getenv("SLUICE_BENCH_PPROF"); addr != "" {
		serveArgs = append(serveArgs, "--pprof", addr)
	}
	var line string
	be.engine, line = startProc(be.b, be.bin, "Sluice API at", serveArgs...)
	be.url = strings.TrimSpace(strings.TrimPrefix(line, "Sluice API at"))
}

// waitReady waits until the engine's /readyz answers 200. The API answers
// while the keys still open (scrypt: about a second of CPU and 256 MiB
// each, four keys with four wallets); the figures are the steady state,
// so payouts are offered only once every signer is ready.
// BenchmarkResumeAfterKill times the start.
func (be *benchEngine) waitReady() {
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(be.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			be.b.Fatal("the engine was not ready after a minute")
		}
	}
}

// stop ends both processes, logging the engine's warnings and errors.
func (be *benchEngine) stop() {
	var problems []string
	for _, l := range strings.Split(be.engine.out.String(), "\n") {
		if strings.Contains(l, `msg="readiness check failed"`) {
			continue // waitReady's polling while the keys open
		}
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			problems = append(problems, l)
		}
	}
	if len(problems) > 0 {
		be.b.Logf("engine warnings and errors (%d):\n%s", len(problems), strings.Join(problems[:min(len(problems), 30)], "\n"))
	}
	be.engine.stop()
	be.chain.stop()
}

// BenchmarkAcceptToBroadcast measures the time from a payout's acceptance
// to the first broadcast of its transaction while payouts arrive at a fixed
// rate (SLUICE_BENCH_RATE per second, default 500; open loop: a slow
// answer does not slow the arrivals), from the engine's
// sluice_payout_accept_to_broadcast_seconds histogram (quantiles
// interpolated within its buckets, as Prometheus does).
func BenchmarkAcceptToBroadcast(b *testing.B) {
	n, rate := envInt("SLUICE_BENCH_PAYOUTS", 5000), envInt("SLUICE_BENCH_RATE", 500)
	be := startBenchEngine(b)
	defer be.stop()
	be.waitReady()
	for b.Loop() {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
		salt := time.Now().UnixNano()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		var wg sync.WaitGroup
		start := time.Now()
		for i := range n {
			<-tick.C
			wg.Go(func() {
				w := wanted{asset: "ETH", to: common.BigToAddress(big.NewInt(salt + int64(i))), amount: big.NewInt(1e12)}
				if i%2 == 1 {
					w.asset, w.amount = "SUSD", big.NewInt(1_000_000)
				}
				createOnce(b, client, be.url, be.info.APIKey, w, fmt.Sprintf("lat-%d-%d", salt, i))
			})
		}
		tick.Stop()
		wg.Wait()
		offered := float64(n) / time.Since(start).Seconds()
		h := waitHistogram(b, be.url, "sluice_payout_accept_to_broadcast_seconds", n)
		b.ReportMetric(offered, "offered/s")
		b.ReportMetric(h.quantile(0.50)*1000, "p50_ms")
		b.ReportMetric(h.quantile(0.99)*1000, "p99_ms")
	}
}

// BenchmarkResumeAfterKill measures how long sending stops when the engine
// is SIGKILLed and restarted at once (as a supervisor would): from the
// kill until the restarted engine broadcasts a payout created as soon as
// its API answers (its accept-to-broadcast histogram counts it). Payouts
// sent before the kill keep the chain busy meanwhile.
func BenchmarkResumeAfterKill(b *testing.B) {
	be := startBenchEngine(b)
	defer be.stop()
	client := &http.Client{}
	salt := time.Now().UnixNano()
	pay := func(tag string, j int) {
		w := wanted{asset: "ETH", to: common.BigToAddress(big.NewInt(salt + int64(j))), amount: big.NewInt(1e12)}
		createOnce(b, client, be.url, be.info.APIKey, w, fmt.Sprintf("resume-%d-%s-%d", salt, tag, j))
	}
	var startSum, resumeSum, worst time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		for j := range 50 {
			pay(fmt.Sprint(i), i*1000+j)
		}
		killed := time.Now()
		be.engine.kill()
		be.startEngine()
		started := time.Since(killed)
		pay(fmt.Sprintf("%d-after", i), i*1000+999)
		for readHistogram(b, be.url, "sluice_payout_accept_to_broadcast_seconds").count == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		resumed := time.Since(killed)
		startSum, resumeSum, worst, n = startSum+started, resumeSum+resumed, max(worst, resumed), n+1
	}
	b.ReportMetric(startSum.Seconds()*1000/float64(n), "process_start_ms")
	b.ReportMetric(resumeSum.Seconds()*1000/float64(n), "kill_to_broadcast_ms")
	b.ReportMetric(worst.Seconds()*1000, "worst_kill_to_broadcast_ms")
}

// histogram is a Prometheus histogram read from /metrics.
type histogram struct {
	bounds []float64 // upper bounds, increasing; the last is +Inf
	counts []float64 // cumulative
	count  float64
}

// quantile interpolates linearly within the bucket holding q.
func (h histogram) quantile(q float64) float64 {
	rank := q * h.count
	lower, below := 0.0, 0.0
	for i, ub := range h.bounds {
		if h.counts[i] >= rank {
			if math.IsInf(ub, 1) {
				return lower
			}
			in := h.counts[i] - below
			if in == 0 {
				return ub
			}
			return lower + (ub-lower)*(rank-below)/in
		}
		lower, below = ub, h.counts[i]
	}
	return math.NaN()
}

// readHistogram reads one histogram (summed over its labels) from /metrics.
func readHistogram(b *testing.B, url, name string) histogram {
	body, err := readMetrics(url)
	if err != nil {
		b.Fatal(err)
	}
	byBound := map[float64]float64{}
	var h histogram
	for _, l := range strings.Split(string(body), "\n") {
		switch {
		case strings.HasPrefix(l, name+"_bucket{"):
			i := strings.Index(l, `le="`)
			le := l[i+4 : i+4+strings.IndexByte(l[i+4:], '"')]
			bound, _ := strconv.ParseFloat(le, 64)
			if le == "+Inf" {
				bound = math.Inf(1)
			}
			v, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			byBound[bound] += v
		case strings.HasPrefix(l, name+"_count"):
			v, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			h.count += v
		}
	}
	for bound := range byBound {
		h.bounds = append(h.bounds, bound)
	}
	sort.Float64s(h.bounds)
	for _, bound := range h.bounds {
		h.counts = append(h.counts, byBound[bound])
	}
	return h
}

// waitHistogram waits until a histogram has counted n observations.
func waitHistogram(b *testing.B, url, name string, n int) histogram {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		if h := readHistogram(b, url, name); h.count >= float64(n) {
			return h
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("%s did not reach %d observations in 5 minutes", name, n)
	return histogram{}
}

// submitAll creates n payouts (half ETH, half SUSD, all to new addresses)
// with 16 concurrent keep-alive clients.
func submitAll(b *testing.B, url, key string, n int) []string {
	ids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	clients := envInt("SLUICE_BENCH_CLIENTS", 16)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	salt := time.Now().UnixNano()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				w := wanted{asset: "ETH", to: common.BigToAddress(big.NewInt(salt + int64(i))), amount: big.NewInt(1e12)}
				if i%2 == 1 {
					w.asset, w.amount = "SUSD", big.NewInt(1_000_000)
				}
				ids[i] = createOnce(b, client, url, key, w, fmt.Sprintf("bench-%d-%d", salt, i))
			}
		}()
	}
	wg.Wait()
	return ids
}

func createOnce(b *testing.B, c *http.Client, url, key string, w wanted, idem string) string {
	body := fmt.Sprintf(`{"chain":"sandbox","asset":%q,"to":%q,"amount":%q}`, w.asset, w.to.Hex(), w.amount.String())
	req, _ := http.NewRequest("POST", url+"/v1/payouts", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Idempotency-Key", idem)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("create: status %d", resp.StatusCode)
	}
	if err := jsonDecode(resp, &p); err != nil {
		b.Fatal(err)
	}
	return p.ID
}

// completedSamples are the engine's count of payouts it completed, read
// every 200 ms while a benchmark runs.
type completedSamples struct {
	quit chan struct{}
	done chan []completedSample
}

type completedSample struct {
	at time.Time
	n  float64
}

// completedCounter is the senders' count of payouts they completed.
const completedCounter = `sluice_payout_transitions_total{chain="sandbox",status="completed"}`

// sampleCompleted starts sampling url's sluice_payout_transitions_total
// for completed payouts (a counter the senders bump as they finalize; no
// query behind it).
func sampleCompleted(url string) *completedSamples {
	c := &completedSamples{quit: make(chan struct{}), done: make(chan []completedSample, 1)}
	go func() {
		var out []completedSample
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-c.quit:
				c.done <- out
				return
			case <-tick.C:
			}
			if n, ok := scrapeSum(url, completedCounter); ok {
				out = append(out, completedSample{time.Now(), n})
			}
		}
	}()
	return c
}

// stop ends the sampling and returns the samples.
func (c *completedSamples) stop() []completedSample {
	close(c.quit)
	return <-c.done
}

// sustainedRate is the completion rate between 10% and 90% of n completed
// (each crossing interpolated between samples): the pipeline's rate once
// full, without the first payouts' way to their confirmations (about three
// blocks) and the last ones' drain, which a whole run's rate includes.
func sustainedRate(ss []completedSample, n int) float64 {
	at := func(frac float64) (time.Time, bool) {
		want := frac * float64(n)
		for i := 1; i < len(ss); i++ {
			if ss[i].n >= want && ss[i-1].n < want {
				f := (want - ss[i-1].n) / (ss[i].n - ss[i-1].n)
				return ss[i-1].at.Add(time.Duration(f * float64(ss[i].at.Sub(ss[i-1].at)))), true
			}
		}
		return time.Time{}, false
	}
	t10, ok10 := at(0.1)
	t90, ok90 := at(0.9)
	if !ok10 || !ok90 || !t90.After(t10) {
		return 0
	}
	return 0.8 * float64(n) / t90.Sub(t10).Seconds()
}

// scrapeSum is metricSum for a goroutine: false when the scrape failed.
func scrapeSum(url, prefix string) (float64, bool) {
	body, err := readMetrics(url)
	if err != nil {
		return 0, false
	}
	sum, ok := sumLines(linesWithPrefix(body, prefix))
	if !ok {
		return 0, false
	}
	return sum, true
}

// waitCompleted polls the senders' count of completed payouts (the counter
// sampleCompleted reads; the payouts-by-status gauge is recounted only
// every second or more) until n payouts are completed.
func waitCompleted(b *testing.B, url string, n int) {
	deadline := time.Now().Add(15 * time.Minute)
	for time.Now().Before(deadline) {
		if done, ok := scrapeSum(url, completedCounter); ok && done >= float64(n) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatal("payouts not completed in 15 minutes")
}

func allCompleted(b *testing.B, url, key string, ids []string) bool {
	for _, id := range ids {
		if s := status(b, url, key, id); s != "completed" {
			return false
		}
	}
	return true
}

func status(b *testing.B, url, key, id string) string {
	req, _ := http.NewRequest("GET", url+"/v1/payouts/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		Status string `json:"status"`
	}
	if err := jsonDecode(resp, &p); err != nil {
		b.Fatal(err)
	}
	return p.Status
}

// procMemKiB reads a field such as VmRSS or VmHWM of /proc/PID/status.
// procCPUSeconds is the user + system CPU time a process has used so far.
func procCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The fields after the command (which may hold spaces) start at ")".
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 13 {
		return -1
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // clock ticks (USER_HZ is 100 on Linux)
}

func procMemKiB(pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			v, _ := strconv.Atoi(strings.Fields(l)[1])
			return v
		}
	}
	return -1
}

// BenchmarkReconcile pays SLUICE_BENCH_PAYOUTS (default 20,000) with
// SLUICE_BENCH_CLIENTS clients over SLUICE_BENCH_WALLETS hot wallets on
// the dev chain, then times `sluice reconcile` of every wallet over the
// blocks of the run (one receipt per stored attempt, replacements
// included). It fails unless the books match the chain.
func BenchmarkReconcile(b *testing.B) {
	n := envInt("SLUICE_BENCH_PAYOUTS", 20000)
	be := startBenchEngine(b)
	defer be.stop()
	be.waitReady()
	client, err := evm.Dial(context.Background(), be.info.RPCURL, "sandbox", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	opened, err := client.BlockNumber(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	submitAll(b, be.url, be.info.APIKey, n)
	waitCompleted(b, be.url, n)
	attempts := metricSum(b, be.url, "sluice_attempts_total{")
	args := []string{"reconcile", "--config", filepath.Join(be.dir, "sluice.yaml"), "--from-block", strconv.FormatUint(opened, 10)}
	b.ResetTimer()
	for b.Loop() {
		out, errOut, code := runCLI(context.Background(), args...)
		if code != 0 || strings.Count(out, "The books match the chain.") != envInt("SLUICE_BENCH_WALLETS", 1) {
			b.Fatalf("reconcile: exit %d\n%s%s", code, out, errOut)
		}
	}
	b.ReportMetric(attempts, "attempts")
	b.ReportMetric(attempts/(b.Elapsed().Seconds()/float64(b.N)), "attempts/s")
}
