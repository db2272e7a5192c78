package rpcpool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
)

// batchFallbackWorkers bounds the calls a batch runs at once when it falls
// back to single calls.
const batchFallbackWorkers = 8

// exchange is one HTTP request's JSON-RPC work on one chain.
type exchange struct {
	p     *proxy
	pool  *Pool
	chain string
	ctx   context.Context
}

// call is one JSON-RPC request of an exchange and its response.
type call struct {
	req     rpcRequest
	args    []any
	resp    rpcResponse
	outcome string // metrics label; empty until answered
	notify  bool   // a valid request without id: run, not answered
}

// handle answers a request body: the encoded response, or nil when there
// is nothing to answer (notifications only), and a label for the latency
// metric.
func (ex *exchange) handle(body []byte) ([]byte, string) {
	body = bytes.TrimSpace(body)
	if !json.Valid(body) {
		ex.p.met.requests.WithLabelValues(ex.chain, "", "parse_error").Inc()
		return encode(errorResponse(nullID, codeParseError, "parse error: the body is not valid JSON")), "parse_error"
	}
	if body[0] != '[' {
		c := newCall(body)
		ex.run(c)
		ex.count(c)
		if c.notify {
			return nil, c.label()
		}
		return encode(c.resp), c.label()
	}
	return ex.batch(body), "batch"
}

// batch answers a batch: the responses in request order, notifications
// left out.
func (ex *exchange) batch(body []byte) []byte {
	var raws []json.RawMessage
	json.Unmarshal(body, &raws) // valid JSON starting with '[': an array
	switch {
	case len(raws) == 0:
		ex.p.met.requests.WithLabelValues(ex.chain, "", "invalid").Inc()
		return encode(errorResponse(nullID, codeInvalidRequest, "invalid request: empty batch"))
	case len(raws) > ex.p.maxBatch:
		ex.p.met.requests.WithLabelValues(ex.chain, "", "too_large").Inc()
		msg := fmt.Sprintf("invalid request: batch of %d requests exceeds the limit of %d", len(raws), ex.p.maxBatch)
		return encode(errorResponse(nullID, codeInvalidRequest, msg))
	}
	calls := make([]*call, len(raws))
	for i, raw := range raws {
		calls[i] = newCall(raw)
	}
	ex.runBatch(calls)
	resps := make([]rpcResponse, 0, len(calls))
	for _, c := range calls {
		ex.count(c)
		if !c.notify {
			resps = append(resps, c.resp)
		}
	}
	if len(resps) == 0 {
		return nil
	}
	return encode(resps)
}

// newCall parses one request; an invalid one is answered at once.
func newCall(raw []byte) *call {
	c := &call{}
	if err := json.Unmarshal(raw, &c.req); err != nil {
		c.req = rpcRequest{}
		c.invalid(codeInvalidRequest, "invalid request: not a JSON-RPC request object")
		return c
	}
	c.resp = rpcResponse{JSONRPC: "2.0", ID: c.req.ID}
	if c.resp.ID == nil {
		c.resp.ID = nullID
	}
	defer func() { c.notify = c.req.ID == nil && c.outcome != "invalid" }()
	switch p := bytes.TrimSpace(c.req.Params); {
	case c.req.JSONRPC != "2.0":
		c.invalid(codeInvalidRequest, `invalid request: jsonrpc must be "2.0"`)
	case c.req.Method == "":
		c.invalid(codeInvalidRequest, "invalid request: method is missing")
	case len(p) == 0 || string(p) == "null":
	case p[0] != '[':
		c.invalid(codeInvalidParams, "invalid params: params must be an array")
	default:
		var params []json.RawMessage
		json.Unmarshal(p, &params)
		c.args = make([]any, len(params))
		for i, a := range params {
			c.args[i] = a
		}
	}
	return c
}

func (c *call) invalid(code int, msg string) {
	c.resp = errorResponse(c.resp.ID, code, msg)
	if c.resp.ID == nil {
		c.resp.ID = nullID
	}
	c.outcome = "invalid"
}

func (c *call) answer(result json.RawMessage) {
	if len(result) == 0 {
		result = nullID // JSON null
	}
	c.resp.Result, c.outcome = result, "ok"
}

// label is the call's method for metrics: a name from the allow-lists,
// never one a client made up.
func (c *call) label() string {
	if proxyReads[c.req.Method] || c.req.Method == methodSendRaw {
		return c.req.Method
	}
	return "other"
}

func (ex *exchange) count(c *call) {
	ex.p.met.requests.WithLabelValues(ex.chain, c.label(), c.outcome).Inc()
}

