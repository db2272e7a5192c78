package rpcpool_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sluicepay/sluice/internal/rpcpool"
)

// ExampleNewProxy serves a chain's pool as a JSON-RPC endpoint that
// wallets and tools can use as their node URL, behind a bearer token.
func ExampleNewProxy() {
	pool, err := rpcpool.New(rpcpool.Config{
		Chain: "sandbox", ChainID: 1337,
		Upstreams:  []rpcpool.UpstreamConfig{{URL: "http://node-a.invalid"}, {URL: "http://node-b.invalid"}},
		HTTPClient: &http.Client{Transport: fakeNode{}}, // a real deployment leaves this nil
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := pool.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer pool.Stop()
	endpoint := rpcpool.NewProxy(map[string]*rpcpool.Pool{"sandbox": pool}, rpcpool.ProxyConfig{
		Tokens: [][32]byte{rpcpool.HashToken("wallet-token")}, // keep only the hash in the config
	})
	srv := httptest.NewServer(endpoint)
	defer srv.Close()

	for _, body := range []string{
		`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"}]`,
		`{"jsonrpc":"2.0","id":3,"method":"eth_sendTransaction","params":[{}]}`,
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/rpc/sandbox", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer wallet-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(out))
	}
	// Output:
	// 200 [{"jsonrpc":"2.0","id":1,"result":"0x539"},{"jsonrpc":"2.0","id":2,"result":"0x10"}]
	// 200 {"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"method eth_sendTransaction is not allowed: it would use the node's own keys; sign locally and use eth_sendRawTransaction"}}
}
