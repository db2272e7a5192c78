package rpcpool

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/rpcpool/rpcfault"
)

// TestTwoOfThreeFaulty shows reads, batches and broadcasts keep working
// with any two of three upstreams faulty, whatever the fault.
func TestTwoOfThreeFaulty(t *testing.T) {
	c := startChain(t)
	tests := []struct{ a, b rpcfault.Fault }{
		{rpcfault.TooManyRequests, rpcfault.ServerError},
		{rpcfault.Malformed, rpcfault.Hang},
		{rpcfault.Refused, rpcfault.WrongChain},
		{rpcfault.Stale, rpcfault.TooManyRequests},
		{rpcfault.ServerError, rpcfault.Malformed},
		{rpcfault.Hang, rpcfault.Refused},
		{rpcfault.WrongChain, rpcfault.Stale},
	}
	for _, tt := range tests {
		t.Run(string(tt.a)+"+"+string(tt.b), func(t *testing.T) {
			bad1 := rpcfault.New(t, c.RPCURL(), tt.a)
			bad2 := rpcfault.New(t, c.RPCURL(), tt.b)
			good := rpcfault.New(t, c.RPCURL(), rpcfault.None)
			// The faulty ones come first: on equal scores, config order wins.
			p := startPool(t, testConfig(bad1.URL, bad2.URL, good.URL))
			for range 10 {
				readLatest(t, p, c)
			}
			var head hexutil.Uint64
			var bal hexutil.Big
			batch := []rpc.BatchElem{
				{Method: "eth_blockNumber", Result: &head},
				{Method: "eth_getBalance", Args: []any{c.HotWallet(), "latest"}, Result: &bal},
			}
			if err := p.BatchCall(context.Background(), batch); err != nil || batch[0].Error != nil || batch[1].Error != nil {
				t.Fatalf("batch: %v, %v, %v", err, batch[0].Error, batch[1].Error)
			}
			if head == 0 || bal.ToInt().Sign() == 0 {
				t.Fatalf("batch results: head %d, balance %s", head, bal.ToInt())
			}
			tx := c.nextTx(t)
			got, err := p.Broadcast(context.Background(), raw(t, tx))
			if err != nil || got != tx.Hash() {
				t.Fatalf("broadcast: got %s, %v; want %s", got.Hex(), err, tx.Hash().Hex())
			}
			if _, err := c.Commit(); err != nil {
				t.Fatal(err)
			}
			if r, err := c.Client().TransactionReceipt(context.Background(), tx.Hash()); err != nil || r.Status != 1 {
				t.Fatalf("receipt: %v, %v", r, err)
			}
		})
	}
}

// TestWrongChainNeverUsed shows an upstream on another chain is refused,
// reported, and never sent a request, even as the only primary.
func TestWrongChainNeverUsed(t *testing.T) {
	c := startChain(t)
	wrong := rpcfault.New(t, c.RPCURL(), rpcfault.WrongChain)
	good := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	cfg := testConfig(wrong.URL, good.URL)
	cfg.Upstreams[1].Role = RoleFallback
	p := startPool(t, cfg)
	for range 20 {
		readLatest(t, p, c)
	}
	if _, err := p.Broadcast(context.Background(), raw(t, c.nextTx(t))); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"eth_getBalance", "eth_sendRawTransaction"} {
		if got := wrong.Count(m); got != 0 {
			t.Errorf("wrong-chain upstream got %d %s, want 0", got, m)
		}
	}
	st := statusOf(t, p, "u0")
	if !st.WrongChain || st.Healthy || st.ChainID != 1 || !strings.Contains(st.LastError, "wrong chain") {
		t.Errorf("status: got %+v, want wrong chain 1, not healthy", st)
	}
	head, err := c.Client().BlockNumber(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ok := statusOf(t, p, "u1")
	if !ok.Healthy || ok.Breaker != BreakerClosed || ok.Head != head || ok.Lag != 0 || ok.P50 <= 0 || ok.P90 < ok.P50 ||
		ok.ErrorRate != 0 || ok.LastSeen.IsZero() || ok.Role != RoleFallback || ok.URL != good.URL {
		t.Errorf("status of the good upstream: got %+v, want healthy at head %d with latencies", ok, head)
	}
}