// run answers one request that is not yet answered.
func (ex *exchange) run(c *call) {
	switch {
	case c.outcome != "":
	case proxyReads[c.req.Method]:
		ex.read(c)
	case c.req.Method == methodSendRaw:
		ex.sendRaw(c)
	default:
		c.resp.Error, c.outcome = &rpcError{Code: codeMethodNotFound, Message: refusal(c.req.Method)}, "refused"
	}
}

// read forwards a read through Pool.Call.
func (ex *exchange) read(c *call) {
	var res json.RawMessage
	if err := ex.pool.Call(ex.ctx, &res, c.req.Method, c.args...); err != nil {
		ex.fail(c, err)
		return
	}
	c.answer(res)
}

// sendRaw broadcasts a signed transaction and answers its hash.
func (ex *exchange) sendRaw(c *call) {
	var raw hexutil.Bytes
	if len(c.args) != 1 || json.Unmarshal(c.args[0].(json.RawMessage), &raw) != nil {
		c.invalid(codeInvalidParams, "invalid params: eth_sendRawTransaction takes one hex-encoded signed transaction")
		return
	}
	if err := new(types.Transaction).UnmarshalBinary(raw); err != nil {
		c.invalid(codeInvalidParams, "invalid params: not a signed transaction: "+err.Error())
		return
	}
	hash, err := ex.pool.Broadcast(ex.ctx, raw)
	if err != nil {
		ex.fail(c, err)
		return
	}
	c.answer(encode(hash))
}

// fail answers c with err. A node's deterministic answer (a revert, nonce
// too low, ...) passes through as the node gave it, data included; a
// failure of every upstream is logged and answered without its cause.
func (ex *exchange) fail(c *call, err error) {
	var rerr rpc.Error
	var derr rpc.DataError
	out, _ := classify(err)
	switch {
	case out == outcomeAnswer && errors.As(err, &rerr):
		c.resp.Error, c.outcome = &rpcError{Code: rerr.ErrorCode(), Message: rerr.Error()}, "rpc_error"
		if errors.As(err, &derr) {
			c.resp.Error.Data = derr.ErrorData()
		}
	case errors.Is(err, ErrNonceTaken):
		c.resp.Error, c.outcome = &rpcError{Code: codeServer, Message: "nonce too low: " + ErrNonceTaken.Error()}, "rpc_error"
	case out == outcomeCanceled:
		c.resp.Error, c.outcome = &rpcError{Code: codeInternal, Message: "request canceled"}, "canceled"
	default:
		ex.p.log.Warn("no upstream answered", "chain", ex.chain, "method", c.label(), "err", err)
		msg := "upstream unavailable: no upstream could answer " + c.label()
		c.resp.Error, c.outcome = &rpcError{Code: codeInternal, Message: msg}, "unavailable"
	}
}

// runBatch answers a batch's calls: the transactions in order, one after
// the other, while the reads go to the pool as one batch.
func (ex *exchange) runBatch(calls []*call) {
	var reads []*call
	for _, c := range calls {
		if c.outcome == "" && proxyReads[c.req.Method] {
			reads = append(reads, c)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { ex.readBatch(reads) })
	for _, c := range calls {
		if !proxyReads[c.req.Method] {
			ex.run(c)
		}
	}
	wg.Wait()
}

// readBatch forwards reads through Pool.BatchCall. Reads the batch could
// not answer (no upstream took the batch, or one element failed rather
// than being answered) go again as single calls.
func (ex *exchange) readBatch(reads []*call) {
	if len(reads) < 2 {
		ex.runAll(reads)
		return
	}
	elems := make([]rpc.BatchElem, len(reads))
	for i, c := range reads {
		elems[i] = rpc.BatchElem{Method: c.req.Method, Args: c.args, Result: new(json.RawMessage)}
	}
	if err := ex.pool.BatchCall(ex.ctx, elems); err != nil {
		ex.p.log.Debug("batch failed, sending its calls one by one", "chain", ex.chain, "calls", len(reads), "err", err)
		ex.runAll(reads)
		return
	}
	var again []*call
	for i, c := range reads {
		switch out, _ := classify(elems[i].Error); out {
		case outcomeOK:
			c.answer(*elems[i].Result.(*json.RawMessage))
		case outcomeAnswer:
			ex.fail(c, elems[i].Error)
		default:
			again = append(again, c)
		}
	}
	ex.runAll(again)
}

// runAll runs calls as single calls, a few at once.
func (ex *exchange) runAll(calls []*call) {
	sem := make(chan struct{}, batchFallbackWorkers)
	var wg sync.WaitGroup
	for _, c := range calls {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ex.run(c)
		})
	}
	wg.Wait()
}

func encode(v any) []byte {
	out, err := json.Marshal(v)
	if err != nil {
		// Only values this file builds are encoded; upstream data decoded
		// from JSON encodes again.
		panic(fmt.Sprintf("rpcpool: encode response: %v", err))
	}
	return out
}
