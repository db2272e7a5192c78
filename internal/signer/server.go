package signer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluicepay/sluice/internal/payout"
)

// Limits are a remote signer server's own rules, checked on every
// transaction it is asked to sign, whatever the engine says.
type Limits struct {
	// ChainIDs the server signs for (required).
	ChainIDs []uint64 `yaml:"chain_ids"`
	// Allow lists the destinations it pays (a zero-value cancel to the
	// wallet itself is always allowed).
	Allow []common.Address `yaml:"allow"`
	// Assets caps each asset: key "native" for the chain's coin, or the
	// token contract's address. An asset not listed is refused.
	Assets map[string]AssetLimit `yaml:"assets"`
	// MaxFeePerTx caps what one transaction may pay for gas (gas limit ×
	// max fee per gas, wei as a decimal string), cancels and fee bumps
	// included, so fees cannot drain the wallet either. Required.
	MaxFeePerTx string `yaml:"max_fee_per_tx"`
}

// AssetLimit caps one asset, in base units as decimal strings.
type AssetLimit struct {
	// PerTx is the largest amount of one transaction.
	PerTx string `yaml:"per_tx"`
	// Daily is the most signed per UTC day (replacements of a transaction
	// at the same nonce count once).
	Daily string `yaml:"daily"`
}

type assetCap struct{ perTx, daily *big.Int }

// transfer is what a transaction pays: asset ("native" or a token's
// address), destination and amount.
type transfer struct {
	asset  string
	to     common.Address
	amount *big.Int
}

func (t transfer) equal(o transfer) bool {
	return t.asset == o.asset && t.to == o.to && t.amount.Cmp(o.amount) == 0
}

type nonceKey struct {
	chainID uint64
	nonce   uint64
}

// ServerConfig configures a remote signer server.
type ServerConfig struct {
	// Signer holds the key (a keystore).
	Signer payout.Signer
	// Token is the bearer token the engine must send; never logged.
	Token  string
	Limits Limits
	Logger *slog.Logger
	// Now is the clock for daily caps (default time.Now).
	Now func() time.Time
	// StateFile, when set, keeps what the limits counted (each admitted
	// transfer, synced before its signature is given) across restarts;
	// empty: in memory only, and a restart resets the daily caps.
	StateFile string
}

// Server is the remote signer's HTTP handler (`sluice signer serve`).
type Server struct {
	signer    payout.Signer
	tokenHash [32]byte
	chains    map[uint64]bool
	allow     map[common.Address]bool
	caps      map[string]assetCap
	maxFee    *big.Int
	log       *slog.Logger
	now       func() time.Time

	mu     sync.Mutex
	day    string
	spent  map[string]*big.Int     // asset -> signed today
	signed map[nonceKey]transferAt // what each nonce was signed for
	state  *limitsState            // nil: counted in memory only
}

type transferAt struct {
	transfer
	at time.Time
}

// NewServer checks the configuration; errors name the field.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Signer == nil {
		return nil, errors.New("signer server: no signer")
	}
	if len(cfg.Token) < 16 {
		return nil, errors.New("signer server: token: must be at least 16 characters")
	}
	if len(cfg.Limits.ChainIDs) == 0 {
		return nil, errors.New("signer server: limits.chain_ids: required")
	}
	s := &Server{signer: cfg.Signer, tokenHash: sha256.Sum256([]byte(cfg.Token)), chains: map[uint64]bool{},
		allow: map[common.Address]bool{}, caps: map[string]assetCap{}, log: cfg.Logger, now: cfg.Now,
		spent: map[string]*big.Int{}, signed: map[nonceKey]transferAt{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "signer_server")
	if s.now == nil {
		s.now = time.Now
	}
	var ok bool
	if s.maxFee, ok = new(big.Int).SetString(cfg.Limits.MaxFeePerTx, 10); !ok || s.maxFee.Sign() <= 0 {
		return nil, errors.New("signer server: limits.max_fee_per_tx: required, a positive integer (wei)")
	}
	for _, id := range cfg.Limits.ChainIDs {
		s.chains[id] = true
	}
	for _, a := range cfg.Limits.Allow {
		s.allow[a] = true
	}
	for name, l := range cfg.Limits.Assets {
		key := "native"
		if name != "native" {
			if !common.IsHexAddress(name) {
				return nil, fmt.Errorf("signer server: limits.assets.%s: not \"native\" or a token address", name)
			}
			key = strings.ToLower(common.HexToAddress(name).Hex())
		}
		var c assetCap
		var ok bool
		if c.perTx, ok = new(big.Int).SetString(l.PerTx, 10); !ok || c.perTx.Sign() < 0 {
			return nil, fmt.Errorf("signer server: limits.assets.%s.per_tx: not a non-negative integer", name)
		}
		if c.daily, ok = new(big.Int).SetString(l.Daily, 10); !ok || c.daily.Sign() < 0 {
			return nil, fmt.Errorf("signer server: limits.assets.%s.daily: not a non-negative integer", name)
		}
		s.caps[key] = c
	}
	if cfg.StateFile != "" {
		if err := s.openLimitsState(cfg.StateFile, s.now()); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// ServeHTTP answers one JSON-RPC request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if !s.authenticated(r) {
		s.log.Warn("request refused: bad or missing token", "remote", r.RemoteAddr)
		writeRPC(w, http.StatusUnauthorized, rpcResponse{Error: &rpcError{Code: rpcUnauthenticated, Message: "unauthenticated"}})
		return
	}
	var req rpcRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		writeRPC(w, http.StatusBadRequest, rpcResponse{Error: &rpcError{Code: rpcInvalidParams, Message: "malformed request"}})
		return
	}
	resp := rpcResponse{ID: req.ID}
	result, rerr := s.handle(r.Context(), req)
	if rerr != nil {
		resp.Error = rerr
	} else {
		resp.Result, _ = json.Marshal(result)
	}
	writeRPC(w, http.StatusOK, resp)
}