// TestLaggingNeverAnswersLatest shows an upstream whose head is behind,
// or that is still syncing, is never asked about the latest state, yet may
// answer head-independent methods.
func TestLaggingNeverAnswersLatest(t *testing.T) {
	c := startChain(t)
	for _, f := range []rpcfault.Fault{rpcfault.Stale, rpcfault.Syncing} {
		t.Run(string(f), func(t *testing.T) {
			behind := rpcfault.New(t, c.RPCURL(), f)
			good := rpcfault.New(t, c.RPCURL(), rpcfault.None)
			p := startPool(t, testConfig(behind.URL, good.URL))
			before := behind.Count("eth_blockNumber")
			for range 20 {
				readLatest(t, p, c)
			}
			if got := behind.Count("eth_getBalance"); got != 0 {
				t.Errorf("upstream behind got %d eth_getBalance, want 0", got)
			}
			// Only its health checks ask it for the head, one per batch.
			if got, checks := behind.Count("eth_blockNumber")-before, behind.Count("eth_syncing"); got > checks {
				t.Errorf("upstream behind answered eth_blockNumber %d times beyond its %d health checks", got, checks)
			}
			var id hexutil.Uint64
			if err := p.Call(context.Background(), &id, "eth_chainId"); err != nil || uint64(id) != c.ChainID() {
				t.Errorf("eth_chainId: got %d, %v", id, err)
			}
			if f == rpcfault.Stale {
				if got := testutil.ToFloat64(p.ups[0].m.lag); got <= float64(p.cfg.MaxLag) {
					t.Errorf("lag gauge: got %g, want > %d", got, p.cfg.MaxLag)
				}
			}
			st := statusOf(t, p, "u0")
			if st.Healthy || (f == rpcfault.Stale && st.Lag <= p.cfg.MaxLag) || (f == rpcfault.Syncing && !st.Syncing) {
				t.Errorf("status: got healthy %v lag %d syncing %v, want unhealthy and behind", st.Healthy, st.Lag, st.Syncing)
			}
		})
	}
}

// TestRateLimitBacksOff shows a 429 moves the request on at once, backs
// the upstream off for Retry-After (none when it says 0) and does not
// touch its breaker.
func TestRateLimitBacksOff(t *testing.T) {
	c := startChain(t)
	tests := []struct {
		retryAfter string
		wantFor    time.Duration // back-off after the 429
		wantCalls  int           // eth_getBalance it gets out of 10 reads
	}{
		{"1", time.Second, 1},
		{"0", 0, 10},
	}
	for _, tt := range tests {
		t.Run("Retry-After "+tt.retryAfter, func(t *testing.T) {
			limited := rpcfault.New(t, c.RPCURL(), rpcfault.None)
			limited.RetryAfter = tt.retryAfter
			good := rpcfault.New(t, c.RPCURL(), rpcfault.None)
			cfg := testConfig(limited.URL, good.URL)
			cfg.Upstreams[1].Role = RoleFallback
			cfg.HealthInterval = time.Hour
			p := startPool(t, cfg)

			limited.Set(rpcfault.TooManyRequests)
			start := time.Now()
			for range 10 {
				readLatest(t, p, c)
			}
			if got := limited.Count("eth_getBalance"); got != tt.wantCalls {
				t.Errorf("rate-limited upstream got %d eth_getBalance, want %d", got, tt.wantCalls)
			}
			st := statusOf(t, p, "u0")
			if tt.wantFor > 0 {
				if until := st.RateLimited.Sub(start); until < tt.wantFor-200*time.Millisecond || until > tt.wantFor+200*time.Millisecond {
					t.Errorf("rate-limited for %s after the 429, want about %s", until, tt.wantFor)
				}
			}
			if st.Breaker != BreakerClosed || st.ErrorRate != 0 || !st.Healthy {
				t.Errorf("breaker %s, error rate %g, healthy %v: want closed, 0, healthy", st.Breaker, st.ErrorRate, st.Healthy)
			}
			limited.Set(rpcfault.None)
			time.Sleep(time.Until(st.RateLimited) + 20*time.Millisecond)
			readLatest(t, p, c)
			if got := limited.Count("eth_getBalance"); got != tt.wantCalls+1 {
				t.Errorf("after Retry-After: upstream got %d eth_getBalance, want %d", got, tt.wantCalls+1)
			}
		})
	}
}

