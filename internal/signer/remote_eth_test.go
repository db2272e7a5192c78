package signer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/signer"
	"github.com/sluicepay/sluice/internal/signer/signertest"
)

func TestConformanceRemoteEthDialect(t *testing.T) {
	rs := startRemote(t, newKey(t), testLimits(), nil)
	signertest.Run(t, suiteOptions, func(t *testing.T) payout.Signer {
		r, err := signer.DialRemote(context.Background(), signer.RemoteConfig{URL: rs.URL, Token: testToken, TLS: tlsOf(rs), Dialect: "eth"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	})
	// The server's limits hold in this dialect too.
	r, err := signer.DialRemote(context.Background(), signer.RemoteConfig{URL: rs.URL, Token: testToken, TLS: tlsOf(rs), Dialect: "eth"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signWithSigner(r, nativeTx(900, payee, 1_000_001)); err == nil || !strings.Contains(err.Error(), "over the per-transaction cap") {
		t.Errorf("over the cap in the eth dialect: err = %v", err)
	}
}

// ethSignerStub answers eth_accounts and eth_signTransaction as
// Web3Signer does (the raw signed transaction as a string), signing with
// key what tamper makes of the transaction asked for, and with a high S
// (not every signer normalises it).
func ethSignerStub(t *testing.T, tamper func(*types.DynamicFeeTx)) *httptest.Server {
	key := newKey(t)
	addr := crypto.PubkeyToAddress(key.PublicKey)
	return httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     uint64            `json:"id"`
			Method string            `json:"method"`
			Params []json.RawMessage `json:"params"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		var result any
		switch req.Method {
		case "eth_accounts":
			result = []string{addr.Hex()}
		case "eth_signTransaction":
			var a struct {
				To                   string         `json:"to"`
				Gas                  hexutil.Uint64 `json:"gas"`
				MaxFeePerGas         *hexutil.Big   `json:"maxFeePerGas"`
				MaxPriorityFeePerGas *hexutil.Big   `json:"maxPriorityFeePerGas"`
				Value                *hexutil.Big   `json:"value"`
				Nonce                hexutil.Uint64 `json:"nonce"`
				ChainID              *hexutil.Big   `json:"chainId"`
			}
			json.Unmarshal(req.Params[0], &a)
			to := payee
			inner := &types.DynamicFeeTx{ChainID: a.ChainID.ToInt(), Nonce: uint64(a.Nonce), GasTipCap: a.MaxPriorityFeePerGas.ToInt(),
				GasFeeCap: a.MaxFeePerGas.ToInt(), Gas: uint64(a.Gas), To: &to, Value: a.Value.ToInt()}
			tamper(inner)
			tx := types.NewTx(inner)
			s := types.LatestSignerForChainID(a.ChainID.ToInt())
			h := s.Hash(tx)
			sig, _ := crypto.Sign(h[:], key)
			n := crypto.S256().Params().N
			new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:64])).FillBytes(sig[32:64])
			sig[64] ^= 1
			signed, _ := tx.WithSignature(s, sig)
			raw, _ := signed.MarshalBinary()
			result = hexutil.Encode(raw)
		}
		b, _ := json.Marshal(result)
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%d,"result":%s}`, req.ID, b)
	}))
}

func TestRemoteEthDialectChecksTheSignedTransaction(t *testing.T) {
	honest := ethSignerStub(t, func(*types.DynamicFeeTx) {})
	defer honest.Close()
	r, err := signer.DialRemote(context.Background(), signer.RemoteConfig{URL: honest.URL, Token: "x",
		TLS: honest.Client().Transport.(*http.Transport).TLSClientConfig, Dialect: "eth"})
	if err != nil {
		t.Fatal(err)
	}
	tx := nativeTx(7, payee, 5)
	sig, err := signWithSigner(r, tx)
	if err != nil {
		t.Fatal(err)
	}
	signertest.Check(t, r.Address(), chain, tx, sig) // a high S from the signer becomes low

	cheat := ethSignerStub(t, func(tx *types.DynamicFeeTx) { tx.Value = new(big.Int).Add(tx.Value, big.NewInt(1)) })
	defer cheat.Close()
	r, err = signer.DialRemote(context.Background(), signer.RemoteConfig{URL: cheat.URL, Token: "x",
		TLS: cheat.Client().Transport.(*http.Transport).TLSClientConfig, Dialect: "eth"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signWithSigner(r, tx); err == nil || !strings.Contains(err.Error(), "signed another transaction") {
		t.Errorf("a signer that signs something else: err = %v", err)
	}
}
