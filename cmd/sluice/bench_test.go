package main

import (
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// BenchmarkSandboxEndToEnd measures, with `sluice devchain` (1 s blocks)
// and `sluice serve` as separate processes on SQLite, how fast payouts are
// accepted over HTTP (16 clients) and how fast they all reach completed,
// and the engine's peak memory. SLUICE_BENCH_PAYOUTS sets the count
// (default 10,000); run with -benchtime=1x.
func BenchmarkSandboxEndToEnd(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("SLUICE_BENCH_PAYOUTS")); err == nil && v > 0 {
		n = v
	}
	t := b
	bin := buildBinary(t)
	dir := b.TempDir()
	wallets := "1"
	if v := os.Getenv("SLUICE_BENCH_WALLETS"); v != "" {
		wallets = v
	}
	chainArgs := []string{"devchain", "--data-dir", dir, "--rpc", "127.0.0.1:0", "--block-time", "1s", "--hot-wallets", wallets}
	if addr := os.Getenv("SLUICE_BENCH_CHAIN_PPROF"); addr != "" {
		chainArgs = append(chainArgs, "--pprof", addr)
	}
	chain, _ := startProc(t, bin, "Run the engine against it", chainArgs...)
	defer chain.stop()
	var info devInfo
	readJSON(t, filepath.Join(dir, "devchain.json"), &info)
	os.Setenv("SLUICE_LOG_LEVEL", "warn")
	defer os.Unsetenv("SLUICE_LOG_LEVEL")
	serveArgs := []string{"serve", "--config", filepath.Join(dir, "sluice.yaml"), "--http", "127.0.0.1:0"}
	if addr := os.Getenv("SLUICE_BENCH_PPROF"); addr != "" {
		serveArgs = append(serveArgs, "--pprof", addr)
	}
	engine, line := startProc(t, bin, "Sluice API at", serveArgs...)
	defer engine.stop()
	url := strings.TrimSpace(strings.TrimPrefix(line, "Sluice API at"))
	defer func() {
		var problems []string
		for _, l := range strings.Split(engine.out.String(), "\n") {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				problems = append(problems, l)
			}
		}
		if len(problems) > 0 {
			b.Logf("engine warnings and errors (%d):\n%s", len(problems), strings.Join(problems[:min(len(problems), 30)], "\n"))
		}
	}()

	for b.Loop() {
		start := time.Now()
		ids := submitAll(b, url, info.APIKey, n)
		accepted := time.Since(start)
		waitCompleted(b, url, n)
		elapsed := time.Since(start)
		if !allCompleted(b, url, info.APIKey, ids) {
			b.Fatal("the gauge says completed but a payout is not")
		}
		b.ReportMetric(float64(n)/accepted.Seconds(), "accepted/s")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "completed/s")
		b.ReportMetric(elapsed.Seconds(), "s_total")
	}
	b.ReportMetric(procCPUSeconds(engine.cmd.Process.Pid), "engine_cpu_s")
	b.ReportMetric(procCPUSeconds(chain.cmd.Process.Pid), "chain_cpu_s")
	b.ReportMetric(float64(procMemKiB(engine.cmd.Process.Pid, "VmRSS"))/1024, "engine_rss_MiB")
	b.ReportMetric(float64(procMemKiB(engine.cmd.Process.Pid, "VmHWM"))/1024, "engine_peak_rss_MiB")
}

// submitAll creates n payouts (half ETH, half SUSD, all to new addresses)
// with 16 concurrent keep-alive clients.
func submitAll(b *testing.B, url, key string, n int) []string {
	ids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	salt := time.Now().UnixNano()
	for range 16 {
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

// waitCompleted polls the engine's payouts-by-status gauge until n
// payouts are completed (cheaper and more exact than polling each payout).
func waitCompleted(b *testing.B, url string, n int) {
	deadline := time.Now().Add(15 * time.Minute)
	want := fmt.Sprintf(`sluice_payouts{status="completed"} %d`, n)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), want+"\n") {
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