// TestRateLimitedEverywhereWaits shows a request waiting out the back-off
// when every upstream is rate-limited, instead of failing.
func TestRateLimitedEverywhereWaits(t *testing.T) {
	c := startChain(t)
	only := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	cfg := testConfig(only.URL)
	cfg.HealthInterval = time.Hour
	p := startPool(t, cfg)
	only.Set(rpcfault.TooManyRequests)
	var bal hexutil.Big
	if err := p.Call(context.Background(), &bal, "eth_getBalance", c.HotWallet(), "latest"); err == nil {
		t.Fatal("the 429 itself: got nil, want an error")
	}
	only.Set(rpcfault.None)
	start := time.Now()
	readLatest(t, p, c)
	if took := time.Since(start); took < 800*time.Millisecond {
		t.Errorf("answered after %s, want after the 1s Retry-After", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	only.Set(rpcfault.TooManyRequests)
	p.Call(ctx, &bal, "eth_getBalance", c.HotWallet(), "latest")
	start = time.Now()
	err := p.Call(ctx, &bal, "eth_getBalance", c.HotWallet(), "latest")
	if !errors.Is(err, ErrNoUpstream) || time.Since(start) > 90*time.Millisecond {
		t.Errorf("back-off beyond the deadline: got %v after %s, want ErrNoUpstream at once", err, time.Since(start))
	}
}

// TestBreaker shows the breaker opening after consecutive failures and a
// half-open probe closing it, or reopening it while the upstream fails.
func TestBreaker(t *testing.T) {
	c := startChain(t)
	tests := []struct {
		name        string
		afterOpen   rpcfault.Fault
		wantBreaker BreakerState
	}{
		{"recovers", rpcfault.None, BreakerClosed},
		{"still broken", rpcfault.ServerError, BreakerOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flaky := rpcfault.New(t, c.RPCURL(), rpcfault.None)
			good := rpcfault.New(t, c.RPCURL(), rpcfault.None)
			cfg := testConfig(flaky.URL, good.URL)
			cfg.Upstreams[1].Role = RoleFallback
			cfg.HealthInterval = time.Hour
			p := startPool(t, cfg)
			flaky.Set(rpcfault.ServerError)
			for range 3 {
				readLatest(t, p, c)
			}
			u := p.ups[0]
			if got := u.brk.current(); got != BreakerOpen {
				t.Fatalf("after 3 failures: breaker %s, want open", got)
			}
			if got := testutil.ToFloat64(u.m.breaker); got != 2 {
				t.Errorf("breaker gauge: got %g, want 2", got)
			}
			failed := testutil.ToFloat64(u.m.requests.WithLabelValues("eth_getBalance", "http_500")) +
				testutil.ToFloat64(u.m.requests.WithLabelValues("eth_blockNumber", "http_500"))
			if got := failed; got != 3 {
				t.Errorf("requests{outcome=http_500}: got %g, want 3", got)
			}
			before := flaky.Count("eth_getBalance")
			readLatest(t, p, c)
			if got := flaky.Count("eth_getBalance"); got != before {
				t.Fatalf("open breaker let %d requests through", got-before)
			}
			flaky.Set(tt.afterOpen)
			time.Sleep(cfg.BreakerOpenFor + 20*time.Millisecond)
			readLatest(t, p, c)
			if got := flaky.Count("eth_getBalance"); got != before+1 {
				t.Errorf("half-open: %d probes, want 1", got-before)
			}
			if got := u.brk.current(); got != tt.wantBreaker {
				t.Errorf("after the probe: breaker %s, want %s", got, tt.wantBreaker)
			}
		})
	}
}

// TestDeterministicErrorsDoNotFailOver shows node answers about the
// request are returned from the first upstream, not retried elsewhere.
func TestDeterministicErrorsDoNotFailOver(t *testing.T) {
	c := startChain(t)
	ups := []*rpcfault.Upstream{
		rpcfault.New(t, c.RPCURL(), rpcfault.None),
		rpcfault.New(t, c.RPCURL(), rpcfault.None),
		rpcfault.New(t, c.RPCURL(), rpcfault.None),
	}
	p := startPool(t, testConfig(ups[0].URL, ups[1].URL, ups[2].URL))
	poor := mustKey(t)
	transfer := evm.ERC20TransferData(c.HotWallet(), bigOne)
	tests := []struct {
		name     string
		method   string
		args     []any
		wantKind evm.ErrorKind
	}{
		{"revert", "eth_call", []any{map[string]any{"from": addr(poor), "to": c.SUSD(), "input": hexutil.Bytes(transfer)}, "latest"}, evm.KindExecutionReverted},
		{"insufficient funds", "eth_sendRawTransaction", []any{hexutil.Bytes(raw(t, signTx(t, poor, 0)))}, evm.KindInsufficientFunds},
		{"nonce too low", "eth_sendRawTransaction", []any{hexutil.Bytes(raw(t, signTx(t, c.key, 0)))}, evm.KindNonceTooLow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := 0
			for _, u := range ups {
				before += u.Count(tt.method)
			}
			var res any
			err := p.Call(context.Background(), &res, tt.method, tt.args...)
			if kind, _ := evm.Classify(err); kind != tt.wantKind {
				t.Fatalf("error %v: got kind %q, want %q", err, kind, tt.wantKind)
			}
			after := 0
			for _, u := range ups {
				after += u.Count(tt.method)
			}
			if after-before != 1 {
				t.Errorf("%s sent to %d upstreams, want 1", tt.method, after-before)
			}
		})
	}
}

