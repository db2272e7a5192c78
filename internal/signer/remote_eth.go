package signer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// The eth dialect: eth_accounts and eth_signTransaction, as Web3Signer and
// clef speak them (and `sluice signer serve` too). The signer is sent the
// transaction's fields and answers the signed transaction; the client
// checks that it is the transaction it asked for before using the
// signature.

// ethTxArgs are eth_signTransaction's parameter (geth's TransactionArgs).
type ethTxArgs struct {
	From                 common.Address  `json:"from"`
	To                   *common.Address `json:"to"`
	Gas                  hexutil.Uint64  `json:"gas"`
	GasPrice             *hexutil.Big    `json:"gasPrice,omitempty"`
	MaxFeePerGas         *hexutil.Big    `json:"maxFeePerGas,omitempty"`
	MaxPriorityFeePerGas *hexutil.Big    `json:"maxPriorityFeePerGas,omitempty"`
	Value                *hexutil.Big    `json:"value"`
	Nonce                hexutil.Uint64  `json:"nonce"`
	Data                 hexutil.Bytes   `json:"data"`
	Input                hexutil.Bytes   `json:"input,omitempty"`
	ChainID              *hexutil.Big    `json:"chainId"`
}

func ethArgsOf(tx *types.Transaction, from common.Address, chainID *big.Int) ethTxArgs {
	a := ethTxArgs{From: from, To: tx.To(), Gas: hexutil.Uint64(tx.Gas()), Value: (*hexutil.Big)(tx.Value()),
		Nonce: hexutil.Uint64(tx.Nonce()), Data: tx.Data(), ChainID: (*hexutil.Big)(chainID)}
	if tx.Type() == types.LegacyTxType {
		a.GasPrice = (*hexutil.Big)(tx.GasPrice())
	} else {
		a.MaxFeePerGas, a.MaxPriorityFeePerGas = (*hexutil.Big)(tx.GasFeeCap()), (*hexutil.Big)(tx.GasTipCap())
	}
	return a
}

// tx builds the unsigned transaction the arguments describe: dynamic-fee
// when maxFeePerGas is set, else legacy (EIP-155).
func (a ethTxArgs) tx() (*types.Transaction, *big.Int, error) {
	if a.ChainID == nil {
		return nil, nil, errors.New("chainId is required")
	}
	if a.To == nil {
		return nil, nil, errors.New("contract creation is never signed")
	}
	data := a.Data
	if len(data) == 0 {
		data = a.Input
	}
	value := new(big.Int)
	if a.Value != nil {
		value = a.Value.ToInt()
	}
	chainID := a.ChainID.ToInt()
	switch {
	case a.MaxFeePerGas != nil && a.MaxPriorityFeePerGas != nil:
		return types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: uint64(a.Nonce), GasTipCap: a.MaxPriorityFeePerGas.ToInt(),
			GasFeeCap: a.MaxFeePerGas.ToInt(), Gas: uint64(a.Gas), To: a.To, Value: value, Data: data}), chainID, nil
	case a.GasPrice != nil:
		return types.NewTx(&types.LegacyTx{Nonce: uint64(a.Nonce), GasPrice: a.GasPrice.ToInt(), Gas: uint64(a.Gas), To: a.To,
			Value: value, Data: data}), chainID, nil
	default:
		return nil, nil, errors.New("gasPrice or maxFeePerGas and maxPriorityFeePerGas are required")
	}
}

// ethSignResult is geth's and clef's answer; Web3Signer answers the raw
// transaction as a bare string.
type ethSignResult struct {
	Raw hexutil.Bytes      `json:"raw"`
	Tx  *types.Transaction `json:"tx,omitempty"`
}

// ethAddress picks the account the signer signs for: want, or its only
// account when want is zero.
func (r *Remote) ethAddress(ctx context.Context, want common.Address) (common.Address, error) {
	var accounts []common.Address
	if err := r.call(ctx, "eth_accounts", nil, &accounts); err != nil {
		return common.Address{}, err
	}
	switch {
	case want != (common.Address{}) && slices.Contains(accounts, want):
		return want, nil
	case want != (common.Address{}):
		return common.Address{}, unavailable("remote", fmt.Errorf("the signer does not hold account %s", want.Hex()))
	case len(accounts) == 1:
		return accounts[0], nil
	default:
		return common.Address{}, fmt.Errorf("the signer holds %d accounts: name one (account)", len(accounts))
	}
}

