package signer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/sluicepay/sluice/internal/payout"
)

// The remote signer protocol: JSON-RPC 2.0 over HTTPS, one request per
// POST to the server's URL, authenticated with "Authorization: Bearer
// TOKEN" (and a client certificate when the server asks for one).
//
//   - sluice_address() returns the address the server signs for.
//   - sluice_health() returns the same address once the server can sign.
//   - sluice_signTransaction({chain_id, tx, digest}) returns {signature}:
//     tx is the transaction's unsigned canonical encoding (hex), digest its
//     signing hash for chain_id. The server decodes tx, checks that digest
//     is its signing hash and that it passes the server's limits, then
//     signs: it never signs a digest it cannot see the transaction of.
//
// The server also speaks the eth dialect (eth_accounts,
// eth_signTransaction; remote_eth.go), which the client can use to reach
// Web3Signer or clef instead.
//
// Error codes: -32001 unauthenticated, -32002 refused by the server's
// limits (the message says which), -32602 invalid params.
const (
	rpcUnauthenticated = -32001
	rpcRefused         = -32002
	rpcInvalidParams   = -32602
	rpcMethodNotFound  = -32601
	rpcInternal        = -32603
)

type rpcRequest struct {
	JSONRPC string            `json:"jsonrpc"`
	ID      uint64            `json:"id"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
}

type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      uint64          `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *rpcError) Error() string {
	return fmt.Sprintf("remote signer: %s (code %d)", e.Message, e.Code)
}

// signTxParams are sluice_signTransaction's parameters.
type signTxParams struct {
	ChainID *hexutil.Big  `json:"chain_id"`
	Tx      hexutil.Bytes `json:"tx"`
	Digest  common.Hash   `json:"digest"`
	// Payout, when the engine told it, is what the transaction is for;
	// the server refuses a transaction that does not do exactly that.
	Payout *payout.SigningIntent `json:"payout,omitempty"`
}

type signTxResult struct {
	Signature hexutil.Bytes `json:"signature"`
}

// RemoteConfig says how to reach a remote signer.
type RemoteConfig struct {
	// URL is the server's https:// URL (http:// only for tests on loopback).
	URL string
	// Token authenticates the engine; never logged.
	Token string
	// CAFile verifies the server's certificate (default: the system roots).
	CAFile string
	// CertFile and KeyFile are the client certificate for mTLS (optional).
	CertFile, KeyFile string
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
	// TLS, when set, is used as it is (tests); it overrides the files.
	TLS *tls.Config
	// Dialect is "sluice" (sluice_signTransaction: the transaction and its
	// digest; the default) or "eth" (eth_signTransaction, as Web3Signer and
	// clef speak it).
	Dialect string
	// Account picks the signer's account in the eth dialect (default: its
	// only one).
	Account common.Address
	// Expect, when set, is the address the config says the signer holds.
	// If the server cannot be reached at dial time, DialRemote returns a
	// signer for Expect that is not yet verified: it asks the server's
	// address before it signs anything (and in Health), and while the
	// server is down it is unavailable, so an engine starts and its
	// payouts wait with signer_unavailable instead of the engine failing.
	Expect common.Address
}

// Remote signs through a remote signer server (`sluice signer serve`).
type Remote struct {
	url   string
	token string
	http  *http.Client
	addr  common.Address
	eth   bool
	id    atomic.Uint64

	account  common.Address // the eth dialect's account choice
	verified atomic.Bool    // the server said it holds addr
}

var (
	_ payout.Signer = (*Remote)(nil)
	_ TxSigner      = (*Remote)(nil)
	_ Checker       = (*Remote)(nil)
)

// DialRemote connects to a remote signer and asks which address it holds.
func DialRemote(ctx context.Context, cfg RemoteConfig) (*Remote, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	tlsCfg := cfg.TLS
	if tlsCfg == nil {
		var err error
		if tlsCfg, err = clientTLS(cfg); err != nil {
			return nil, err
		}
	}
	tr := &http.Transport{TLSClientConfig: tlsCfg, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second,
		ForceAttemptHTTP2: true}
	r := &Remote{url: cfg.URL, token: cfg.Token, http: &http.Client{Transport: tr, Timeout: cfg.Timeout}, account: cfg.Account}
	switch cfg.Dialect {
	case "", "sluice":
	case "eth":
		r.eth = true
	default:
		return nil, fmt.Errorf("remote signer: dialect %q is not sluice or eth", cfg.Dialect)
	}
	addr, err := r.serverAddress(ctx)
	switch {
	case err == nil:
		r.addr = addr
		r.verified.Store(true)
	case cfg.Expect != (common.Address{}) && errors.Is(err, payout.ErrSignerUnavailable) && !errors.Is(err, ErrRefused):
		r.addr = cfg.Expect // verified before the first signature
	default:
		return nil, fmt.Errorf("remote signer %s: %w", cfg.URL, err)
	}
	return r, nil
}

