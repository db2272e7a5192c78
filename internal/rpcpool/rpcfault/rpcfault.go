// Package rpcfault is a test aid: a real HTTP JSON-RPC upstream in front
// of a node (the dev chain) that injects the faults node providers show —
// 429 with Retry-After, 500, a wrong chain id, a stale head, a syncing
// node, malformed JSON, answers that never come or come late, no batches —
// and counts the methods it was asked. The pool's tests and the engine's
// fault tests share it.
package rpcfault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Fault is what an Upstream does to the requests it gets.
type Fault string

// The faults. None passes every request to the node unchanged.
const (
	None            Fault = ""
	TooManyRequests Fault = "429"         // 429 with Retry-After
	ServerError     Fault = "500"         // 500 Internal Server Error
	WrongChain      Fault = "wrong_chain" // eth_chainId answers 1
	Stale           Fault = "stale"       // eth_blockNumber answers 0
	Syncing         Fault = "syncing"     // eth_syncing answers a sync progress
	Malformed       Fault = "malformed"   // 200 with a body that is not JSON
	Hang            Fault = "hang"        // never answers (until the client gives up)
	Slow            Fault = "slow"        // answers after Delay
	SlowSome        Fault = "slow_some"   // every SlowEvery-th request answers after Delay
	Refused         Fault = "refused"     // a closed port: connection refused (only at New)
	NoBatch         Fault = "no_batch"    // refuses batch requests with a 400
	// PreLondon makes the node look like a chain without EIP-1559: blocks
	// lose baseFeePerGas, and eth_feeHistory and eth_maxPriorityFeePerGas
	// do not exist. Blocks keep the node's hash, which no longer matches
	// go-ethereum's hash of the decoded header, as on chains whose headers
	// go-ethereum does not model.
	PreLondon Fault = "pre_london"
	// L1Fee makes the node look like an OP-stack chain (Optimism, Base):
	// every receipt carries "l1Fee": L1FeeWei, the fee for posting the
	// transaction to L1 that those chains charge on top of the gas. (The
	// dev chain does not take it from the sender: only what is read of
	// receipts changes.)
	L1Fee Fault = "l1_fee"
)

// L1FeeWei is the l1Fee the L1Fee fault puts in every receipt.
const L1FeeWei = 123_456_789

// Upstream is a fault-injecting JSON-RPC upstream. Set RetryAfter, Delay
// and SlowEvery before the first request; Set changes the fault at any
// time.
type Upstream struct {
	// URL is where clients send requests.
	URL string
	// RetryAfter is the Retry-After header of TooManyRequests; default "1".
	RetryAfter string
	// Delay is how late Slow and SlowSome answer; default 100 ms.
	Delay time.Duration
	// SlowEvery is which requests SlowSome delays; default every 20th.
	SlowEvery int64

	srv    *httptest.Server
	target string
	client *http.Client
	mode   atomic.Value // Fault
	n      atomic.Int64
	done   chan struct{}

	// mu guards calls.
	mu    sync.Mutex
	calls map[string]int
}

// New starts an upstream passing requests to target (a node's HTTP
// JSON-RPC URL) with fault f; it stops at the test's end. Refused gives
// the URL of a port nobody listens on, for good.
func New(t testing.TB, target string, f Fault) *Upstream {
	t.Helper()
	u := &Upstream{target: target, RetryAfter: "1", Delay: 100 * time.Millisecond, SlowEvery: 20,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		done:   make(chan struct{}), calls: map[string]int{}}
	u.mode.Store(f)
	if f == Refused {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		u.URL = "http://" + l.Addr().String()
		l.Close()
		return u
	}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	u.URL = u.srv.URL
	t.Cleanup(func() {
		close(u.done)
		u.srv.Close()
		u.client.CloseIdleConnections()
	})
	return u
}

// Set changes the fault; requests already waiting keep the old one.
func (u *Upstream) Set(f Fault) { u.mode.Store(f) }

// Fault is the fault in force.
func (u *Upstream) Fault() Fault { return u.mode.Load().(Fault) }

// Count returns how often method was asked, in single or batch requests.
func (u *Upstream) Count(method string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[method]
}

