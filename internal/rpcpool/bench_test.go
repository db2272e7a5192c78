package rpcpool

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/sluicepay/sluice/internal/rpcpool/rpcfault"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// memTransport is an upstream in memory: it answers JSON-RPC without a
// socket, so a benchmark measures the pool and the RPC client only.
type memTransport struct{}

// RoundTrip implements http.RoundTripper.
func (memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	msgs, batch := rpcfault.ParseMessages(body)
	for _, m := range msgs {
		var method string
		json.Unmarshal(m["method"], &method)
		delete(m, "method")
		delete(m, "params")
		switch method {
		case "eth_chainId":
			m["result"] = json.RawMessage(`"` + hexutil.EncodeUint64(sandbox.ChainID) + `"`)
		case "eth_syncing":
			m["result"] = json.RawMessage(`false`)
		default:
			m["result"] = json.RawMessage(`"0x10"`)
		}
	}
	var out []byte
	if batch {
		out, _ = json.Marshal(msgs)
	} else {
		out, _ = json.Marshal(msgs[0])
	}
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(out)),
		ContentLength: int64(len(out)), Request: req,
	}, nil
}

// BenchmarkPoolCall measures what the pool adds per call: "direct" is the
// RPC client alone on the in-memory upstream, "pool" the same call through
// a pool of three such upstreams; the difference is the pool's overhead.
func BenchmarkPoolCall(b *testing.B) {
	hc := &http.Client{Transport: memTransport{}}
	b.Run("direct", func(b *testing.B) {
		c, err := rpc.DialOptions(context.Background(), "http://mem.invalid", rpc.WithHTTPClient(hc))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		benchCalls(b, func(ctx context.Context, res *hexutil.Uint64) error {
			return c.CallContext(ctx, res, "eth_blockNumber")
		})
	})
	b.Run("pool", func(b *testing.B) {
		cfg := testConfig("http://mem-a.invalid", "http://mem-b.invalid", "http://mem-c.invalid")
		cfg.HTTPClient = hc
		p := startPool(b, cfg)
		benchCalls(b, func(ctx context.Context, res *hexutil.Uint64) error {
			return p.Call(ctx, res, "eth_blockNumber")
		})
	})
}

func benchCalls(b *testing.B, call func(context.Context, *hexutil.Uint64) error) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		var res hexutil.Uint64
		for pb.Next() {
			if err := call(ctx, &res); err != nil || res != 0x10 {
				b.Errorf("call: %d, %v", res, err)
				return
			}
		}
	})
}