func writeRPC(w http.ResponseWriter, status int, resp rpcResponse) {
	resp.JSONRPC = "2.0"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *Server) authenticated(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	h := sha256.Sum256([]byte(tok))
	return ok && subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) == 1
}

func (s *Server) handle(ctx context.Context, req rpcRequest) (any, *rpcError) {
	switch req.Method {
	case "sluice_address":
		return s.signer.Address(), nil
	case "sluice_health":
		if err := Health(ctx, s.signer); err != nil {
			return nil, &rpcError{Code: rpcInternal, Message: "signer not healthy"}
		}
		return s.signer.Address(), nil
	case "sluice_signTransaction":
		if len(req.Params) != 1 {
			return nil, &rpcError{Code: rpcInvalidParams, Message: "want one parameter"}
		}
		var p signTxParams
		if err := json.Unmarshal(req.Params[0], &p); err != nil || p.ChainID == nil {
			return nil, &rpcError{Code: rpcInvalidParams, Message: "params: want {chain_id, tx, digest}"}
		}
		sig, rerr := s.signTx(ctx, p)
		if rerr != nil {
			return nil, rerr
		}
		return signTxResult{Signature: sig}, nil
	case "eth_accounts":
		return []common.Address{s.signer.Address()}, nil
	case "eth_signTransaction":
		if len(req.Params) != 1 {
			return nil, &rpcError{Code: rpcInvalidParams, Message: "want one parameter"}
		}
		return s.ethSignTx(ctx, req.Params[0])
	default:
		return nil, &rpcError{Code: rpcMethodNotFound, Message: "method not found"}
	}
}

// signTx decodes the transaction, checks that the digest is its signing
// hash and that it passes the limits, then signs it.
func (s *Server) signTx(ctx context.Context, p signTxParams) ([]byte, *rpcError) {
	chainID := p.ChainID.ToInt()
	var tx types.Transaction
	if err := tx.UnmarshalBinary(p.Tx); err != nil {
		return nil, &rpcError{Code: rpcInvalidParams, Message: "tx: not a transaction: " + err.Error()}
	}
	if v, r, ss := tx.RawSignatureValues(); v.Sign() != 0 || r.Sign() != 0 || ss.Sign() != 0 {
		return nil, &rpcError{Code: rpcInvalidParams, Message: "tx: already signed"}
	}
	if tx.Type() != types.LegacyTxType && tx.ChainId().Cmp(chainID) != 0 {
		return nil, s.refuse(fmt.Sprintf("transaction is for chain %s, not %s", tx.ChainId(), chainID))
	}
	if got := types.LatestSignerForChainID(chainID).Hash(&tx); got != p.Digest {
		return nil, s.refuse("digest is not the signing hash of the transaction")
	}
	if err := checkIntent(&tx, p.Payout, s.signer.Address()); err != nil {
		return nil, s.refuse(strings.TrimPrefix(err.Error(), ErrRefused.Error()+": "))
	}
	if err := s.admit(chainID, &tx); errors.Is(err, ErrLimitsState) {
		s.log.Error("signing refused: the limits' state cannot be written", "err", err)
		return nil, &rpcError{Code: rpcInternal, Message: "the signer cannot record what it signs; it signs nothing until it can"}
	} else if err != nil {
		return nil, s.refuse(err.Error())
	}
	sig, err := s.signer.SignDigest(ctx, p.Digest)
	if err != nil {
		s.log.Error("signing failed", "err", err)
		return nil, &rpcError{Code: rpcInternal, Message: "signing failed"}
	}
	s.log.Info("signed", "chain_id", chainID, "nonce", tx.Nonce(), "tx_hash", tx.Hash().Hex())
	return sig, nil
}

