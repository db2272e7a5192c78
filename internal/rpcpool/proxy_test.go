package rpcpool

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/rpcpool/rpcfault"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// testProxy is the endpoint in an HTTP server, with its metrics.
type testProxy struct {
	url string // the endpoint of the chain "sandbox"
	srv *httptest.Server
	reg *prometheus.Registry
}

// startProxy serves pool as the chain "sandbox" behind the endpoint.
func startProxy(t testing.TB, pool *Pool, cfg ProxyConfig) *testProxy {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	srv := httptest.NewServer(NewProxy(map[string]*Pool{"sandbox": pool}, cfg))
	t.Cleanup(srv.Close)
	return &testProxy{url: srv.URL + "/rpc/sandbox", srv: srv, reg: reg}
}

// post sends body to url with the headers and returns the status and body.
func post(t testing.TB, url, body string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(out)
}

// containsInOrder reports the first of wants not found in s after the
// previous one, or "".
func containsInOrder(s string, wants []string) string {
	for _, w := range wants {
		i := strings.Index(s, w)
		if i < 0 {
			return w
		}
		s = s[i+len(w):]
	}
	return ""
}

// TestProxyRequests runs the endpoint's scenarios against a real dev chain
// behind three upstreams.
func TestProxyRequests(t *testing.T) {
	c := startChain(t)
	ups := []*rpcfault.Upstream{rpcfault.New(t, c.RPCURL(), rpcfault.None), rpcfault.New(t, c.RPCURL(), rpcfault.None), rpcfault.New(t, c.RPCURL(), rpcfault.None)}
	tp := startProxy(t, startPool(t, testConfig(ups[0].URL, ups[1].URL, ups[2].URL)), ProxyConfig{MaxBodyBytes: 4096, MaxBatch: 5})
	head, err := c.Client().BlockNumber(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bal, err := c.Client().BalanceAt(context.Background(), c.HotWallet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	chainID, wantHead, wantBal := hexutil.EncodeUint64(sandbox.ChainID), hexutil.EncodeUint64(head), hexutil.EncodeBig(bal)
	getBalance := fmt.Sprintf(`{"jsonrpc":"2.0","id":"b","method":"eth_getBalance","params":["%s","latest"]}`, c.HotWallet())
	tests := []struct {
		name   string
		path   string // default: the sandbox endpoint
		body   string
		status int
		want   []string // in this order in the response
		absent string   // must not be in the response
	}{
		{"single", "", `{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}`, 200, []string{`{"jsonrpc":"2.0","id":7,"result":"` + chainID + `"}`}, ""},
		{"string id and balance", "", getBalance, 200, []string{`"id":"b","result":"` + wantBal + `"`}, ""},
		{"null result", "", `{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionReceipt","params":["0x` + strings.Repeat("ab", 32) + `"]}`, 200, []string{`"id":1,"result":null`}, ""},
		{"batch in order, notification unanswered", "", `[{"jsonrpc":"2.0","id":3,"method":"eth_blockNumber"},` + getBalance + `,{"jsonrpc":"2.0","method":"eth_chainId"},{"jsonrpc":"2.0","id":1,"method":"net_version"}]`, 200,
			[]string{`[{"jsonrpc":"2.0","id":3,"result":"` + wantHead + `"}`, `"id":"b","result":"` + wantBal + `"`, `"id":1,"result":"` + fmt.Sprint(sandbox.ChainID) + `"}]`}, `"id":null`},
		{"batch mixing refusal and invalid", "", `[{"jsonrpc":"2.0","id":1,"method":"eth_sendTransaction","params":[{}]},1,{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}]`, 200,
			[]string{`"id":1,"error":{"code":-32601,"message":"method eth_sendTransaction is not allowed`, `"id":null,"error":{"code":-32600`, `"id":2,"result":"` + chainID + `"`}, ""},
		{"notification only", "", `{"jsonrpc":"2.0","method":"eth_chainId"}`, 204, nil, "jsonrpc"},
		{"eth_sign refused", "", `{"jsonrpc":"2.0","id":1,"method":"eth_sign","params":["0x00","0x00"]}`, 200, []string{`-32601`, `eth_sign is not allowed: it would use the node's own keys`}, "result"},
		{"personal refused", "", `{"jsonrpc":"2.0","id":1,"method":"personal_unlockAccount","params":[]}`, 200, []string{`-32601`, `personal_unlockAccount is not allowed`}, "result"},
		{"admin refused", "", `{"jsonrpc":"2.0","id":1,"method":"admin_peers"}`, 200, []string{`-32601`, `admin_peers is not allowed: the admin namespace`}, "result"},
		{"debug refused", "", `{"jsonrpc":"2.0","id":1,"method":"debug_traceTransaction","params":["0x00"]}`, 200, []string{`-32601`, `debug_traceTransaction`}, "result"},
		{"filter refused", "", `{"jsonrpc":"2.0","id":1,"method":"eth_newFilter","params":[{}]}`, 200, []string{`-32601`, `eth_newFilter is not allowed: filters`}, "result"},
		{"unknown method refused", "", `{"jsonrpc":"2.0","id":1,"method":"foo_bar"}`, 200, []string{`-32601`, `foo_bar is not allowed by this endpoint`}, "result"},
		{"unknown chain", "/rpc/nochain", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`, 404, []string{`"error":{"code":-32600,"message":"unknown chain \"nochain\""`}, "result"},
		{"parse error", "", `{"jsonrpc":"2.0","id":1,"method":`, 200, []string{`"id":null,"error":{"code":-32700`}, "result"},
		{"empty batch", "", `[]`, 200, []string{`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid request: empty batch"}}`}, ""},
		{"batch over the limit", "", "[" + strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},`, 5) + `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}]`, 200, []string{`-32600`, `batch of 6 requests exceeds the limit of 5`}, "result"},
		{"body over the limit", "", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":["` + strings.Repeat("a", 5000) + `"]}`, 413, []string{`-32600`, `request body exceeds 4096 bytes`}, "result"},
		{"no jsonrpc version", "", `{"id":1,"method":"eth_chainId"}`, 200, []string{`"id":1,"error":{"code":-32600`}, "result"},
		{"params not an array", "", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":{"a":1}}`, 200, []string{`"id":1,"error":{"code":-32602`}, "result"},
		{"raw transaction not hex", "", `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["zz"]}`, 200, []string{`"id":1,"error":{"code":-32602`}, "result"},
		{"raw transaction not a transaction", "", `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x0102"]}`, 200, []string{`"id":1,"error":{"code":-32602`, "not a signed transaction"}, "result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tp.url
			if tt.path != "" {
				url = tp.srv.URL + tt.path
			}
			status, body := post(t, url, tt.body)
			if status != tt.status {
				t.Errorf("status: got %d, want %d (body %s)", status, tt.status, body)
			}
			if missing := containsInOrder(body, tt.want); missing != "" {
				t.Errorf("body %s\nlacks %s", body, missing)
			}
			if tt.absent != "" && strings.Contains(body, tt.absent) {
				t.Errorf("body %s\nholds %s", body, tt.absent)
			}
		})
	}
	for _, m := range []string{"eth_sendTransaction", "eth_sign", "personal_unlockAccount", "admin_peers", "debug_traceTransaction", "eth_newFilter", "foo_bar"} {
		for _, u := range ups {
			if n := u.Count(m); n != 0 {
				t.Errorf("%s reached an upstream %d times", m, n)
			}
		}
	}
	if got := testutilCount(tp, "other", "refused"); got != 7 {
		t.Errorf("refused requests metric: got %g, want 7", got)
	}
}

// TestProxyAuth shows the endpoint takes only the configured bearer
// tokens, and says so with a 401 and a JSON-RPC error.
func TestProxyAuth(t *testing.T) {
	c := startChain(t)
	good := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	tp := startProxy(t, startPool(t, testConfig(good.URL)), ProxyConfig{Tokens: [][32]byte{HashToken("other"), HashToken("s3cret")}})
	body := `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`
	tests := []struct {
		name, header string
		status       int
		want         string
	}{
		{"no token", "", 401, `"error":{"code":-32001,"message":"unauthorized`},
		{"wrong token", "Bearer s3cre", 401, `"error":{"code":-32001`},
		{"not bearer", "Basic s3cret", 401, `"error":{"code":-32001`},
		{"token", "Bearer s3cret", 200, `"result":"` + hexutil.EncodeUint64(sandbox.ChainID) + `"`},
		{"second token, lower case scheme", "bearer other", 200, `"result"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if tt.header != "" {
				h = []string{"Authorization", tt.header}
			}
			status, got := post(t, tp.url, body, h...)
			if status != tt.status || !strings.Contains(got, tt.want) {
				t.Errorf("got %d %s, want %d with %s", status, got, tt.status, tt.want)
			}
		})
	}
	// An unauthenticated caller learns nothing of the chains.
	if status, _ := post(t, tp.srv.URL+"/rpc/nochain", body); status != 401 {
		t.Errorf("unknown chain without a token: got %d, want 401", status)
	}
}

// TestProxyRevertPassesThrough shows a revert reaches the client as the
// node gave it: code, message and data.
func TestProxyRevertPassesThrough(t *testing.T) {
	c := startChain(t)
	good := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	tp := startProxy(t, startPool(t, testConfig(good.URL)), ProxyConfig{})
	poor := addr(mustKey(t))
	call := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"from":"%s","to":"%s","input":"%s"},"latest"]}`,
		poor, c.SUSD(), hexutil.Bytes(evm.ERC20TransferData(c.HotWallet(), bigOne)))
	_, direct := post(t, c.RPCURL(), call)
	status, got := post(t, tp.url, call)
	type reply struct {
		Error *rpcError `json:"error"`
	}
	var want, have reply
	if err := json.Unmarshal([]byte(direct), &want); err != nil || want.Error == nil {
		t.Fatalf("node's answer %s: %v", direct, err)
	}
	if err := json.Unmarshal([]byte(got), &have); err != nil || have.Error == nil || status != 200 {
		t.Fatalf("endpoint's answer %d %s: %v", status, got, err)
	}
	data, _ := want.Error.Data.(string)
	if !strings.HasPrefix(data, "0x") || len(data) < 10 || want.Error.Code != 3 {
		t.Fatalf("the node's revert carries no data: %s", direct)
	}
	if fmt.Sprint(*have.Error) != fmt.Sprint(*want.Error) {
		t.Errorf("revert: got %+v, want %+v", *have.Error, *want.Error)
	}
}

// rpcBody is a JSON-RPC request body.
func rpcBody(t testing.TB, id int, method string, params ...any) string {
	t.Helper()
	if params == nil {
		params = []any{}
	}
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestProxyTwoOfThreeFaulty shows a client of the endpoint sees no failed
// request while two of the three upstreams are faulty: reads, batches and
// a transaction that gets mined.
func TestProxyTwoOfThreeFaulty(t *testing.T) {
	c := startChain(t)
	tests := []struct{ a, b rpcfault.Fault }{
		{rpcfault.TooManyRequests, rpcfault.ServerError},
		{rpcfault.Malformed, rpcfault.Hang},
		{rpcfault.Refused, rpcfault.WrongChain},
		{rpcfault.Stale, rpcfault.NoBatch},
	}
	for _, tt := range tests {
		t.Run(string(tt.a)+"+"+string(tt.b), func(t *testing.T) {
			bad1 := rpcfault.New(t, c.RPCURL(), tt.a)
			bad2 := rpcfault.New(t, c.RPCURL(), tt.b)
			good := rpcfault.New(t, c.RPCURL(), rpcfault.None)
			tp := startProxy(t, startPool(t, testConfig(bad1.URL, bad2.URL, good.URL)), ProxyConfig{})
			cl, err := ethclient.Dial(tp.url)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx := context.Background()
			want, err := c.Client().BalanceAt(ctx, c.HotWallet(), nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 20 {
				got, err := cl.BalanceAt(ctx, c.HotWallet(), nil)
				if err != nil || got.Cmp(want) != 0 {
					t.Fatalf("read %d: got %v, %v; want %s", i, got, err, want)
				}
			}
			for i := range 5 {
				var head hexutil.Uint64
				var id hexutil.Big
				batch := []rpc.BatchElem{{Method: "eth_blockNumber", Result: &head}, {Method: "eth_chainId", Result: &id}}
				if err := cl.Client().BatchCallContext(ctx, batch); err != nil || batch[0].Error != nil || batch[1].Error != nil {
					t.Fatalf("batch %d: %v, %v, %v", i, err, batch[0].Error, batch[1].Error)
				}
				if head == 0 || id.ToInt().Uint64() != sandbox.ChainID {
					t.Fatalf("batch %d: head %d, chain id %s", i, head, id.ToInt())
				}
			}
			sendAndMine(t, c, cl)
		})
	}
}

// sendAndMine sends the hot wallet's next transfer through cl, mines it
// and reads its receipt through cl.
func sendAndMine(t *testing.T, c *testChain, cl *ethclient.Client) {
	t.Helper()
	ctx := context.Background()
	tx := c.nextTx(t)
	if err := cl.SendTransaction(ctx, tx); err != nil {
		t.Fatalf("send: %v", err)
	}
	if _, err := c.Commit(); err != nil {
		t.Fatal(err)
	}
	r, err := cl.TransactionReceipt(ctx, tx.Hash())
	if err != nil || r.Status != 1 {
		t.Fatalf("receipt of %s: %v, %v", tx.Hash().Hex(), r, err)
	}
}

// testutilCount is the endpoint's count of method requests ending outcome.
func testutilCount(tp *testProxy, method, outcome string) float64 {
	m := register(tp.reg, newProxyMetrics(nil).requests)
	return testutil.ToFloat64(m.WithLabelValues("sandbox", method, outcome))
}

// TestProxyUpstreamTrouble shows what a client sees when the upstreams
// cannot serve a request as asked: batches refused by every upstream are
// answered call by call; no upstream at all is a JSON-RPC error that
// names no upstream and leaks no provider key, in the body or the logs.
func TestProxyUpstreamTrouble(t *testing.T) {
	c := startChain(t)
	const key = "0123456789abcdef0123456789abcdef"
	noBatch1, noBatch2 := rpcfault.New(t, c.RPCURL(), rpcfault.NoBatch), rpcfault.New(t, c.RPCURL(), rpcfault.NoBatch)
	down := rpcfault.New(t, c.RPCURL(), rpcfault.ServerError)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	batch := `[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"net_version"},{"jsonrpc":"2.0","id":3,"method":"eth_blockNumber"}]`
	tests := []struct {
		name   string
		urls   []string
		body   string
		want   []string
		absent []string
	}{
		{"every upstream refuses batches", []string{noBatch1.URL, noBatch2.URL}, batch,
			[]string{`"id":1,"result":"` + hexutil.EncodeUint64(sandbox.ChainID) + `"`, `"id":2,"result":"` + fmt.Sprint(sandbox.ChainID) + `"`, `"id":3,"result":"0x`}, []string{"error"}},
		{"no upstream", []string{down.URL + "/v3/" + key}, `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}`,
			[]string{`"id":1,"error":{"code":-32603,"message":"upstream unavailable: no upstream could answer eth_blockNumber"}`}, []string{key, strings.TrimPrefix(down.URL, "http://")}},
		{"no upstream, batch", []string{down.URL + "/v3/" + key}, batch,
			[]string{`"id":1,"error":{"code":-32603`, `"id":2,"error":{"code":-32603`, `"id":3,"error":{"code":-32603`}, []string{key, "result"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(tt.urls...)
			cfg.Logger = log
			tp := startProxy(t, startPool(t, cfg), ProxyConfig{Logger: log})
			status, body := post(t, tp.url, tt.body)
			if status != 200 {
				t.Errorf("status: got %d, want 200", status)
			}
			if missing := containsInOrder(body, tt.want); missing != "" {
				t.Errorf("body %s\nlacks %s\nlogs (the pool's reasons):\n%s", body, missing, logs.String())
			}
			for _, a := range tt.absent {
				if strings.Contains(body, a) {
					t.Errorf("body %s\nholds %s", body, a)
				}
			}
		})
	}
	if strings.Contains(logs.String(), key) || !strings.Contains(logs.String(), "no upstream answered") {
		t.Errorf("logs hold the provider key, or not the failure:\n%s", logs.String())
	}
}

// TestProxyOnlyPost shows the endpoint answers POST only.
func TestProxyOnlyPost(t *testing.T) {
	c := startChain(t)
	good := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	tp := startProxy(t, startPool(t, testConfig(good.URL)), ProxyConfig{})
	resp, err := http.Get(tp.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: got %d, want 405", resp.StatusCode)
	}
}

// TestProxySendRawAnswers shows what eth_sendRawTransaction answers: the
// hash when accepted (again, even once mined), and the node's refusals
// as JSON-RPC errors an ethers or viem client recognises.
func TestProxySendRawAnswers(t *testing.T) {
	c := startChain(t)
	ups := []*rpcfault.Upstream{rpcfault.New(t, c.RPCURL(), rpcfault.None), rpcfault.New(t, c.RPCURL(), rpcfault.None)}
	tp := startProxy(t, startPool(t, testConfig(ups[0].URL, ups[1].URL)), ProxyConfig{})
	tx := c.nextTx(t)
	rival := signTxTo(t, c.key, tx.Nonce(), addr(mustKey(t)))
	send := func(b []byte) string { return rpcBody(t, 1, "eth_sendRawTransaction", hexutil.Bytes(b)) }
	tests := []struct {
		name   string
		body   string
		commit bool // mine after sending
		want   string
	}{
		{"accepted", send(raw(t, tx)), true, `"result":"` + tx.Hash().Hex() + `"`},
		{"mined already", send(raw(t, tx)), false, `"result":"` + tx.Hash().Hex() + `"`},
		{"nonce taken by another", send(raw(t, rival)), false, `"error":{"code":-32000,"message":"nonce too low`},
		{"insufficient funds", send(raw(t, signTx(t, mustKey(t), 0))), false, `"message":"insufficient funds`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, tp.url, tt.body)
			if status != 200 || !strings.Contains(body, tt.want) {
				t.Fatalf("got %d %s, want %s", status, body, tt.want)
			}
			if tt.commit {
				if _, err := c.Commit(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestProxyBatchElementRetried shows a batch element an upstream failed
// (a provider's per-call rate limit inside an answered batch) is sent again
// on its own, while the elements it answered keep their answers.
func TestProxyBatchElementRetried(t *testing.T) {
	c := startChain(t)
	good := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	var retried atomic.Int64
	limited := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		msgs, batch := rpcfault.ParseMessages(body)
		if !batch || !strings.Contains(string(body), "eth_getBalance") {
			if strings.Contains(string(body), "eth_getBalance") {
				retried.Add(1)
			}
			good.Forward(w, r, body)
			return
		}
		for _, m := range msgs {
			delete(m, "method")
			delete(m, "params")
			m["error"] = json.RawMessage(`{"code":-32005,"message":"rate limit exceeded: too many calls in batch"}`)
		}
		out, _ := json.Marshal(msgs)
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	}))
	t.Cleanup(limited.Close)
	tp := startProxy(t, startPool(t, testConfig(limited.URL)), ProxyConfig{})
	bal, err := c.Client().BalanceAt(context.Background(), c.HotWallet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	get := rpcBody(t, 1, "eth_getBalance", c.HotWallet(), "latest")
	status, body := post(t, tp.url, "["+get+","+strings.Replace(get, `"id":1`, `"id":2`, 1)+"]")
	want := []string{`"id":1,"result":"` + hexutil.EncodeBig(bal) + `"`, `"id":2,"result":"` + hexutil.EncodeBig(bal) + `"`}
	if missing := containsInOrder(body, want); status != 200 || missing != "" {
		t.Errorf("got %d %s, lacks %s", status, body, missing)
	}
	if got := retried.Load(); got != 2 {
		t.Errorf("single retries of the failed elements: got %d, want 2", got)
	}
}
