package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/rs/zerolog"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/httpapi"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/rpcpool"
	"github.com/sluicepay/sluice/internal/rpcpool/rpcfault"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// tcpFault is a network fault toxiproxy puts on one upstream's TCP path.
type tcpFault string

const (
	faultNone      tcpFault = "none"
	faultRefused   tcpFault = "refused"   // the proxy stops listening: connection refused
	faultBlackHole tcpFault = "blackhole" // bytes to the node are swallowed, nothing ever comes back
	faultReset     tcpFault = "reset"     // every connection is reset by peer
	faultLatency   tcpFault = "latency"   // 2 s added to every answer
	faultSlow      tcpFault = "slow"      // answers trickle at 1 KB/s
)

// faultToxics are the toxics (toxiproxy's JSON) that make each fault;
// refused is the proxy disabled instead.
var faultToxics = map[tcpFault]string{
	faultBlackHole: `{"name":"fault","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`,
	faultReset:     `{"name":"fault","type":"reset_peer","stream":"upstream","attributes":{"timeout":0}}`,
	faultLatency:   `{"name":"fault","type":"latency","stream":"downstream","attributes":{"latency":2000}}`,
	faultSlow:      `{"name":"fault","type":"bandwidth","stream":"downstream","attributes":{"rate":1}}`,
}

// fault is what one upstream suffers: a TCP fault (toxiproxy), a JSON-RPC
// fault (rpcfault), or neither.
type fault struct {
	tcp tcpFault
	rpc rpcfault.Fault
}

var noFault = fault{tcp: faultNone}

func (f fault) String() string {
	if f.rpc != rpcfault.None {
		return "rpc:" + string(f.rpc)
	}
	return string(f.tcp)
}

// faultRig is an embedded toxiproxy with one TCP proxy per upstream, all
// in front of the same node, each behind a JSON-RPC fault upstream when
// the rig has them: pool -> toxiproxy -> rpcfault -> node.
type faultRig struct {
	t       testing.TB
	proxies []*toxiproxy.Proxy
	rpc     []*rpcfault.Upstream // empty: TCP faults only

	// mu guards faults.
	mu     sync.Mutex
	faults []fault
}

func newFaultRig(t testing.TB, nodeURL string, n int, withRPC bool) *faultRig {
	t.Helper()
	// Toxiproxy's toxics log through zerolog's global logger at trace
	// level, thousands of lines a run: silence it.
	zerolog.SetGlobalLevel(zerolog.Disabled)
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	r := &faultRig{t: t, faults: make([]fault, n)}
	for i := range n {
		target := nodeURL
		if withRPC {
			up := rpcfault.New(t, nodeURL, rpcfault.None)
			r.rpc = append(r.rpc, up)
			target = up.URL
		}
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		p := toxiproxy.NewProxy(server, fmt.Sprintf("upstream%d", i), "127.0.0.1:0", u.Host)
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		// Listen now holds the port taken, so a restart after "refused"
		// listens on the same one.
		r.proxies = append(r.proxies, p)
		r.faults[i] = noFault
	}
	t.Cleanup(func() {
		for _, p := range r.proxies {
			p.Stop()
		}
	})
	return r
}

// URL is the upstream URL of proxy i.
func (r *faultRig) URL(i int) string { return "http://" + r.proxies[i].Listen }

// set puts fault f on upstream i, replacing the one it had. Toxics act on
// open keep-alive connections too, not only on new ones.
func (r *faultRig) set(i int, f fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f.tcp == "" {
		f.tcp = faultNone
	}
	p := r.proxies[i]
	p.Toxics.ResetToxics(context.Background())
	if f.tcp == faultRefused {
		p.Stop()
	} else if !p.Enabled {
		if err := p.Start(); err != nil {
			r.t.Errorf("restart proxy %d on %s: %v", i, p.Listen, err)
		}
	}
	if js, ok := faultToxics[f.tcp]; ok {
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			r.t.Errorf("add %s toxic to proxy %d: %v", f.tcp, i, err)
		}
	}
	if len(r.rpc) > 0 {
		r.rpc[i].Set(f.rpc)
	} else if f.rpc != rpcfault.None {
		r.t.Errorf("rpc fault %s on a rig without JSON-RPC fault upstreams", f.rpc)
	}
	r.faults[i] = f
}

func (r *faultRig) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprint(r.faults)
}

