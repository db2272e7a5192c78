package rpcpool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/rpc"
	"golang.org/x/time/rate"

	"github.com/sluicepay/sluice/internal/evm"
)

// upstream is one node of the pool with everything the pool knows of it.
type upstream struct {
	name     string
	url      string // redacted: safe for logs and Status
	rawURL   string // may hold a provider key: never logged
	role     Role
	index    int // position in the config: the tie-breaker of equal scores
	client   *rpc.Client
	limiter  *rate.Limiter // nil: no budget
	win      *window
	brk      *breaker
	rlUntil  atomic.Int64 // unix nanoseconds until which the upstream is rate-limited
	head     atomic.Uint64
	m        *upstreamMetrics
	lastSeen atomic.Int64 // unix nanoseconds of the last successful health check

	// mu guards the health facts below, written by the health check.
	mu         sync.Mutex
	chainKnown bool   // the chain id was checked at least once
	wrongChain uint64 // the chain id answered when it is not ours, else 0
	syncing    bool
	lastErr    string
}

// retryAfterTransport notes a 429's Retry-After on its upstream before the
// RPC client turns the response into an error that has lost the header.
type retryAfterTransport struct {
	base http.RoundTripper
	up   *upstream
	max  time.Duration
	def  time.Duration
}

// RoundTrip implements http.RoundTripper.
func (t *retryAfterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		t.up.backOff(time.Now(), retryAfter(resp.Header.Get("Retry-After"), time.Now(), t.def, t.max))
	}
	return resp, err
}

