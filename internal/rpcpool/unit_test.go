package rpcpool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicepay/sluice/internal/rpcpool/rpcfault"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef", "https://mainnet.infura.io/v3/redacted"},
		{"https://user:pass@node.example.com:8545", "https://redacted@node.example.com:8545"},
		{"https://rpc.example.com/?apikey=secret&x=1", "https://rpc.example.com/?apikey=redacted&x=redacted"},
		{"http://127.0.0.1:8545", "http://127.0.0.1:8545"},
		{"http://127.0.0.1:8545/rpc/sandbox", "http://127.0.0.1:8545/rpc/sandbox"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func ExampleRedactURL() {
	fmt.Println(RedactURL("https://user:secret@eth-mainnet.example.com/v2/0123456789abcdef0123456789abcdef?key=secret"))
	// Output: https://redacted@eth-mainnet.example.com/v2/redacted?key=redacted
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", time.Second},
		{"3", 3 * time.Second},
		{"0", 0},
		{"3600", time.Minute}, // bounded by the maximum
		{"garbage", time.Second},
		{now.Add(5 * time.Second).Format("Mon, 02 Jan 2006 15:04:05 GMT"), 5 * time.Second},
		{now.Add(-5 * time.Second).Format("Mon, 02 Jan 2006 15:04:05 GMT"), 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.header, now, time.Second, time.Minute); got != tt.want {
			t.Errorf("retryAfter(%q): got %s, want %s", tt.header, got, tt.want)
		}
	}
}

// rpcErr is a JSON-RPC error object as the RPC client returns it.
type rpcErr struct {
	code int
	msg  string
}

func (e rpcErr) Error() string  { return e.msg }
func (e rpcErr) ErrorCode() int { return e.code }

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		want      outcome
		wantLabel string
	}{
		{"ok", nil, outcomeOK, "ok"},
		{"canceled", fmt.Errorf("call: %w", context.Canceled), outcomeCanceled, "canceled"},
		{"429", rpc.HTTPError{StatusCode: 429, Status: "429 Too Many Requests"}, outcomeRateLimited, "rate_limited"},
		{"503", rpc.HTTPError{StatusCode: 503, Status: "503 Service Unavailable"}, outcomeFailure, "http_503"},
		{"nonce too low", rpcErr{-32000, "nonce too low: next nonce 5, tx nonce 4"}, outcomeAnswer, "nonce_too_low"},
		{"revert", rpcErr{3, "execution reverted: nope"}, outcomeAnswer, "execution_reverted"},
		{"insufficient funds", rpcErr{-32000, "insufficient funds for gas * price + value"}, outcomeAnswer, "insufficient_funds"},
		{"method not found", rpcErr{-32601, "the method eth_foo does not exist"}, outcomeAnswer, "rpc_-32601"},
		{"provider rate limit", rpcErr{-32005, "daily request count exceeded"}, outcomeRateLimited, "rate_limited"},
		{"header not found", rpcErr{-32000, "header not found"}, outcomeFailure, "node_behind"},
		{"timeout", fmt.Errorf("post: %w", context.DeadlineExceeded), outcomeFailure, "timeout"},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, outcomeFailure, "connection_refused"},
		{"unclassified", errors.New("something odd"), outcomeFailure, "unknown"},
		{"malformed json", fmt.Errorf("decode: %w", json.Unmarshal([]byte("{"), new(any))), outcomeFailure, "malformed"},
		{"truncated json", fmt.Errorf("decode: %w", json.NewDecoder(strings.NewReader(`{"result":`)).Decode(new(any))), outcomeFailure, "malformed"},
		{"implausible", fmt.Errorf("upstream u0: %w: head 0", errBadAnswer), outcomeFailure, "implausible"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, label := classify(tt.err)
			if got != tt.want || label != tt.wantLabel {
				t.Errorf("classify(%v): got %d %q, want %d %q", tt.err, got, label, tt.want, tt.wantLabel)
			}
		})
	}
}

func TestBreakerStates(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBreaker(2, time.Second)
	steps := []struct {
		op        string // allow, fail, ok
		at        time.Duration
		wantAllow bool
		want      BreakerState
	}{
		{"fail", 0, false, BreakerClosed},
		{"allow", 0, true, BreakerClosed},
		{"fail", 0, false, BreakerOpen},
		{"allow", 500 * time.Millisecond, false, BreakerOpen},
		{"allow", 1100 * time.Millisecond, true, BreakerHalfOpen},  // the probe
		{"allow", 1100 * time.Millisecond, false, BreakerHalfOpen}, // one probe at a time
		{"fail", 1200 * time.Millisecond, false, BreakerOpen},      // a failed probe reopens
		{"allow", 1500 * time.Millisecond, false, BreakerOpen},
		{"allow", 2300 * time.Millisecond, true, BreakerHalfOpen},
		{"ok", 2300 * time.Millisecond, false, BreakerClosed},
		{"allow", 2300 * time.Millisecond, true, BreakerClosed},
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		var allowed bool
		switch s.op {
		case "allow":
			allowed = b.allow(now)
		case "fail":
			b.failure(now)
		case "ok":
			b.success()
		}
		if allowed != s.wantAllow || b.current() != s.want {
			t.Fatalf("step %d (%s at %s): got allow %v state %s, want %v %s", i, s.op, s.at, allowed, b.current(), s.wantAllow, s.want)
		}
	}
}