// rotatingFaults are the faults the payout test cycles through, TCP and
// JSON-RPC ones in turn: refused, 429 with Retry-After, black hole, 500,
// reset, wrong chain id, 2 s latency, stale head, 1 KB/s, malformed JSON,
// and answers that never come (timeouts).
var rotatingFaults = []fault{
	{tcp: faultRefused}, {rpc: rpcfault.TooManyRequests},
	{tcp: faultBlackHole}, {rpc: rpcfault.ServerError},
	{tcp: faultReset}, {rpc: rpcfault.WrongChain},
	{tcp: faultLatency}, {rpc: rpcfault.Stale},
	{tcp: faultSlow}, {rpc: rpcfault.Malformed},
	{rpc: rpcfault.Hang},
}

// rotate keeps two of three upstreams faulty until ctx ends: in phase k
// upstream k%3 is sound and the two others carry the next two faults of
// rotatingFaults, so that every fault comes up within six phases. It
// returns the phases run and the faults applied.
func (r *faultRig) rotate(ctx context.Context, phase time.Duration, log func(string, ...any)) (int, map[fault]int) {
	applied := map[fault]int{}
	for k := 0; ; k++ {
		good := k % 3
		next := 0
		for i := range r.proxies {
			if i == good {
				r.set(i, noFault)
				continue
			}
			f := rotatingFaults[(2*k+next)%len(rotatingFaults)]
			r.set(i, f)
			applied[f]++
			next++
		}
		log("phase %d: %s", k, r)
		select {
		case <-ctx.Done():
			return k + 1, applied
		case <-time.After(phase):
		}
	}
}

// faultChain starts a dev chain and a fault rig of three upstreams in
// front of its RPC, with JSON-RPC fault upstreams when withRPC.
func faultChain(t testing.TB, withRPC bool) (*sandbox.Chain, *faultRig, common.Address, payout.Signer) {
	t.Helper()
	key, _ := crypto.GenerateKey()
	chain, err := sandbox.Start(context.Background(), sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key, BlockTime: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.Close() })
	return chain, newFaultRig(t, chain.RPCURL(), 3, withRPC), crypto.PubkeyToAddress(key.PublicKey), evm.KeySigner{Key: key}
}