func (s *Server) refuse(msg string) *rpcError {
	s.log.Warn("transaction refused", "reason", msg)
	return &rpcError{Code: rpcRefused, Message: msg}
}

// admit checks tx against the limits and, when it passes, counts it.
func (s *Server) admit(chainID *big.Int, tx *types.Transaction) error {
	if !chainID.IsUint64() || !s.chains[chainID.Uint64()] {
		return fmt.Errorf("chain %s is not one this signer signs for", chainID)
	}
	if fee := new(big.Int).Mul(tx.GasFeeCap(), new(big.Int).SetUint64(tx.Gas())); fee.Cmp(s.maxFee) > 0 {
		return fmt.Errorf("fee of up to %s wei (gas %d × %s) is over the per-transaction fee cap %s", fee, tx.Gas(), tx.GasFeeCap(), s.maxFee)
	}
	t, err := transferOf(tx)
	if err != nil {
		return err
	}
	self := s.signer.Address()
	cancel := t.asset == "native" && t.to == self && t.amount.Sign() == 0
	key := nonceKey{chainID.Uint64(), tx.Nonce()}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	if day := now.Format(time.DateOnly); day != s.day {
		s.day, s.spent = day, map[string]*big.Int{}
		for k, v := range s.signed { // keep two days of nonces for replacements
			if now.Sub(v.at) > keptFor {
				delete(s.signed, k)
			}
		}
		if s.state != nil {
			if err := s.state.rewrite(s.signed); err != nil {
				return err
			}
		}
	}
	prev, seen := s.signed[key]
	switch {
	case cancel:
		return nil // a zero-value self-transfer pays nobody: it only frees the nonce
	case seen && prev.equal(t):
		return nil // a fee replacement of what was signed: counted once
	case seen:
		return fmt.Errorf("nonce %d was already signed for another transfer (%s %s to %s)", tx.Nonce(), prev.amount, prev.asset, prev.to.Hex())
	}
	if !s.allow[t.to] {
		return fmt.Errorf("destination %s is not on the signer's allow-list", t.to.Hex())
	}
	c, ok := s.caps[t.asset]
	if !ok {
		return fmt.Errorf("asset %s has no limits on this signer", t.asset)
	}
	if t.amount.Cmp(c.perTx) > 0 {
		return fmt.Errorf("amount %s of %s is over the per-transaction cap %s", t.amount, t.asset, c.perTx)
	}
	spent := s.spent[t.asset]
	if spent == nil {
		spent = new(big.Int)
	}
	if total := new(big.Int).Add(spent, t.amount); total.Cmp(c.daily) > 0 {
		return fmt.Errorf("amount %s of %s would pass the daily cap %s (%s signed today)", t.amount, t.asset, c.daily, spent)
	}
	if s.state != nil {
		a := admitted{ChainID: key.chainID, Nonce: key.nonce, Asset: t.asset, To: t.to, Amount: t.amount.String(), At: now}
		if err := s.state.append(a); err != nil {
			return err
		}
	}
	s.spent[t.asset] = new(big.Int).Add(spent, t.amount)
	s.signed[key] = transferAt{t, now}
	return nil
}

// transferSelector is ERC-20 transfer(address,uint256).
var transferSelector = []byte{0xa9, 0x05, 0x9c, 0xbb}

// transferOf says what tx pays: a native transfer (no data) or an ERC-20
// transfer call with no value. Anything else is refused.
func transferOf(tx *types.Transaction) (transfer, error) {
	to := tx.To()
	if to == nil {
		return transfer{}, errors.New("contract creation is never signed")
	}
	data := tx.Data()
	switch {
	case len(data) == 0:
		return transfer{asset: "native", to: *to, amount: tx.Value()}, nil
	case len(data) == 68 && bytes.Equal(data[:4], transferSelector) && tx.Value().Sign() == 0:
		if !bytes.Equal(data[4:16], make([]byte, 12)) {
			return transfer{}, errors.New("malformed ERC-20 transfer")
		}
		return transfer{asset: strings.ToLower(to.Hex()), to: common.BytesToAddress(data[16:36]),
			amount: new(big.Int).SetBytes(data[36:68])}, nil
	default:
		return transfer{}, errors.New("only native transfers and ERC-20 transfer calls are signed")
	}
}