// ethSign asks for eth_signTransaction and takes the signature out of the
// signed transaction, after checking that it signs exactly what was asked.
func (r *Remote) ethSign(ctx context.Context, chainID *big.Int, unsigned []byte, digest [32]byte) ([]byte, error) {
	var tx types.Transaction
	if err := tx.UnmarshalBinary(unsigned); err != nil {
		return nil, fmt.Errorf("decode transaction: %w", err)
	}
	var res json.RawMessage
	if err := r.call(ctx, "eth_signTransaction", ethArgsOf(&tx, r.addr, chainID), &res); err != nil {
		return nil, err
	}
	var raw hexutil.Bytes
	if err := json.Unmarshal(res, &raw); err != nil {
		var obj ethSignResult
		if err := json.Unmarshal(res, &obj); err != nil || len(obj.Raw) == 0 {
			return nil, unavailable("remote", errors.New("eth_signTransaction answered neither a raw transaction nor {raw}"))
		}
		raw = obj.Raw
	}
	var signed types.Transaction
	if err := signed.UnmarshalBinary(raw); err != nil {
		return nil, unavailable("remote", fmt.Errorf("signed transaction: %w", err))
	}
	signer := types.LatestSignerForChainID(chainID)
	if signer.Hash(&signed) != digest {
		return nil, unavailable("remote", errors.New("the signer signed another transaction than the one asked for"))
	}
	v, rr, s := signed.RawSignatureValues()
	recid := new(big.Int).Set(v)
	if signed.Type() == types.LegacyTxType && signed.Protected() {
		recid.Sub(recid, new(big.Int).Add(new(big.Int).Mul(chainID, big.NewInt(2)), big.NewInt(35)))
	} else if signed.Type() == types.LegacyTxType {
		recid.Sub(recid, big.NewInt(27))
	}
	if !recid.IsUint64() || recid.Uint64() > 1 || rr.BitLen() > 256 || s.BitLen() > 256 {
		return nil, unavailable("remote", errors.New("malformed signature values"))
	}
	sig := make([]byte, 65)
	rr.FillBytes(sig[:32])
	s.FillBytes(sig[32:64])
	sig[64] = byte(recid.Uint64())
	if s.Cmp(secpHalfN) > 0 { // some signers do not normalise: Ethereum wants low S
		new(big.Int).Sub(secpN, s).FillBytes(sig[32:64])
		sig[64] ^= 1
	}
	return sig, nil
}

// ethSignTx is the server's eth_signTransaction: it builds the transaction
// from the arguments and signs it as sluice_signTransaction would.
func (s *Server) ethSignTx(ctx context.Context, p json.RawMessage) (any, *rpcError) {
	var a ethTxArgs
	if err := json.Unmarshal(p, &a); err != nil {
		return nil, &rpcError{Code: rpcInvalidParams, Message: "params: want one transaction object"}
	}
	if a.From != s.signer.Address() {
		return nil, s.refuse(fmt.Sprintf("this signer holds %s, not %s", s.signer.Address().Hex(), a.From.Hex()))
	}
	tx, chainID, err := a.tx()
	if err != nil {
		return nil, &rpcError{Code: rpcInvalidParams, Message: err.Error()}
	}
	unsigned, err := tx.MarshalBinary()
	if err != nil {
		return nil, &rpcError{Code: rpcInvalidParams, Message: err.Error()}
	}
	signer := types.LatestSignerForChainID(chainID)
	sig, rerr := s.signTx(ctx, signTxParams{ChainID: (*hexutil.Big)(chainID), Tx: unsigned, Digest: signer.Hash(tx)})
	if rerr != nil {
		return nil, rerr
	}
	signed, err := tx.WithSignature(signer, sig)
	if err != nil {
		return nil, &rpcError{Code: rpcInternal, Message: "attach signature"}
	}
	raw, err := signed.MarshalBinary()
	if err != nil {
		return nil, &rpcError{Code: rpcInternal, Message: "encode signed transaction"}
	}
	return ethSignResult{Raw: raw, Tx: signed}, nil
}