// faultConfig is the engine's config for a dev chain reached through the
// rig's three proxies, with the given roles ("" is primary).
func faultConfig(t testing.TB, chain *sandbox.Chain, rig *faultRig, wallet common.Address, apiKey string, roles ...string) *config.Config {
	t.Helper()
	eighteen := uint8(18)
	var ups []config.Upstream
	for i, role := range roles {
		ups = append(ups, config.Upstream{URL: rig.URL(i), Role: role})
	}
	cfg := &config.Config{
		Database: "sqlite:" + filepath.Join(t.TempDir(), "sluice.db"), HTTP: "127.0.0.1:0", DataDir: t.TempDir(),
		LogLevel: "info", LogFormat: "text",
		Chains: []config.Chain{{
			Name: "sandbox", ChainID: chain.ChainID(), Confirmations: 2,
			Upstreams:    ups,
			NativeSymbol: "ETH", NativeDecimals: &eighteen,
			Tokens:     []config.Token{{Symbol: "SUSD", Address: chain.SUSD().Hex(), Decimals: 6}},
			HotWallets: []config.HotWallet{{Address: wallet.Hex(), Signer: config.Signer{Type: "keystore", Keystore: "unused: signer handed in"}}},
		}},
		APIKeys: []config.APIKey{{Name: "test", SHA256: fmt.Sprintf("%x", httpapi.HashAPIKey(apiKey))}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// faultPayouts is the number of payouts of TestFaultsTwoOfThreeUpstreams.
// 1,000 is what the issue asks; see BENCHMARKS.md for how long it takes.
const faultPayouts = 1000

// faultSpread is how long the creations of the payouts are spread over.
const faultSpread = 30 * time.Second

// TestFaultsTwoOfThreeUpstreams runs a real engine against a dev chain
// reached through three upstreams, each a toxiproxy proxy in front of a
// JSON-RPC fault upstream, while two of the three are faulty: TCP faults
// (refused, black hole, reset, 2 s latency, 1 KB/s) and JSON-RPC ones (429
// with Retry-After, 500, wrong chain id, stale head, malformed JSON,
// timeouts), moving between upstreams every few seconds. Every create
// request must succeed at the first try, every payout must complete, every
// recipient must hold exactly what it was sent (nothing paid twice), and
// not one read through the failover endpoint may fail or be wrong.
func TestFaultsTwoOfThreeUpstreams(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a dev chain, toxiproxy and the engine for about a minute")
	}
	chain, rig, wallet, sg := faultChain(t, true)
	apiKey := "sk_test_faults"
	cfg := faultConfig(t, chain, rig, wallet, apiKey, "", "", "")
	log := faultLog(t)
	eng, err := startEngine(context.Background(), cfg, log, engineOptions{Signers: map[common.Address]payout.Signer{wallet: sg}})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()

	ctx, stopFaults := context.WithCancel(context.Background())
	type rotation struct {
		phases  int
		applied map[fault]int
	}
	rotated := make(chan rotation, 1)
	go func() {
		n, applied := rig.rotate(ctx, 3*time.Second, t.Logf)
		rotated <- rotation{n, applied}
	}()
	var ran rotation
	stopRotation := func() {
		if stopFaults != nil {
			stopFaults()
			ran, stopFaults = <-rotated, nil
		}
	}
	defer stopRotation()

	// Wallet-style clients read through the failover endpoint the whole
	// time; not one of their requests may fail.
	readsDone := make(chan struct{})
	var reads, readFails atomic.Int64
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			endpointReads(eng.URL()+"/rpc/sandbox", apiKey, wallet, chain.ChainID(), readsDone, &reads, &readFails, t)
		})
	}
	stopReads := func() {
		select {
		case <-readsDone:
		default:
			close(readsDone)
			readers.Wait()
		}
	}
	defer stopReads()

	start := time.Now()
	want := make([]wanted, faultPayouts)
	ids := make([]string, faultPayouts)
	var failed atomic.Int64
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				w := wanted{asset: "ETH", to: common.BigToAddress(big.NewInt(int64(0xF00000 + i))), amount: big.NewInt(int64(7000 + i))}
				if i%2 == 1 {
					w.asset = "SUSD"
				}
				want[i] = w
				id, err := createPayoutNoRetry(eng.URL(), apiKey, w, fmt.Sprintf("faults-%d", i))
				if err != nil {
					failed.Add(1)
					t.Errorf("create payout %d under %s: %v", i, rig, err)
					continue
				}
				ids[i] = id
			}
		}()
	}
	// Spread the creations over faultSpread, so that payouts are signed,
	// sent and confirmed in every phase of the faults, not in the first.
	tick := time.NewTicker(faultSpread / faultPayouts)
	for i := range faultPayouts {
		<-tick.C
		work <- i
	}
	tick.Stop()
	close(work)
	wg.Wait()
	created := time.Since(start)
	if failed.Load() > 0 {
		t.Fatalf("%d of %d create requests failed", failed.Load(), faultPayouts)
	}
	waitAllCompleted(t, eng.URL(), apiKey, ids, 75*time.Second)
	paid := time.Since(start)
	stopReads()
	stopRotation()
	if reads.Load() < 100 {
		t.Errorf("failover endpoint: only %d reads during the faults, want at least 100", reads.Load())
	}
	// Issue 3: zero failed requests on the failover endpoint while one
	// good upstream remains.
	if readFails.Load() != 0 {
		t.Errorf("failover endpoint: %d of %d reads failed, want 0", readFails.Load(), reads.Load())
	}
	t.Logf("failover endpoint: %d reads, %d failed", reads.Load(), readFails.Load())
	t.Logf("%d payouts created in %s and all completed in %s over %d fault phases", faultPayouts, created.Round(time.Millisecond), paid.Round(time.Millisecond), ran.phases)
	if ran.phases < 6 {
		t.Errorf("only %d fault phases ran, want 6: every upstream sound twice and faulty four times", ran.phases)
	}
	for _, f := range rotatingFaults {
		if ran.applied[f] == 0 {
			t.Errorf("fault %s never applied", f)
		}
	}
	t.Logf("faults applied: %v", ran.applied)
	checkFaultOutcomes(t, eng)
	// The faults reached the pool: every upstream failed requests at
	// some point (the error is kept after it recovers).
	for _, u := range eng.poolOf["sandbox"].Status() {
		if u.LastError == "" {
			t.Errorf("upstream %s never failed a request: the faults did not reach it", u.Name)
		} else {
			t.Logf("upstream %s: last error %q", u.Name, u.LastError)
		}
	}
	checkBalances(t, devInfo{RPCURL: chain.RPCURL(), Assets: map[string]assetInfo{"SUSD": {Address: ptr(chain.SUSD().Hex())}}}, want)
}