func TestSummarise(t *testing.T) {
	var samples []sample
	for i := 1; i <= 100; i++ {
		samples = append(samples, sample{latency: time.Duration(i) * time.Millisecond})
	}
	samples = append(samples, sample{failed: true}, sample{failed: true})
	got := summarise(samples)
	want := snapshot{p50: 50 * time.Millisecond, p90: 90 * time.Millisecond, errorRate: 2.0 / 102, n: 102}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(snapshot{})); diff != "" {
		t.Errorf("summarise (-want +got):\n%s", diff)
	}
	if got := summarise(nil); got != (snapshot{}) {
		t.Errorf("summarise(nil): got %+v, want zero", got)
	}
}

func TestWindowRolls(t *testing.T) {
	w := newWindow(10)
	for range 10 {
		w.add(sample{failed: true})
	}
	for range 10 {
		w.add(sample{latency: time.Millisecond})
	}
	if got := w.stats(time.Now()); got.errorRate != 0 || got.n != 10 {
		t.Errorf("after 10 good samples: got %+v, want error rate 0 over 10", got)
	}
}

func TestHedgeBudget(t *testing.T) {
	h := hedgeBudget{ratio: 0.1, burst: 10, tokens: 10}
	taken := 0
	for range 1000 {
		h.request()
		if h.take() {
			taken++
		}
	}
	if taken < 109 || taken > 110 { // 10 of burst, 100 of ratio, give or take rounding
		t.Errorf("hedges over 1,000 requests: got %d, want 109-110", taken)
	}
}

