package rpcpool

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ProxyConfig configures the failover JSON-RPC endpoint. Zero sizes take
// the defaults named on each field.
type ProxyConfig struct {
	// Tokens are the SHA-256 hashes of the bearer tokens allowed to use the
	// endpoint (see HashToken). Empty means no authentication.
	Tokens [][sha256.Size]byte
	// MaxBodyBytes bounds a request's body; default 5 MiB.
	MaxBodyBytes int64
	// MaxBatch bounds the requests in one batch; default 1,000.
	MaxBatch int
	// Logger receives the endpoint's logs; default: discarded.
	Logger *slog.Logger
	// Registerer, if set, gets the endpoint's Prometheus metrics.
	Registerer prometheus.Registerer
}

// HashToken returns the SHA-256 hash of a bearer token, as ProxyConfig.Tokens
// holds it, so that the configuration never keeps the token itself.
func HashToken(token string) [sha256.Size]byte {
	return sha256.Sum256([]byte(token))
}

// JSON-RPC 2.0 error codes the endpoint answers with itself.
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
	codeInternal       = -32603
	codeServer         = -32000 // "nonce too low" and other transaction refusals
	codeUnauthorized   = -32001
)

// proxy is the handler NewProxy returns.
type proxy struct {
	pools    map[string]*Pool
	tokens   [][sha256.Size]byte
	maxBody  int64
	maxBatch int
	log      *slog.Logger
	met      *proxyMetrics
	mux      *http.ServeMux
}

// NewProxy returns the failover JSON-RPC 2.0 endpoint: POST /rpc/{chain}
// forwards single and batch requests through the chain's pool. Read
// methods go through Pool.Call, eth_sendRawTransaction through
// Pool.Broadcast; methods that would use a node's own keys, its admin
// interface or its per-node state (filters) are refused. The pools are
// the caller's to start and stop.
func NewProxy(pools map[string]*Pool, cfg ProxyConfig) http.Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 5 << 20
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &proxy{
		pools: pools, tokens: cfg.Tokens, maxBody: cfg.MaxBodyBytes, maxBatch: cfg.MaxBatch,
		log: cfg.Logger.With("component", "rpcproxy"), met: newProxyMetrics(cfg.Registerer),
		mux: http.NewServeMux(),
	}
	p.mux.HandleFunc("POST /rpc/{chain}", p.serveRPC)
	return p.mux
}

// rpcRequest is one JSON-RPC request as received. ID is nil when the
// member is absent (a notification) and "null" when it is null.
type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// rpcResponse is one JSON-RPC response.
type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

// rpcError is a JSON-RPC error object; Data is passed through as the
// upstream gave it (a revert's return data, for one).
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

var nullID = json.RawMessage("null")

func (p *proxy) serveRPC(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	chain := r.PathValue("chain")
	pool, ok := p.pools[chain]
	label := chain // a metrics label: only the names of configured chains
	if !ok {
		label = "unknown"
	}
	if !p.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
		p.refuse(w, label, http.StatusUnauthorized, codeUnauthorized, "unauthorized: a valid bearer token is required", "unauthorized")
		return
	}
	if !ok {
		p.refuse(w, label, http.StatusNotFound, codeInvalidRequest, fmt.Sprintf("unknown chain %q", chain), "unknown_chain")
		return
	}
	body, err := readBody(w, r, p.maxBody)
	if err != nil {
		status, outcome := http.StatusBadRequest, "bad_body"
		if errors.As(err, new(*http.MaxBytesError)) {
			status, outcome, err = http.StatusRequestEntityTooLarge, "too_large", fmt.Errorf("request body exceeds %d bytes", p.maxBody)
		}
		p.refuse(w, chain, status, codeInvalidRequest, err.Error(), outcome)
		return
	}
	ex := &exchange{p: p, pool: pool, chain: chain, ctx: r.Context()}
	out, label := ex.handle(body)
	p.met.latency.WithLabelValues(chain, label).Observe(time.Since(start).Seconds())
	if out == nil {
		w.WriteHeader(http.StatusNoContent) // notifications only: nothing to answer
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// authorized reports whether the request carries an allowed bearer token,
// or no token is configured. Every hash is compared, in constant time.
func (p *proxy) authorized(r *http.Request) bool {
	if len(p.tokens) == 0 {
		return true
	}
	auth := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return false
	}
	got := HashToken(strings.TrimSpace(auth[len(prefix):]))
	match := 0
	for _, want := range p.tokens {
		match |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	return match == 1
}

// readBody reads at most limit bytes of the request's body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return buf.Bytes(), nil
}

// refuse answers a request refused as a whole with status and a JSON-RPC
// error body.
func (p *proxy) refuse(w http.ResponseWriter, chain string, status, code int, msg, outcome string) {
	p.met.requests.WithLabelValues(chain, "", outcome).Inc()
	p.log.Debug("request refused", "chain", chain, "status", status, "reason", outcome)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	out, _ := json.Marshal(errorResponse(nullID, code, msg))
	w.Write(out)
}

func errorResponse(id json.RawMessage, code int, msg string) rpcResponse {
	return rpcResponse{JSONRPC: "2.0", ID: id, Error: &rpcError{Code: code, Message: msg}}
}

// proxyMetrics are the endpoint's collectors.
type proxyMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newProxyMetrics(reg prometheus.Registerer) *proxyMetrics {
	m := &proxyMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_rpcproxy_requests_total",
			Help: "JSON-RPC requests to the failover endpoint by chain, method and outcome (ok, rpc_error, unavailable, refused, invalid, ...).",
		}, []string{"chain", "method", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_rpcproxy_request_duration_seconds",
			Help:    "Time to answer an HTTP request to the failover endpoint; method is the single request's, or batch.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"chain", "method"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.latency = register(reg, m.latency)
	}
	return m
}
