package evm

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"
)

// maxBatch is the most calls sent in one JSON-RPC batch; providers often
// refuse larger ones (geth's default limit is 1,000).
const maxBatch = 200

// Metrics counts JSON-RPC calls by method and outcome.
type Metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the client's metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_rpc_calls_total", Help: "JSON-RPC calls by chain, method and outcome (ok or an error kind).",
		}, []string{"chain", "method", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_rpc_duration_seconds", Help: "JSON-RPC request latency by chain and method (a batch counts once).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"chain", "method"}),
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.duration)
	}
	return m
}

// Caller sends JSON-RPC calls: one node (*rpc.Client) or a pool of them
// with failover (*rpcpool.Pool).
type Caller interface {
	CallContext(ctx context.Context, result any, method string, args ...any) error
	BatchCallContext(ctx context.Context, elems []rpc.BatchElem) error
}

// Client talks JSON-RPC to one chain, batching where a payout engine makes
// many alike calls (estimates, broadcasts, receipts).
type Client struct {
	rpc     Caller
	closer  func()
	chain   string
	metrics *Metrics
	blocks  blockCache
	hints   gasHints
	// noHeaderMethod: the node answered eth_getHeaderByNumber with
	// "method not found"; BlockHash reads blocks instead.
	noHeaderMethod atomic.Bool
}

// Dial connects to a single upstream. chain names it in metrics.
func Dial(ctx context.Context, url, chain string, m *Metrics) (*Client, error) {
	c, err := rpc.DialContext(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("dial %s upstream: %w", chain, err)
	}
	client := NewClient(c, chain, m)
	client.closer = c.Close
	return client, nil
}

// NewClient talks through caller (for instance a pool of upstreams, which
// its owner closes). chain names it in metrics.
func NewClient(caller Caller, chain string, m *Metrics) *Client {
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Client{rpc: caller, chain: chain, metrics: m}
}

// Close closes the connection Dial opened.
func (c *Client) Close() {
	if c.closer != nil {
		c.closer()
	}
}

func (c *Client) observe(method string, start time.Time, n int, err error) {
	c.metrics.duration.WithLabelValues(c.chain, method).Observe(time.Since(start).Seconds())
	c.metrics.calls.WithLabelValues(c.chain, method, outcome(err)).Add(float64(n))
}

// outcome is a call's outcome label: ok, or its error's kind.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	kind, _ := Classify(err)
	return string(kind)
}

func (c *Client) call(ctx context.Context, result any, method string, args ...any) error {
	start := time.Now()
	err := c.rpc.CallContext(ctx, result, method, args...)
	c.observe(method, start, 1, err)
	return err
}

// batch sends calls in chunks of maxBatch. A transport failure of a chunk
// is returned as the error; per-call errors stay in each element.
func (c *Client) batch(ctx context.Context, method string, elems []rpc.BatchElem) error {
	return c.batchCounting(ctx, method, elems, nil)
}

// batchCounting is batch, counting the error of element i as that call's
// outcome only where counts(i) says so (nil: every element). Each call
// counts under its own method, the batch's duration under method.
func (c *Client) batchCounting(ctx context.Context, method string, elems []rpc.BatchElem, counts func(i int) bool) error {
	for i := 0; i < len(elems); i += maxBatch {
		chunk := elems[i:min(i+maxBatch, len(elems))]
		start := time.Now()
		err := c.rpc.BatchCallContext(ctx, chunk)
		c.metrics.duration.WithLabelValues(c.chain, method).Observe(time.Since(start).Seconds())
		for j, e := range chunk { // a batch may mix methods: each call counts under its own
			c.metrics.calls.WithLabelValues(c.chain, e.Method, outcome(err)).Inc()
			if err == nil && e.Error != nil && (counts == nil || counts(i+j)) {
				c.metrics.calls.WithLabelValues(c.chain, e.Method, outcome(e.Error)).Inc()
			}
		}
		if err != nil {
			return fmt.Errorf("%s batch: %w", method, err)
		}
	}
	return nil
}

// ChainID asks the node which chain it is on.
func (c *Client) ChainID(ctx context.Context) (uint64, error) {
	var id hexutil.Big
	if err := c.call(ctx, &id, "eth_chainId"); err != nil {
		return 0, err
	}
	return id.ToInt().Uint64(), nil
}

// Header returns the header at number, or the latest when number is nil.
func (c *Client) Header(ctx context.Context, number *uint64) (*types.Header, error) {
	tag := "latest"
	if number != nil {
		tag = hexutil.EncodeUint64(*number)
	}
	var h *types.Header
	if err := c.call(ctx, &h, "eth_getBlockByNumber", tag, false); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("block %s: %w", tag, ErrNotFound)
	}
	return h, nil
}

// BlockNumber returns the node's latest block number (eth_blockNumber):
// what a sender polls for, without the latest block's list of transaction
// hashes that eth_getBlockByNumber would send (68 bytes per transaction).
func (c *Client) BlockNumber(ctx context.Context) (uint64, error) {
	var n hexutil.Uint64
	err := c.call(ctx, &n, "eth_blockNumber")
	return uint64(n), err
}