// ParseMessages reads a JSON-RPC body: a single message or a batch.
func ParseMessages(body []byte) (msgs []map[string]json.RawMessage, batch bool) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		json.Unmarshal(body, &msgs)
		return msgs, true
	}
	var one map[string]json.RawMessage
	json.Unmarshal(body, &one)
	return []map[string]json.RawMessage{one}, false
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	reqs, batch := ParseMessages(body)
	methods := map[string]string{}
	u.mu.Lock()
	for _, m := range reqs {
		var name string
		json.Unmarshal(m["method"], &name)
		u.calls[name]++
		methods[string(m["id"])] = name
	}
	u.mu.Unlock()
	n := u.n.Add(1)
	switch u.Fault() {
	case NoBatch:
		if batch {
			http.Error(w, "batch requests are not supported on this plan", http.StatusBadRequest)
			return
		}
	case TooManyRequests:
		w.Header().Set("Retry-After", u.RetryAfter)
		http.Error(w, "too many requests", http.StatusTooManyRequests)
		return
	case ServerError:
		http.Error(w, "upstream exploded", http.StatusInternalServerError)
		return
	case Malformed:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":`)
		return
	case Hang:
		u.wait(r, time.Hour)
		return
	case Slow:
		u.wait(r, u.Delay)
	case SlowSome:
		if n%u.SlowEvery == 0 {
			u.wait(r, u.Delay)
		}
	}
	u.forward(w, r, body, methods)
}

// Forward passes body, a JSON-RPC request r carried, to the node and
// writes the node's answer unchanged: for handlers built around an
// Upstream that fault on their own terms.
func (u *Upstream) Forward(w http.ResponseWriter, r *http.Request, body []byte) {
	u.forward(w, r, body, nil)
}

func (u *Upstream) wait(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-u.done:
	case <-t.C:
	}
}

// forward passes body to the node and rewrites the answers the fault
// asks for.
func (u *Upstream) forward(w http.ResponseWriter, r *http.Request, body []byte, methods map[string]string) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, u.target, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := u.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if f := u.Fault(); methods != nil && (f == WrongChain || f == Stale || f == Syncing || f == PreLondon || f == L1Fee) {
		out = rewrite(out, methods, f)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
}

func rewrite(body []byte, methods map[string]string, f Fault) []byte {
	msgs, batch := ParseMessages(body)
	for _, m := range msgs {
		switch method := methods[string(m["id"])]; {
		case f == WrongChain && method == "eth_chainId":
			m["result"] = json.RawMessage(`"0x1"`)
		case f == Stale && method == "eth_blockNumber":
			m["result"] = json.RawMessage(`"0x0"`)
		case f == Syncing && method == "eth_syncing":
			m["result"] = json.RawMessage(`{"startingBlock":"0x0","currentBlock":"0x1","highestBlock":"0x100"}`)
		case f == PreLondon && (method == "eth_feeHistory" || method == "eth_maxPriorityFeePerGas"):
			delete(m, "result")
			m["error"] = json.RawMessage(`{"code":-32601,"message":"the method ` + method + ` does not exist/is not available"}`)
		case f == PreLondon && (method == "eth_getBlockByNumber" || method == "eth_getBlockByHash"):
			m["result"] = withoutBaseFee(m["result"])
		case f == L1Fee && method == "eth_getTransactionReceipt":
			m["result"] = withL1Fee(m["result"])
		case f == L1Fee && method == "eth_getBlockReceipts":
			var rs []json.RawMessage
			if json.Unmarshal(m["result"], &rs) == nil {
				for i := range rs {
					rs[i] = withL1Fee(rs[i])
				}
				m["result"], _ = json.Marshal(rs)
			}
		}
	}
	if batch {
		out, _ := json.Marshal(msgs)
		return out
	}
	out, _ := json.Marshal(msgs[0])
	return out
}

// withL1Fee adds "l1Fee": L1FeeWei to a receipt (null stays null).
func withL1Fee(receipt json.RawMessage) json.RawMessage {
	var fields map[string]json.RawMessage
	if json.Unmarshal(receipt, &fields) != nil || fields == nil {
		return receipt
	}
	fields["l1Fee"] = json.RawMessage(fmt.Sprintf(`"0x%x"`, L1FeeWei))
	out, _ := json.Marshal(fields)
	return out
}

// withoutBaseFee removes baseFeePerGas from a block (null stays null).
func withoutBaseFee(block json.RawMessage) json.RawMessage {
	var fields map[string]json.RawMessage
	if json.Unmarshal(block, &fields) != nil || fields == nil {
		return block
	}
	delete(fields, "baseFeePerGas")
	out, _ := json.Marshal(fields)
	return out
}
