package rpcpool

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fault is what a faultProxy does to the requests it gets.
type fault string

const (
	faultNone       fault = ""
	fault429        fault = "429"         // 429 with Retry-After
	fault500        fault = "500"         // 500 Internal Server Error
	faultWrongChain fault = "wrong_chain" // eth_chainId answers 1
	faultStale      fault = "stale"       // eth_blockNumber answers 0
	faultSyncing    fault = "syncing"     // eth_syncing answers a sync progress
	faultMalformed  fault = "malformed"   // 200 with a body that is not JSON
	faultHang       fault = "hang"        // never answers
	faultSlow       fault = "slow"        // answers after delay
	faultSlowSome   fault = "slow_some"   // every slowEvery-th request answers after delay
	faultRefused    fault = "refused"     // a closed port: connection refused
	faultNoBatch    fault = "no_batch"    // refuses batch requests with a 400
)

// faultProxy is a real HTTP upstream in front of the dev chain that
// injects JSON-RPC faults and counts the methods it was asked.
type faultProxy struct {
	srv        *httptest.Server
	url        string
	target     string
	retryAfter string
	delay      time.Duration
	slowEvery  int64
	mode       atomic.Value // fault
	n          atomic.Int64
	done       chan struct{}

	// mu guards calls.
	mu    sync.Mutex
	calls map[string]int
}

// newFaultProxy starts a proxy to target with the fault f. faultRefused
// gives the URL of a port nobody listens on.
func newFaultProxy(t testing.TB, target string, f fault) *faultProxy {
	t.Helper()
	p := &faultProxy{target: target, retryAfter: "1", delay: 100 * time.Millisecond, slowEvery: 20,
		done: make(chan struct{}), calls: map[string]int{}}
	p.mode.Store(f)
	if f == faultRefused {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p.url = "http://" + l.Addr().String()
		l.Close()
		return p
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.url = p.srv.URL
	t.Cleanup(func() {
		close(p.done)
		p.srv.Close()
	})
	return p
}

func (p *faultProxy) set(f fault) { p.mode.Store(f) }

// count returns how often method was asked, in single or batch requests.
func (p *faultProxy) count(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[method]
}

// parseMsgs reads a single message or a batch.
func parseMsgs(body []byte) (msgs []map[string]json.RawMessage, batch bool) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		json.Unmarshal(body, &msgs)
		return msgs, true
	}
	var one map[string]json.RawMessage
	json.Unmarshal(body, &one)
	return []map[string]json.RawMessage{one}, false
}

func (p *faultProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	reqs, batch := parseMsgs(body)
	methods := map[string]string{}
	p.mu.Lock()
	for _, m := range reqs {
		var name string
		json.Unmarshal(m["method"], &name)
		p.calls[name]++
		methods[string(m["id"])] = name
	}
	p.mu.Unlock()
	n := p.n.Add(1)
	switch p.mode.Load().(fault) {
	case faultNoBatch:
		if batch {
			http.Error(w, "batch requests are not supported on this plan", http.StatusBadRequest)
			return
		}
	case fault429:
		w.Header().Set("Retry-After", p.retryAfter)
		http.Error(w, "too many requests", http.StatusTooManyRequests)
		return
	case fault500:
		http.Error(w, "upstream exploded", http.StatusInternalServerError)
		return
	case faultMalformed:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":`)
		return
	case faultHang:
		p.wait(r, time.Hour)
		return
	case faultSlow:
		p.wait(r, p.delay)
	case faultSlowSome:
		if n%p.slowEvery == 0 {
			p.wait(r, p.delay)
		}
	}
	p.forward(w, body, methods)
}

func (p *faultProxy) wait(r *http.Request, d time.Duration) {
	select {
	case <-r.Context().Done():
	case <-p.done:
	case <-time.After(d):
	}
}

// forward passes body to the chain and rewrites the answers the fault
// asks for.
func (p *faultProxy) forward(w http.ResponseWriter, body []byte, methods map[string]string) {
	resp, err := http.Post(p.target, "application/json", bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if f := p.mode.Load().(fault); f == faultWrongChain || f == faultStale || f == faultSyncing {
		out = rewrite(out, methods, f)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
}

func rewrite(body []byte, methods map[string]string, f fault) []byte {
	msgs, batch := parseMsgs(body)
	for _, m := range msgs {
		switch method := methods[string(m["id"])]; {
		case f == faultWrongChain && method == "eth_chainId":
			m["result"] = json.RawMessage(`"0x1"`)
		case f == faultStale && method == "eth_blockNumber":
			m["result"] = json.RawMessage(`"0x0"`)
		case f == faultSyncing && method == "eth_syncing":
			m["result"] = json.RawMessage(`{"startingBlock":"0x0","currentBlock":"0x1","highestBlock":"0x100"}`)
		}
	}
	if batch {
		out, _ := json.Marshal(msgs)
		return out
	}
	out, _ := json.Marshal(msgs[0])
	return out
}