// faultLog is the engine's logger in the fault tests: discarded, or
// warnings and worse appended to $SLUICE_FAULTS_LOG when set, to read
// what the pool did around a failure.
func faultLog(t testing.TB) *slog.Logger {
	t.Helper()
	path := os.Getenv("SLUICE_FAULTS_LOG")
	if path == "" {
		return slog.New(slog.DiscardHandler)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// createPayoutNoRetry creates a payout with one request: no retry, so that any
// failure counts.
func createPayoutNoRetry(base, key string, w wanted, idemKey string) (string, error) {
	body := fmt.Sprintf(`{"chain":"sandbox","asset":%q,"to":%q,"amount":%q}`, w.asset, w.to.Hex(), w.amount.String())
	req, _ := http.NewRequest("POST", base+"/v1/payouts", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Idempotency-Key", idemKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	var p struct{ ID string }
	if err := json.Unmarshal(b, &p); err != nil || p.ID == "" {
		return "", fmt.Errorf("no id in %s", b)
	}
	return p.ID, nil
}

// BenchmarkBlackHoleSwitch measures the failover endpoint POST /rpc/{chain}
// (the engine's own, and rpcpool's handler over pools tuned in ways the
// engine's config does not allow) while the primary upstream is
// black-holed under load: clients send eth_blockNumber and eth_getBalance
// without pause; after a warm-up the primary's TCP path starts swallowing
// every byte. It reports the failed client requests and the latency of
// the requests sent in the switch window (from the black hole on, for
// switchWindow). One run is the whole scenario: use -benchtime=1x.
func BenchmarkBlackHoleSwitch(b *testing.B) {
	b.Run("engine_defaults", func(b *testing.B) { benchBlackHole(b, engineRPC) })
	b.Run("pool_defaults", func(b *testing.B) { benchBlackHole(b, poolRPC(rpcpool.Config{})) })
	b.Run("pool_attempt_timeout_500ms", func(b *testing.B) {
		benchBlackHole(b, poolRPC(rpcpool.Config{AttemptTimeout: 500 * time.Millisecond}))
	})
}

// rpcTarget starts a failover endpoint over the rig's proxies, upstream 0
// the primary and the others fallbacks, and returns its URL and bearer
// token ("" for none).
type rpcTarget func(b *testing.B, chain *sandbox.Chain, rig *faultRig, wallet common.Address, sg payout.Signer) (url, token string)

// engineRPC is the real engine's POST /rpc/{chain}, with the pool's
// defaults, as `sluice serve` runs it.
func engineRPC(b *testing.B, chain *sandbox.Chain, rig *faultRig, wallet common.Address, sg payout.Signer) (string, string) {
	apiKey := "sk_test_blackhole"
	cfg := faultConfig(b, chain, rig, wallet, apiKey, "primary", "fallback", "fallback")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := startEngine(context.Background(), cfg, log, engineOptions{Signers: map[common.Address]payout.Signer{wallet: sg}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close() })
	return eng.URL() + "/rpc/sandbox", apiKey
}

// poolRPC is rpcpool's endpoint in an httptest server over a pool of cfg,
// to measure pool settings the engine's config does not expose.
func poolRPC(cfg rpcpool.Config) rpcTarget {
	return func(b *testing.B, chain *sandbox.Chain, rig *faultRig, _ common.Address, _ payout.Signer) (string, string) {
		cfg.Chain, cfg.ChainID = "sandbox", chain.ChainID()
		cfg.Upstreams = []rpcpool.UpstreamConfig{{URL: rig.URL(0)}, {URL: rig.URL(1), Role: rpcpool.RoleFallback}, {URL: rig.URL(2), Role: rpcpool.RoleFallback}}
		pool, err := rpcpool.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := pool.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(rpcpool.NewProxy(map[string]*rpcpool.Pool{"sandbox": pool}, rpcpool.ProxyConfig{}))
		b.Cleanup(func() { srv.Close(); pool.Stop() })
		return srv.URL + "/rpc/sandbox", ""
	}
}

const (
	blackHoleClients = 32
	warmUp           = 2 * time.Second
	switchWindow     = 8 * time.Second
)

// reqSample is one client request of the benchmark.
type reqSample struct {
	start time.Time
	took  time.Duration
	ok    bool
}

func benchBlackHole(b *testing.B, target rpcTarget) {
	chain, rig, wallet, sg := faultChain(b, false)
	url, token := target(b, chain, rig, wallet, sg)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: blackHoleClients}}

	bodies := [][]byte{
		[]byte(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`),
		[]byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"eth_getBalance","params":[%q,"latest"]}`, wallet.Hex())),
	}
	b.ResetTimer()
	var mu sync.Mutex
	var samples []reqSample
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range blackHoleClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []reqSample
			for i := c; ; i++ {
				select {
				case <-stop:
					mu.Lock()
					samples = append(samples, mine...)
					mu.Unlock()
					return
				default:
				}
				start := time.Now()
				ok := rpcOK(client, url, token, bodies[i%2])
				mine = append(mine, reqSample{start: start, took: time.Since(start), ok: ok})
			}
		}()
	}
	time.Sleep(warmUp)
	holed := time.Now()
	rig.set(0, fault{tcp: faultBlackHole})
	time.Sleep(switchWindow)
	close(stop)
	wg.Wait()
	b.StopTimer()

	var before, during, first []time.Duration
	failed := 0
	for _, s := range samples {
		if !s.ok {
			failed++
		}
		switch {
		case s.start.Before(holed):
			before = append(before, s.took)
		case s.start.Before(holed.Add(switchWindow)):
			during = append(during, s.took)
			if s.start.Before(holed.Add(time.Second)) {
				first = append(first, s.took)
			}
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(float64(failed), "failed")
	b.ReportMetric(float64(len(during)), "reqs_switch")
	b.ReportMetric(ms(latencyQuantile(before, 0.99)), "p99_before_ms")
	b.ReportMetric(ms(latencyQuantile(during, 0.50)), "p50_switch_ms")
	b.ReportMetric(ms(latencyQuantile(during, 0.99)), "p99_switch_ms")
	b.ReportMetric(ms(latencyQuantile(during, 1)), "max_switch_ms")
	// The switch proper: requests sent in the first second of the black
	// hole, diluted by none of the calm that follows.
	b.ReportMetric(float64(len(first)), "reqs_first_1s")
	b.ReportMetric(ms(latencyQuantile(first, 0.99)), "p99_first_1s_ms")
	slow := 0
	for _, d := range during {
		if d >= time.Second {
			slow++
		}
	}
	b.ReportMetric(float64(slow), "reqs_over_1s")
}

// rpcOK sends one JSON-RPC request and reports whether it got a result.
func rpcOK(c *http.Client, url, token string, body []byte) bool {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var r struct {
		Result json.RawMessage `json:"result"`
		Error  any             `json:"error"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&r) != nil {
		return false
	}
	return r.Error == nil && len(r.Result) > 0
}

// latencyQuantile returns the q-quantile of ds (nearest rank); 0 when empty.
func latencyQuantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// endpointReads sends eth_blockNumber, eth_getBalance and eth_chainId
// through the failover endpoint until done, counting requests and
// failures: an HTTP error, a JSON-RPC error, no result, or a wrong one (a
// head far behind the highest seen, another chain's id).
func endpointReads(url, token string, who common.Address, chainID uint64, done <-chan struct{}, reads, fails *atomic.Int64, t *testing.T) {
	bodies := []string{
		`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}`,
		fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"eth_getBalance","params":[%q,"latest"]}`, who.Hex()),
		`{"jsonrpc":"2.0","id":3,"method":"eth_chainId"}`,
	}
	var highest uint64
	for i := 0; ; i++ {
		select {
		case <-done:
			return
		default:
		}
		req, _ := http.NewRequest("POST", url, strings.NewReader(bodies[i%len(bodies)]))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		reads.Add(1)
		if err != nil {
			fails.Add(1)
			t.Logf("endpoint read: %v", err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r struct {
			Result *hexutil.Big `json:"result"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &r) != nil || r.Result == nil {
			fails.Add(1)
			t.Logf("endpoint read: %d %s", resp.StatusCode, b)
			continue
		}
		switch v := r.Result.ToInt().Uint64(); i % len(bodies) {
		case 0:
			if v+3 < highest {
				fails.Add(1)
				t.Logf("endpoint read: head %d, %d behind the highest seen", v, highest-v)
			}
			highest = max(highest, v)
		case 2:
			if v != chainID {
				fails.Add(1)
				t.Logf("endpoint read: chain id %d, want %d", v, chainID)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkFaultOutcomes checks in the engine's metrics that the faults
// reached the pool: attempts failed with 429, 500, malformed answers,
// implausible ones (a stale head, a wrong chain id) and timeouts.
func checkFaultOutcomes(t *testing.T, eng *engine) {
	t.Helper()
	mfs, err := eng.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_rpcpool_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					outcomes[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Logf("pool attempt outcomes: %v", outcomes)
	for _, want := range []string{"ok", "rate_limited", "http_500", "malformed", "implausible", "timeout"} {
		if outcomes[want] == 0 {
			t.Errorf("no attempt ended %q: that fault did not reach the pool", want)
		}
	}
}