// serverAddress asks the server which address it signs for.
func (r *Remote) serverAddress(ctx context.Context) (common.Address, error) {
	if r.eth {
		return r.ethAddress(ctx, r.account)
	}
	var addr common.Address
	err := r.call(ctx, "sluice_address", nil, &addr)
	return addr, err
}

// verify makes sure, once, that the server holds the expected address of
// a signer dialed while it was down.
func (r *Remote) verify(ctx context.Context) error {
	if r.verified.Load() {
		return nil
	}
	addr, err := r.serverAddress(ctx)
	if err != nil {
		return err
	}
	if addr != r.addr {
		return unavailable("remote", fmt.Errorf("the server signs for %s, not for the configured %s", addr.Hex(), r.addr.Hex()))
	}
	r.verified.Store(true)
	return nil
}

func clientTLS(cfg RemoteConfig) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("remote signer CA: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("remote signer CA %s: no certificate found", cfg.CAFile)
		}
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("remote signer client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Address is the account the server signs for.
func (r *Remote) Address() common.Address { return r.addr }

// SignDigest refuses: the server must see the transaction.
func (r *Remote) SignDigest(context.Context, [32]byte) ([]byte, error) {
	return nil, ErrNeedsTransaction
}

// SignTransaction sends the transaction and its digest to the server.
func (r *Remote) SignTransaction(ctx context.Context, chainID *big.Int, unsigned []byte, digest [32]byte) ([]byte, error) {
	if err := r.verify(ctx); err != nil {
		return nil, err
	}
	if r.eth {
		return r.ethSign(ctx, chainID, unsigned, digest)
	}
	var res signTxResult
	params := signTxParams{ChainID: (*hexutil.Big)(chainID), Tx: unsigned, Digest: digest}
	if in, ok := payout.SigningIntentFrom(ctx); ok {
		params.Payout = &in
	}
	err := r.call(ctx, "sluice_signTransaction", params, &res)
	if err != nil {
		return nil, err
	}
	if len(res.Signature) != 65 || res.Signature[64] > 1 {
		return nil, unavailable("remote", errors.New("malformed signature"))
	}
	return res.Signature, nil
}

// Health asks the server whether it can sign, and for which address.
func (r *Remote) Health(ctx context.Context) error {
	if err := r.verify(ctx); err != nil {
		return err
	}
	if r.eth {
		_, err := r.ethAddress(ctx, r.addr)
		return err
	}
	var addr common.Address
	if err := r.call(ctx, "sluice_health", nil, &addr); err != nil {
		return err
	}
	if addr != r.addr {
		return unavailable("remote", fmt.Errorf("server now signs for %s, not %s", addr.Hex(), r.addr.Hex()))
	}
	return nil
}

// call makes one JSON-RPC call. Transport failures and server faults are
// payout.ErrSignerUnavailable; a refusal also wraps ErrRefused.
func (r *Remote) call(ctx context.Context, method string, param any, out any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := rpcRequest{JSONRPC: "2.0", ID: r.id.Add(1), Method: method, Params: []json.RawMessage{}}
	if param != nil {
		p, err := json.Marshal(param)
		if err != nil {
			return err
		}
		req.Params = []json.RawMessage{p}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+r.token)
	if !strings.HasSuffix(method, "_signTransaction") {
		// A read: net/http may send it again on a fresh connection when a
		// kept-alive one turns out closed (the server restarted). The nil
		// value marks it idempotent without sending the header.
		hr.Header["Idempotency-Key"] = nil
	}
	resp, err := r.http.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return unavailable("remote", err)
	}
	defer resp.Body.Close()
	blob, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return unavailable("remote", err)
	}
	var rr rpcResponse
	if err := json.Unmarshal(blob, &rr); err != nil {
		return unavailable("remote", fmt.Errorf("HTTP %d, not a JSON-RPC answer", resp.StatusCode))
	}
	if rr.Error != nil {
		if rr.Error.Code == rpcRefused {
			return unavailable("remote", fmt.Errorf("%w: %s", ErrRefused, rr.Error.Message))
		}
		return unavailable("remote", rr.Error)
	}
	if err := json.Unmarshal(rr.Result, out); err != nil {
		return unavailable("remote", fmt.Errorf("decode %s result: %w", method, err))
	}
	return nil
}