func TestConfigValidate(t *testing.T) {
	good := func() Config { return Config{ChainID: 1, Upstreams: []UpstreamConfig{{URL: "http://127.0.0.1:8545"}}} }
	tests := []struct {
		name   string
		change func(*Config)
		want   string // in the error; empty: valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no chain id", func(c *Config) { c.ChainID = 0 }, "Config.ChainID"},
		{"no upstreams", func(c *Config) { c.Upstreams = nil }, "Config.Upstreams"},
		{"bad url", func(c *Config) { c.Upstreams[0].URL = "ws://x/0123456789abcdef0123" }, "Upstreams[0].URL"},
		{"url key stays hidden", func(c *Config) { c.Upstreams[0].URL = "ftp://x/0123456789abcdef0123" }, "ftp://x/redacted"},
		{"bad role", func(c *Config) { c.Upstreams[0].Role = "backup" }, "Upstreams[0].Role"},
		{"negative budget", func(c *Config) { c.Upstreams[0].RequestsPerSecond = -1 }, "RequestsPerSecond"},
		{"hedge ratio", func(c *Config) { c.HedgeRatio = 2 }, "HedgeRatio"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good()
			tt.change(&cfg)
			p, err := New(cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				p.Stop()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestNoUsableUpstream shows a pool whose upstreams are all down fails
// fast with ErrNoUpstream, reports why, and never shows a provider key in
// errors, status or logs.
func TestNoUsableUpstream(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	down := rpcfault.New(t, "", rpcfault.Refused)
	var logs bytes.Buffer
	cfg := testConfig(down.URL + "/v3/" + key + "?apikey=" + key)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	p := startPool(t, cfg)
	err := p.Call(context.Background(), nil, "eth_blockNumber")
	if !errors.Is(err, ErrNoUpstream) {
		t.Fatalf("got %v, want ErrNoUpstream", err)
	}
	st := p.Status()[0]
	if st.Healthy || !strings.Contains(st.LastError, "connection refused") {
		t.Errorf("status: got healthy %v, last error %q; want unhealthy, connection refused", st.Healthy, st.LastError)
	}
	for what, s := range map[string]string{"status url": st.URL, "last error": st.LastError, "logs": logs.String()} {
		if strings.Contains(s, key) {
			t.Errorf("%s shows the provider key: %s", what, s)
		}
	}
	if !strings.Contains(logs.String(), "component=rpcpool") {
		t.Errorf("logs lack the component: %s", logs.String())
	}
}

// TestSharedRegisterer shows pools of two chains registering on one
// registry.
func TestSharedRegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, chain := range []string{"a", "b"} {
		cfg := testConfig("http://127.0.0.1:1")
		cfg.Chain, cfg.Registerer = chain, reg
		p, err := New(cfg)
		if err != nil {
			t.Fatalf("chain %s: %v", chain, err)
		}
		p.ups[0].m.hedges.Inc()
		p.Stop()
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "sluice_rpcpool_hedges_total" && len(f.GetMetric()) != 2 {
			t.Errorf("hedges: got %d series, want one per chain", len(f.GetMetric()))
		}
	}
}

// TestStartStop shows Start refusing a second start and Stop waiting and
// being safe to repeat.
func TestStartStop(t *testing.T) {
	p, err := New(testConfig("http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err == nil {
		t.Error("second Start: got nil, want an error")
	}
	p.Stop()
	p.Stop()
	if err := p.Start(context.Background()); err == nil {
		t.Error("Start after Stop: got nil, want an error")
	}
}

// TestRolesAndBudget shows fallbacks idle while a primary is fit, and a
// primary's request budget sending the rest to the fallback.
func TestRolesAndBudget(t *testing.T) {
	tests := []struct {
		name            string
		rps             float64
		wantPrimaryMax  float64
		wantFallbackMin float64
		wantFallbackMax float64
	}{
		{"no budget", 0, 50, 0, 0},
		{"budget of 2/s", 2, 3, 47, 48},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("http://mem-a.invalid", "http://mem-b.invalid")
			cfg.HTTPClient = &http.Client{Transport: memTransport{}}
			cfg.Upstreams[0].RequestsPerSecond = tt.rps
			cfg.Upstreams[1].Role = RoleFallback
			p := startPool(t, cfg)
			for range 50 {
				var head hexutil.Uint64
				if err := p.Call(context.Background(), &head, "eth_blockNumber"); err != nil {
					t.Fatal(err)
				}
			}
			primary := testutil.ToFloat64(p.ups[0].m.requests.WithLabelValues("eth_blockNumber", "ok"))
			fallback := testutil.ToFloat64(p.ups[1].m.requests.WithLabelValues("eth_blockNumber", "ok"))
			if primary > tt.wantPrimaryMax || fallback < tt.wantFallbackMin || fallback > tt.wantFallbackMax || primary+fallback != 50 {
				t.Errorf("primary %g (max %g), fallback %g (want %g-%g)", primary, tt.wantPrimaryMax, fallback, tt.wantFallbackMin, tt.wantFallbackMax)
			}
		})
	}
}

// TestCandidateOrder shows the ranking: primaries before fallbacks, a
// sound slow upstream before a fast failing one, a lagging one left out
// of reads of the latest state.
func TestCandidateOrder(t *testing.T) {
	cfg := testConfig("http://a.invalid", "http://b.invalid", "http://c.invalid", "http://d.invalid")
	cfg.HTTPClient = &http.Client{Transport: memTransport{}}
	cfg.HealthInterval = time.Hour
	cfg.Upstreams[3].Role = RoleFallback
	p := startPool(t, cfg)
	for range 20 {
		p.ups[0].win.add(sample{latency: time.Millisecond, failed: true})
		p.ups[1].win.add(sample{latency: 20 * time.Millisecond})
		p.ups[2].win.add(sample{latency: time.Millisecond})
		p.ups[3].win.add(sample{latency: time.Microsecond})
	}
	p.ups[2].head.Store(p.bestHead.Load() - p.cfg.MaxLag - 1)
	names := func(us []*upstream) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.name)
		}
		return out
	}
	later := time.Now().Add(time.Second) // past the snapshot cache
	tests := []struct {
		fresh bool
		want  []string
	}{
		{true, []string{"u1", "u0", "u3"}},
		{false, []string{"u1", "u2", "u0", "u3"}}, // lag counts 10 per block, still ahead of errors
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, names(p.candidates(later, tt.fresh))); diff != "" {
			t.Errorf("fresh=%v (-want +got):\n%s", tt.fresh, diff)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for raw, want := range map[string]bool{
		"http://127.0.0.1:8545": true, "http://localhost:8545/rpc": true, "http://[::1]:8545": true,
		"http://127.9.9.9": true, "https://eth.example.com": false, "http://10.0.0.5:8545": false, "::bad": false,
	} {
		if got := isLoopback(raw); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", raw, got, want)
		}
	}
}

func TestLoopbackUpstreamsAskForUncompressedAnswers(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get("Accept-Encoding"):
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"jsonrpc":"2.0","id":1,"result":"0x539"}`)
	}))
	defer srv.Close()
	p, err := New(Config{Chain: "test", ChainID: 1337, Upstreams: []UpstreamConfig{{URL: srv.URL}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.closeClients()
	var id hexutil.Uint64
	if err := p.ups[0].client.CallContext(context.Background(), &id, "eth_chainId"); err != nil || id != 1337 {
		t.Fatalf("eth_chainId = %d, %v", id, err)
	}
	if enc := <-got; enc != "identity" {
		t.Errorf("Accept-Encoding to a loopback upstream = %q, want identity (no gzip)", enc)
	}
}