// TestBroadcast shows what a broadcast's answers mean: a new, a known and
// a mined transaction are accepted; a nonce taken by another transaction
// and a deterministic refusal are errors.
func TestBroadcast(t *testing.T) {
	c := startChain(t)
	ups := []*rpcfault.Upstream{rpcfault.New(t, c.RPCURL(), rpcfault.None), rpcfault.New(t, c.RPCURL(), rpcfault.None)}
	p := startPool(t, testConfig(ups[0].URL, ups[1].URL))
	tx := c.nextTx(t)
	rival := signTxTo(t, c.key, tx.Nonce(), addr(mustKey(t))) // same nonce, another hash
	tests := []struct {
		name    string
		raw     []byte
		commit  bool // mine before broadcasting
		wantErr error
		wantIn  string
	}{
		{name: "new", raw: raw(t, tx)},
		{name: "already known", raw: raw(t, tx)},
		{name: "mined: nonce too low, same hash", raw: raw(t, tx), commit: true},
		{name: "nonce taken by another tx", raw: raw(t, rival), wantErr: ErrNonceTaken},
		{name: "insufficient funds", raw: raw(t, signTx(t, mustKey(t), 0)), wantIn: "insufficient funds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.commit {
				if _, err := c.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			_, err := p.Broadcast(context.Background(), tt.raw)
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("got %v, want %v", err, tt.wantErr)
			case tt.wantIn != "" && (err == nil || !strings.Contains(err.Error(), tt.wantIn)):
				t.Errorf("got %v, want an error with %q", err, tt.wantIn)
			case tt.wantErr == nil && tt.wantIn == "" && err != nil:
				t.Errorf("got %v, want success", err)
			}
		})
	}
	p.Stop() // a broadcast returns at the first acceptance; wait for the rest
	for i, u := range ups {
		if got := u.Count("eth_sendRawTransaction"); got != len(tests) {
			t.Errorf("upstream %d got %d broadcasts, want %d (every one to all)", i, got, len(tests))
		}
	}
}

