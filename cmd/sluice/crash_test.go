package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
)

// buildBinary builds the sluice binary once per test run.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

func buildBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "sluice")
		args := []string{"build", "-o", buildOnce.path}
		if tags := os.Getenv("SLUICE_TEST_BUILD_TAGS"); tags != "" {
			args = append(args, "-tags", tags)
		}
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Dir = sourceDir()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

// sourceDir is the directory this test binary was compiled from, when it
// still exists, else the current one: the engine is built from the same
// source as the tests, so that a `go test -c` binary run from another
// checkout (an A/B comparison of two builds) measures its own engine, not
// the other checkout's.
func sourceDir() string {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		if _, err := os.Stat(file); err == nil {
			return filepath.Dir(file)
		}
	}
	return ""
}

// proc is a sluice process whose output is kept for the test log.
type proc struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startProc starts the binary and waits until a line of its stdout contains
// ready; it returns that line. The processes use the data dir's generated
// keystore passphrase, or $SLUICE_BENCH_KEYSTORE_PASSPHRASE when set (a
// passphrase a person chose: keys stretched with scrypt's standard cost).
func startProc(t testing.TB, bin string, ready string, args ...string) (*proc, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "SLUICE_KEYSTORE_PASSPHRASE="+os.Getenv("SLUICE_BENCH_KEYSTORE_PASSPHRASE"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.out.Write([]byte(sc.Text() + "\n"))
			lines <- sc.Text()
		}
		close(lines)
		p.done <- cmd.Wait()
	}()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("%s exited before it was ready:\n%s", args[0], p.out.String())
			}
			if strings.Contains(line, ready) {
				go func() {
					for range lines {
					}
				}()
				return p, line
			}
		case <-timeout:
			cmd.Process.Kill()
			t.Fatalf("%s not ready after 60s:\n%s", args[0], p.out.String())
		}
	}
}

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

type wanted struct {
	asset    string
	to       common.Address
	amount   *big.Int
	priority string // low, standard or high; "" leaves it to the API's default
}