// BlockHash returns the hash the node gives block number. Compare it, not
// a decoded header's Hash(), with receipts' block hashes: on chains whose
// headers carry fields go-ethereum does not model, Hash() of the decoded
// header is not the chain's hash.
//
// It asks for the header alone (eth_getHeaderByNumber: geth, Erigon,
// Reth), not the block with its transaction hashes; a node without that
// method answers "method not found" once and is asked for the block from
// then on.
func (c *Client) BlockHash(ctx context.Context, number uint64) (common.Hash, error) {
	tag := hexutil.EncodeUint64(number)
	var b *struct {
		Hash common.Hash `json:"hash"`
	}
	var err error
	if !c.noHeaderMethod.Load() {
		err = c.call(ctx, &b, "eth_getHeaderByNumber", tag)
		if methodNotFound(err) {
			c.noHeaderMethod.Store(true)
		}
	}
	if c.noHeaderMethod.Load() {
		err = c.call(ctx, &b, "eth_getBlockByNumber", tag, false)
	}
	if err != nil {
		return common.Hash{}, err
	}
	if b == nil {
		return common.Hash{}, fmt.Errorf("block %s: %w", tag, ErrNotFound)
	}
	return b.Hash, nil
}

// methodNotFound reports a JSON-RPC "method not found" (-32601) answer.
func methodNotFound(err error) bool {
	var re rpc.Error
	return errors.As(err, &re) && re.ErrorCode() == -32601
}

// ErrNotFound means the node does not know the block or transaction.
var ErrNotFound = errors.New("not found")

// Nonce returns the account's nonce at "latest" or "pending".
func (c *Client) Nonce(ctx context.Context, account common.Address, tag string) (uint64, error) {
	var n hexutil.Uint64
	err := c.call(ctx, &n, "eth_getTransactionCount", account, tag)
	return uint64(n), err
}

// Balance returns the account's native balance at the latest block.
func (c *Client) Balance(ctx context.Context, account common.Address) (*big.Int, error) {
	var b hexutil.Big
	err := c.call(ctx, &b, "eth_getBalance", account, "latest")
	return b.ToInt(), err
}

// SuggestTip asks the node for a priority fee (eth_maxPriorityFeePerGas).
func (c *Client) SuggestTip(ctx context.Context) (*big.Int, error) {
	var t hexutil.Big
	err := c.call(ctx, &t, "eth_maxPriorityFeePerGas")
	return t.ToInt(), err
}

func callArg(call Call) map[string]any {
	arg := map[string]any{"from": call.From, "to": call.To, "value": (*hexutil.Big)(call.Value)}
	if len(call.Data) > 0 {
		arg["input"] = hexutil.Bytes(call.Data)
	}
	return arg
}

// BatchBroadcaster sends signed transactions to several nodes at once (the
// upstream pool does).
type BatchBroadcaster interface {
	BroadcastBatch(ctx context.Context, raws [][]byte) ([]error, error)
}

// SendRaw broadcasts signed transactions; errs holds each one's outcome.
// Through a pool every usable upstream gets them; through one node, that
// node does.
func (c *Client) SendRaw(ctx context.Context, raws [][]byte) (errs []error, err error) {
	if b, ok := c.rpc.(BatchBroadcaster); ok {
		return c.broadcastBatch(ctx, b, raws)
	}
	elems := make([]rpc.BatchElem, len(raws))
	for i, raw := range raws {
		elems[i] = rpc.BatchElem{Method: "eth_sendRawTransaction", Args: []any{hexutil.Bytes(raw)}, Result: new(common.Hash)}
	}
	if err := c.batch(ctx, "eth_sendRawTransaction", elems); err != nil {
		return nil, err
	}
	errs = make([]error, len(raws))
	for i := range elems {
		errs[i] = elems[i].Error
	}
	return errs, nil
}

func (c *Client) broadcastBatch(ctx context.Context, b BatchBroadcaster, raws [][]byte) ([]error, error) {
	errs := make([]error, 0, len(raws))
	for i := 0; i < len(raws); i += maxBatch {
		chunk := raws[i:min(i+maxBatch, len(raws))]
		start := time.Now()
		got, err := b.BroadcastBatch(ctx, chunk)
		c.observe("eth_sendRawTransaction", start, len(chunk), err)
		if err != nil {
			return nil, fmt.Errorf("broadcast: %w", err)
		}
		errs = append(errs, got...)
	}
	return errs, nil
}

// Receipts looks receipts up by transaction hash; a transaction not mined
// (or unknown) has a nil receipt.
func (c *Client) Receipts(ctx context.Context, hashes []common.Hash) ([]*Receipt, error) {
	elems := make([]rpc.BatchElem, len(hashes))
	lean := make([]*leanReceipt, len(hashes))
	for i, h := range hashes {
		elems[i] = rpc.BatchElem{Method: "eth_getTransactionReceipt", Args: []any{h}, Result: &lean[i]}
	}
	if err := c.batch(ctx, "eth_getTransactionReceipt", elems); err != nil {
		return nil, err
	}
	out := make([]*Receipt, len(hashes))
	for i := range elems {
		if elems[i].Error != nil {
			return nil, fmt.Errorf("receipt %s: %w", hashes[i].Hex(), elems[i].Error)
		}
		out[i] = lean[i].receipt()
	}
	return out, nil
}
