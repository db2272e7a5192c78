package rpcpool_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/sluicepay/sluice/internal/rpcpool"
)

// Example shows a pool of a primary and a fallback: the health check runs
// at Start, then calls go to the best usable upstream.
func Example() {
	pool, err := rpcpool.New(rpcpool.Config{
		Chain:   "sandbox",
		ChainID: 1337,
		Upstreams: []rpcpool.UpstreamConfig{
			{Name: "main", URL: "http://node-a.invalid/v3/0123456789abcdef0123456789abcdef"},
			{Name: "backup", URL: "http://node-b.invalid", Role: rpcpool.RoleFallback,
				Headers: map[string]string{"Authorization": "Bearer provider-key"}},
		},
		HTTPClient: &http.Client{Transport: fakeNode{}}, // a real deployment leaves this nil
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := pool.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer pool.Stop()

	var head hexutil.Uint64
	if err := pool.Call(context.Background(), &head, "eth_blockNumber"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("head:", uint64(head))
	for _, s := range pool.Status() {
		fmt.Println(s.Name, s.Role, s.URL, s.Healthy, s.Breaker)
	}
	// Output:
	// head: 16
	// main primary http://node-a.invalid/v3/redacted true closed
	// backup fallback http://node-b.invalid true closed
}

// fakeNode answers like a node of chain 1337 at block 16, in memory.
type fakeNode struct{}

func (fakeNode) RoundTrip(req *http.Request) (*http.Response, error) {
	var msgs []map[string]any
	body, _ := io.ReadAll(req.Body)
	batch := len(body) > 0 && body[0] == '['
	if !batch {
		body = append(append([]byte{'['}, body...), ']')
	}
	json.Unmarshal(body, &msgs)
	for _, m := range msgs {
		switch m["method"] {
		case "eth_chainId":
			m["result"] = "0x539"
		case "eth_syncing":
			m["result"] = false
		default:
			m["result"] = "0x10"
		}
		delete(m, "method")
		delete(m, "params")
	}
	var out []byte
	if batch {
		out, _ = json.Marshal(msgs)
	} else {
		out, _ = json.Marshal(msgs[0])
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(out)), Request: req}, nil
}
