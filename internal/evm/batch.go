package evm

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/holiman/uint256"
)

// What the batch planner reads from the chain, in JSON-RPC batches.

// transferTopic is keccak256("Transfer(address,address,uint256)").
var transferTopic = crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)"))

// delegationPrefix starts an EIP-7702 delegated account's code.
var delegationPrefix = []byte{0xef, 0x01, 0x00}

// DelegationCode is the code an account delegated to target has.
func DelegationCode(target common.Address) []byte {
	return append(append([]byte{}, delegationPrefix...), target.Bytes()...)
}

// Code returns the account's code at the latest block.
func (c *Client) Code(ctx context.Context, account common.Address) ([]byte, error) {
	var code hexutil.Bytes
	err := c.call(ctx, &code, "eth_getCode", account, "latest")
	return code, err
}

// EmptyAccounts says which accounts are empty (EIP-161: no balance, no
// nonce; an account with code has a nonce): sending them the native coin
// creates them, which costs 25,000 gas more.
func (c *Client) EmptyAccounts(ctx context.Context, accounts []common.Address) ([]bool, error) {
	elems := make([]rpc.BatchElem, 0, 2*len(accounts))
	bal, nonce := make([]hexutil.Big, len(accounts)), make([]hexutil.Uint64, len(accounts))
	for i, a := range accounts {
		elems = append(elems,
			rpc.BatchElem{Method: "eth_getBalance", Args: []any{a, "latest"}, Result: &bal[i]},
			rpc.BatchElem{Method: "eth_getTransactionCount", Args: []any{a, "latest"}, Result: &nonce[i]})
	}
	if err := c.batch(ctx, "eth_getBalance", elems); err != nil {
		return nil, err
	}
	out := make([]bool, len(accounts))
	for i := range accounts {
		if err := errors.Join(elems[2*i].Error, elems[2*i+1].Error); err != nil {
			return nil, fmt.Errorf("account %s: %w", accounts[i].Hex(), err)
		}
		out[i] = bal[i].ToInt().Sign() == 0 && nonce[i] == 0
	}
	return out, nil
}

// TokenHolders says which accounts hold a balance of token: paying one
// that holds none writes a new storage slot (about 17,100 gas more).
func (c *Client) TokenHolders(ctx context.Context, token common.Address, accounts []common.Address) ([]bool, error) {
	elems := make([]rpc.BatchElem, len(accounts))
	outs := make([]hexutil.Bytes, len(accounts))
	for i, a := range accounts {
		data := make([]byte, 4+32)
		copy(data, balanceOfSelector)
		copy(data[4+12:], a.Bytes())
		elems[i] = rpc.BatchElem{Method: "eth_call", Args: []any{map[string]any{"to": token, "input": hexutil.Bytes(data)}, "latest"}, Result: &outs[i]}
	}
	if err := c.batch(ctx, "eth_call", elems); err != nil {
		return nil, err
	}
	held := make([]bool, len(accounts))
	for i := range accounts {
		if elems[i].Error != nil {
			return nil, fmt.Errorf("balanceOf(%s): %w", accounts[i].Hex(), elems[i].Error)
		}
		held[i] = new(big.Int).SetBytes(outs[i]).Sign() > 0
	}
	return held, nil
}

// TransferLogs returns the block-level log indexes of the token Transfer
// events that a mined transaction emitted from from, in order.
func (c *Client) TransferLogs(ctx context.Context, tx common.Hash, token, from common.Address) ([]uint, error) {
	var r *types.Receipt
	if err := c.call(ctx, &r, "eth_getTransactionReceipt", tx); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("receipt %s: %w", tx.Hex(), ErrNotFound)
	}
	var out []uint
	for _, l := range r.Logs {
		if l.Address == token && len(l.Topics) == 3 && l.Topics[0] == transferTopic &&
			common.BytesToAddress(l.Topics[1].Bytes()) == from {
			out = append(out, l.Index)
		}
	}
	return out, nil
}

// RevertData returns the data a reverted call's error carries (a custom
// error's selector and arguments), or nil.
func RevertData(err error) []byte {
	var de rpc.DataError
	if !errors.As(err, &de) {
		return nil
	}
	s, ok := de.ErrorData().(string)
	if !ok {
		return nil
	}
	b, err := hexutil.Decode(s)
	if err != nil {
		return nil
	}
	return b
}

// signAuthorization signs the EIP-7702 authorization that delegates the
// signer's account to target, valid at nonce (the account's nonce when the
// authorization is applied: for a transaction the account sends itself,
// its own nonce + 1).
func signAuthorization(ctx context.Context, s DigestSigner, chainID *big.Int, target common.Address, nonce uint64) (types.SetCodeAuthorization, error) {
	auth := types.SetCodeAuthorization{ChainID: *uint256.MustFromBig(chainID), Address: target, Nonce: nonce}
	sig, err := s.SignDigest(ctx, auth.SigHash())
	if err != nil {
		return auth, fmt.Errorf("sign delegation: %w", err)
	}
	if len(sig) != 65 {
		return auth, fmt.Errorf("sign delegation: signature of %d bytes, want 65", len(sig))
	}
	auth.R.SetBytes(sig[:32])
	auth.S.SetBytes(sig[32:64])
	auth.V = sig[64]
	return auth, nil
}
