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
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicepay/sluice/internal/sandbox"
)

// memTransport is an upstream in memory: it answers JSON-RPC without a
// socket, so a benchmark measures the pool and the RPC client only.
type memTransport struct{}

// RoundTrip implements http.RoundTripper.
func (memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	msgs, batch := parseMsgs(body)
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