// TestAllBreakersOpen shows a pool whose every breaker is open still
// asking its sound upstreams as a last resort, and closing the breaker of
// the one that answers.
func TestAllBreakersOpen(t *testing.T) {
	c := startChain(t)
	a := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	b := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	cfg := testConfig(a.URL, b.URL)
	cfg.HealthInterval, cfg.BreakerOpenFor = time.Hour, time.Hour
	p := startPool(t, cfg)
	a.Set(rpcfault.ServerError)
	b.Set(rpcfault.ServerError)
	for range 3 {
		var head hexutil.Uint64
		if err := p.Call(context.Background(), &head, "eth_blockNumber"); err == nil {
			t.Fatal("both upstreams failing: got nil, want an error")
		}
	}
	for i, u := range p.ups {
		if got := u.brk.current(); got != BreakerOpen {
			t.Fatalf("upstream %d: breaker %s, want open", i, got)
		}
	}
	b.Set(rpcfault.None)
	readLatest(t, p, c)
	if got := p.ups[1].brk.current(); got != BreakerClosed {
		t.Errorf("the upstream that answered: breaker %s, want closed", got)
	}
	if got := p.ups[0].brk.current(); got != BreakerOpen {
		t.Errorf("the failing one: breaker %s, want open", got)
	}
}

// TestUpstreamWithoutBatches shows an upstream that refuses batch requests
// still passing its health checks, one call at a time, and answering.
func TestUpstreamWithoutBatches(t *testing.T) {
	c := startChain(t)
	only := rpcfault.New(t, c.RPCURL(), rpcfault.NoBatch)
	p := startPool(t, testConfig(only.URL))
	readLatest(t, p, c)
	if st := p.Status()[0]; !st.Healthy || st.Head == 0 {
		t.Errorf("status: got healthy %v head %d, want healthy with a head", st.Healthy, st.Head)
	}
	if got := only.Count("eth_getBalance"); got != 1 {
		t.Errorf("eth_getBalance: got %d, want 1", got)
	}
}

// TestRateLimitedUpstreamIsWaitedForWhenTheOthersFail: faults move; the
// one good upstream is still backing off after a 429 when the two others
// start failing. The read waits out the Retry-After and is answered by it
// instead of failing (the shape of a failed read in the engine's fault
// test: phases [none 429 blackhole] then [500 none reset]).
func TestRateLimitedUpstreamIsWaitedForWhenTheOthersFail(t *testing.T) {
	c := startChain(t)
	a := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	limited := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	b := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	cfg := testConfig(a.URL, limited.URL, b.URL)
	cfg.Upstreams[0].Role, cfg.Upstreams[2].Role = RoleFallback, RoleFallback // reads go to limited first
	cfg.HealthInterval = time.Hour
	p := startPool(t, cfg)
	readLatest(t, p, c)

	// The 429 backs limited off for 1 s; the read goes on to a fallback.
	limited.Set(rpcfault.TooManyRequests)
	readLatest(t, p, c)
	if st := statusOf(t, p, "u1"); !st.RateLimited.After(time.Now()) {
		t.Fatalf("u1 is not backing off after its 429s (rate limited until %s)", st.RateLimited)
	}
	// Now it is fine, and the two others fail.
	limited.Set(rpcfault.None)
	a.Set(rpcfault.ServerError)
	b.Set(rpcfault.ServerError)
	start := time.Now()
	readLatest(t, p, c)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("answered after %s", took)
	}
	if n := limited.Count("eth_getBalance"); n == 0 {
		t.Error("the read was not answered by the upstream that had been rate-limited")
	}
}