// retryAfter parses a Retry-After header (seconds or an HTTP date), bounded
// by limit; def when absent or unparsable.
func retryAfter(h string, now time.Time, def, limit time.Duration) time.Duration {
	d := def
	if secs, err := strconv.Atoi(h); err == nil && secs >= 0 {
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(h); err == nil {
		d = at.Sub(now)
	}
	return min(max(d, 0), limit)
}

// backOff rate-limits the upstream for d from now, never shortening a
// longer back-off already in place.
func (u *upstream) backOff(now time.Time, d time.Duration) {
	until := now.Add(d).UnixNano()
	for {
		cur := u.rlUntil.Load()
		if cur >= until || u.rlUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

func (u *upstream) rateLimited(now time.Time) bool {
	return now.UnixNano() < u.rlUntil.Load()
}

// dialUpstream builds an upstream; no request is sent yet.
func dialUpstream(i int, uc UpstreamConfig, cfg *Config, base *http.Client) (*upstream, error) {
	u := &upstream{
		name: uc.Name, url: RedactURL(uc.URL), rawURL: uc.URL, role: uc.Role, index: i,
		win: newWindow(cfg.Window),
		brk: newBreaker(cfg.BreakerFailures, cfg.BreakerOpenFor),
	}
	if uc.RequestsPerSecond > 0 {
		u.limiter = rate.NewLimiter(rate.Limit(uc.RequestsPerSecond), max(1, int(uc.RequestsPerSecond)))
	}
	transport := base.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	hc := *base
	hc.Transport = &retryAfterTransport{base: transport, up: u, def: cfg.RateLimitBackoff, max: cfg.MaxRateLimitBackoff}
	headers := http.Header{}
	for k, v := range uc.Headers {
		headers.Set(k, v)
	}
	if headers.Get("Accept-Encoding") == "" && isLoopback(uc.URL) {
		// A node on this machine would spend its CPU compressing answers
		// (gzip was 15% of the dev chain's CPU under load) to save no
		// bandwidth at all.
		headers.Set("Accept-Encoding", "identity")
	}
	c, err := rpc.DialOptions(context.Background(), uc.URL, rpc.WithHTTPClient(&hc), rpc.WithHeaders(headers))
	if err != nil {
		return nil, fmt.Errorf("dial upstream %s: %w", u.name, err)
	}
	u.client = c
	return u, nil
}

// isLoopback reports whether a URL's host is this machine.
func isLoopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// upstreamName is the configured name or the host, unique in the pool.
func upstreamName(uc UpstreamConfig, i int, taken map[string]bool) string {
	name := uc.Name
	if name == "" {
		if parsed, err := url.Parse(uc.URL); err == nil {
			name = parsed.Host
		}
	}
	if taken[name] {
		name = fmt.Sprintf("%s-%d", name, i)
	}
	taken[name] = true
	return name
}

// outcome is what an attempt's error means for the pool.
type outcome int

const (
	outcomeOK          outcome = iota // a result
	outcomeAnswer                     // a deterministic JSON-RPC error: the caller's answer
	outcomeRateLimited                // capacity: back off, try another, not a failure
	outcomeFailure                    // the upstream failed: try another, count it
	outcomeCanceled                   // the request ended first: no verdict
)

// JSON-RPC error codes that are answers about the request itself: every
// node gives the same one.
var answerCodes = map[int]bool{
	-32600: true, // invalid request
	-32601: true, // method not found
	-32602: true, // invalid params
	3:      true, // execution reverted (with data)
}

// classify maps an attempt's error to an outcome and a metrics label,
// using evm.Classify, the one table shared with the sender.
func classify(err error) (outcome, string) {
	if err == nil {
		return outcomeOK, "ok"
	}
	if errors.Is(err, context.Canceled) {
		return outcomeCanceled, "canceled"
	}
	var httpErr rpc.HTTPError
	if errors.As(err, &httpErr) {
		if httpErr.StatusCode == http.StatusTooManyRequests {
			return outcomeRateLimited, string(evm.KindRateLimited)
		}
		return outcomeFailure, "http_" + strconv.Itoa(httpErr.StatusCode)
	}
	kind, deterministic := evm.Classify(err)
	switch {
	case deterministic:
		return outcomeAnswer, string(kind)
	case kind == evm.KindRateLimited:
		return outcomeRateLimited, string(kind)
	}
	var rpcErr rpc.Error
	if errors.As(err, &rpcErr) && answerCodes[rpcErr.ErrorCode()] {
		return outcomeAnswer, "rpc_" + strconv.Itoa(rpcErr.ErrorCode())
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) || errors.Is(err, rpc.ErrNoResult) || errors.Is(err, io.ErrUnexpectedEOF) {
		return outcomeFailure, "malformed" // a truncated body is io.ErrUnexpectedEOF
	}
	if errors.Is(err, errBadAnswer) {
		return outcomeFailure, "implausible"
	}
	return outcomeFailure, string(kind)
}

// record feeds the outcome of an attempt begun at start to the window,
// breaker and metrics.
func (p *Pool) record(u *upstream, method string, start time.Time, out outcome, label string) {
	now := time.Now()
	took := now.Sub(start)
	switch out {
	case outcomeOK, outcomeAnswer:
		u.win.add(sample{latency: took})
		p.breakerMoved(u, u.brk.success)
	case outcomeFailure:
		u.win.add(sample{latency: took, failed: true})
		p.breakerMoved(u, func() (BreakerState, BreakerState) { return u.brk.failure(now) })
	case outcomeRateLimited:
		// A 429 had its Retry-After applied by the transport (0 included);
		// a rate-limit error in a JSON-RPC answer gets the default.
		// (start, not now minus took: on a busy machine this goroutine may
		// run long after the transport saw the 429.)
		if u.rlUntil.Load() < start.UnixNano() {
			u.backOff(now, p.cfg.RateLimitBackoff)
		}
		u.brk.release()
	case outcomeCanceled:
		u.brk.release()
		return
	}
	u.m.requests.WithLabelValues(method, label).Inc()
	u.m.latency.Observe(took.Seconds())
}

// breakerMoved applies a breaker change and logs and exports transitions.
func (p *Pool) breakerMoved(u *upstream, change func() (BreakerState, BreakerState)) {
	from, to := change()
	u.m.breaker.Set(breakerValue(to))
	if from != to {
		p.log.Warn("upstream breaker changed", "upstream", u.name, "from", string(from), "to", string(to))
	}
}

func (u *upstream) setErr(err string) {
	u.mu.Lock()
	u.lastErr = err
	u.mu.Unlock()
}