// TestCrashSafetyWithRealProcesses runs `sluice devchain` and `sluice serve`
// as separate processes, SIGKILLs the engine at random moments while 300
// payouts go through it, and checks on chain that every recipient holds
// exactly what it was sent.
func TestCrashSafetyWithRealProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	chainProc, _ := startProc(t, bin, "Run the engine against it", "devchain", "--data-dir", dir, "--rpc", "127.0.0.1:0", "--block-time", "300ms")
	defer chainProc.stop()
	var info devInfo
	readJSON(t, filepath.Join(dir, "devchain.json"), &info)
	serveArgs := []string{"serve", "--config", filepath.Join(dir, "sluice.yaml"), "--http", "127.0.0.1:0"}

	var mu sync.Mutex
	engine, line := startProc(t, bin, "Sluice API at", serveArgs...)
	apiURL := strings.TrimSpace(strings.TrimPrefix(line, "Sluice API at"))
	currentURL := func() string { mu.Lock(); defer mu.Unlock(); return apiURL }

	const n = 300
	rng := rand.New(rand.NewPCG(1, 2))
	want := make([]wanted, n)
	for i := range want {
		want[i] = wanted{asset: "ETH", to: common.BigToAddress(big.NewInt(int64(0xC0000 + i))), amount: big.NewInt(1e12 + rng.Int64N(1e12))}
		if i%3 == 0 {
			want[i] = wanted{asset: "SUSD", to: want[i].to, amount: big.NewInt(1 + rng.Int64N(5e6))}
		}
	}

	ids := make([]string, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				ids[i] = createWithRetry(t, currentURL, info.APIKey, want[i], fmt.Sprintf("crash-%d", i))
				time.Sleep(150 * time.Millisecond) // spread the load over the kills
			}
		}()
	}
	go func() {
		for i := range n {
			work <- i
		}
		close(work)
	}()

	kills := 0
	submitted := make(chan struct{})
	go func() { wg.Wait(); close(submitted) }()
	for kills < 6 {
		time.Sleep(time.Duration(200+rng.IntN(900)) * time.Millisecond)
		engine.kill()
		kills++
		var line string
		engine, line = startProc(t, bin, "Sluice API at", serveArgs...)
		mu.Lock()
		apiURL = strings.TrimSpace(strings.TrimPrefix(line, "Sluice API at"))
		mu.Unlock()
	}
	<-submitted
	defer engine.stop()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("killed the engine %d times", kills)

	defer func() {
		if t.Failed() {
			tail := func(s string) string {
				var keep []string
				for _, l := range strings.Split(s, "\n") {
					if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") || strings.Contains(l, "sender ready") {
						keep = append(keep, l)
					}
				}
				s = strings.Join(keep, "\n")
				return s[max(0, len(s)-8000):]
			}
			t.Logf("engine output:\n%s\ndev chain output:\n%s", tail(engine.out.String()), tail(chainProc.out.String()))
		}
	}()
	waitAllCompleted(t, currentURL(), info.APIKey, ids, 60*time.Second)
	checkBalances(t, info, want)
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// createWithRetry creates a payout, retrying with the same idempotency key
// while the engine is down, and returns its id.
func createWithRetry(t *testing.T, url func() string, key string, w wanted, idemKey string) string {
	body := fmt.Sprintf(`{"chain":"sandbox","asset":%q,"to":%q,"amount":%q}`, w.asset, w.to.Hex(), w.amount.String())
	if w.priority != "" {
		body = body[:len(body)-1] + fmt.Sprintf(`,"priority":%q}`, w.priority)
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("POST", url()+"/v1/payouts", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Idempotency-Key", idemKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			var p struct{ ID string }
			json.Unmarshal(b, &p)
			return p.ID
		}
		if resp.StatusCode != http.StatusConflict && resp.StatusCode < 500 {
			t.Errorf("create %s: %d %s", idemKey, resp.StatusCode, b)
			return ""
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("create %s: engine never answered", idemKey)
	return ""
}

func waitAllCompleted(t *testing.T, url, key string, ids []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pending := append([]string(nil), ids...)
	for len(pending) > 0 {
		var still []string
		for _, id := range pending {
			req, _ := http.NewRequest("GET", url+"/v1/payouts/"+id, nil)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var p struct {
				Status      string `json:"status"`
				FailureCode string `json:"failure_code"`
			}
			json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
			switch p.Status {
			case "completed":
			case "failed", "cancelled":
				t.Fatalf("payout %s ended %s (%s)", id, p.Status, p.FailureCode)
			default:
				still = append(still, id)
			}
		}
		pending = still
		if len(pending) > 0 {
			if time.Now().After(deadline) {
				req, _ := http.NewRequest("GET", url+"/v1/payouts/"+pending[0], nil)
				req.Header.Set("Authorization", "Bearer "+key)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					b, _ := io.ReadAll(resp.Body)
					t.Logf("stuck: %s", b)
				}
				t.Fatalf("%d payouts not completed after %s, e.g. %s", len(pending), timeout, pending[0])
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
}

func checkBalances(t *testing.T, info devInfo, want []wanted) {
	t.Helper()
	ctx := context.Background()
	eth, err := ethclient.Dial(info.RPCURL)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	susd := common.HexToAddress(*info.Assets["SUSD"].Address)
	for _, w := range want {
		var got *big.Int
		if w.asset == "ETH" {
			got, err = eth.BalanceAt(ctx, w.to, nil)
		} else {
			data := append(common.FromHex("0x70a08231"), common.LeftPadBytes(w.to.Bytes(), 32)...)
			var out []byte
			out, err = eth.CallContract(ctx, ethereum.CallMsg{To: &susd, Data: data}, nil)
			got = new(big.Int).SetBytes(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got.Cmp(w.amount) != 0 {
			t.Errorf("%s holds %s %s, was sent %s", w.to.Hex(), got, w.asset, w.amount)
		}
	}
}

func jsonDecode(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

// TestSandboxRestartKeepsChainAndRefusesALostOne starts the sandbox, pays,
// restarts it with the same data dir (same chain, same payout), then
// deletes the chain and checks that the sandbox refuses the data dir.
func TestSandboxRestartKeepsChainAndRefusesALostOne(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	args := []string{"sandbox", "--data-dir", dir, "--rpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--block-time", "200ms"}
	sb, _ := startProc(t, bin, "Try it:", args...)
	var info devInfo
	readJSON(t, filepath.Join(dir, "sandbox.json"), &info)
	to := common.HexToAddress("0x00000000000000000000000000000000000bEEF1")
	id := createWithRetry(t, func() string { return info.APIURL }, info.APIKey, wanted{asset: "SUSD", to: to, amount: big.NewInt(1_500_000)}, "restart-1")
	waitAllCompleted(t, info.APIURL, info.APIKey, []string{id}, 30*time.Second)
	sb.stop()

	sb, _ = startProc(t, bin, "Try it:", args...)
	var again devInfo
	readJSON(t, filepath.Join(dir, "sandbox.json"), &again)
	if again.APIKey != info.APIKey || again.HotWallet != info.HotWallet || *again.Assets["SUSD"].Address != *info.Assets["SUSD"].Address {
		t.Errorf("restart changed the sandbox: %+v vs %+v", again, info)
	}
	waitAllCompleted(t, again.APIURL, again.APIKey, []string{id}, 5*time.Second)
	checkBalances(t, again, []wanted{{asset: "SUSD", to: to, amount: big.NewInt(1_500_000)}})
	sb.stop()

	if err := os.RemoveAll(filepath.Join(dir, "chain")); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), dir) || !strings.Contains(string(out), "another --data-dir") {
		t.Fatalf("sandbox started on a data dir whose chain is gone (err %v):\n%s", err, out)
	}
}

// TestPayoutsSpreadOverHotWallets runs a dev chain with three hot wallets
// (two funded from the first) and checks that payouts take turns between
// them and are all paid exactly.
func TestPayoutsSpreadOverHotWallets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	chain, _ := startProc(t, bin, "Run the engine against it", "devchain", "--data-dir", dir, "--rpc", "127.0.0.1:0", "--block-time", "250ms", "--hot-wallets", "3")
	defer chain.stop()
	var info devInfo
	readJSON(t, filepath.Join(dir, "devchain.json"), &info)
	if len(info.HotWallets) != 3 {
		t.Fatalf("devchain.json lists %d hot wallets, want 3", len(info.HotWallets))
	}
	engine, line := startProc(t, bin, "Sluice API at", "serve", "--config", filepath.Join(dir, "sluice.yaml"), "--http", "127.0.0.1:0")
	defer engine.stop()
	url := strings.TrimSpace(strings.TrimPrefix(line, "Sluice API at"))
	// The API answers while keys still open, and payouts that arrive then
	// go to the wallets that can sign; the spread is about wallets all up.
	waitForSigner(t, 20*time.Second, "/readyz 200", func() bool { return getStatusJSON(t, url+"/readyz", "", nil) == 200 })
	var want []wanted
	var ids []string
	for i := range 30 {
		w := wanted{asset: "SUSD", to: common.BigToAddress(big.NewInt(int64(0xD0000 + i))), amount: big.NewInt(int64(1000 + i))}
		if i%2 == 0 {
			w.asset = "ETH"
		}
		want = append(want, w)
		ids = append(ids, createWithRetry(t, func() string { return url }, info.APIKey, w, fmt.Sprintf("spread-%d", i)))
	}
	waitAllCompleted(t, url, info.APIKey, ids, 60*time.Second)
	checkBalances(t, info, want)
	from := map[string]int{}
	for _, id := range ids {
		req, _ := http.NewRequest("GET", url+"/v1/payouts/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+info.APIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			From string `json:"from"`
		}
		jsonDecode(resp, &p)
		resp.Body.Close()
		from[p.From]++
	}
	// Least loaded, ties in turn: 10 each while no payout ends during the
	// 30 creates. On a slow machine some are mined and confirmed meanwhile
	// (250 ms blocks), and a wallet with fewer in flight rightly gets the
	// next one; TestAssignPrefersTheLeastLoaded checks the rule exactly.
	for _, w := range info.HotWallets {
		if from[w] < 7 || from[w] > 13 {
			t.Errorf("hot wallet %s paid %d of 30 payouts, want 10±3 (all: %v)", w, from[w], from)
		}
	}
}
