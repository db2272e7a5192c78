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
		elems[i] = rpc.BatchElem{Method: "eth_call", Args: []any{balanceOfArg(token, a), "latest"}, Result: &outs[i]}
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

// SimulateSequence runs calls one after the other in one simulated block
// on the latest state (eth_simulateV1, without nonce or fee checks) and
// returns each call's gas used and, for a call that failed, an error
// whose RevertData is its revert data. err is set when the node cannot
// simulate at all (e.g. it lacks eth_simulateV1).
func (c *Client) SimulateSequence(ctx context.Context, calls []Call) (gas []uint64, errs []error, err error) {
	args := make([]map[string]any, len(calls))
	for i, call := range calls {
		args[i] = callArg(call)
	}
	var out []struct {
		Calls []struct {
			ReturnData hexutil.Bytes  `json:"returnData"`
			GasUsed    hexutil.Uint64 `json:"gasUsed"`
			Status     hexutil.Uint64 `json:"status"`
			Error      *struct {
				Message string `json:"message"`
			} `json:"error"`
		} `json:"calls"`
	}
	req := map[string]any{"blockStateCalls": []any{map[string]any{"calls": args}}}
	if err := c.call(ctx, &out, "eth_simulateV1", req, "latest"); err != nil {
		return nil, nil, err
	}
	if len(out) != 1 || len(out[0].Calls) != len(calls) {
		return nil, nil, fmt.Errorf("eth_simulateV1: %d results for %d calls", len(out), len(calls))
	}
	gas, errs = make([]uint64, len(calls)), make([]error, len(calls))
	for i, r := range out[0].Calls {
		gas[i] = uint64(r.GasUsed)
		if r.Status != 1 {
			msg := "execution reverted"
			if r.Error != nil && r.Error.Message != "" {
				msg = r.Error.Message
			}
			errs[i] = &simulatedRevert{msg: msg, data: r.ReturnData}
		}
	}
	return gas, errs, nil
}

// simulatedRevert is a call that reverted in a simulation; it carries its
// revert data as a JSON-RPC error would (rpc.DataError).
type simulatedRevert struct {
	msg  string
	data []byte
}

func (e *simulatedRevert) Error() string          { return e.msg }
func (e *simulatedRevert) ErrorCode() int         { return 3 }
func (e *simulatedRevert) ErrorData() interface{} { return hexutil.Encode(e.data) }

// ApproveData encodes approve(spender, amount) call data.
func ApproveData(spender common.Address, amount *big.Int) []byte {
	data := make([]byte, 4+32+32)
	copy(data, approveSelector)
	copy(data[4+12:4+32], spender.Bytes())
	amount.FillBytes(data[4+32:])
	return data
}

// approveSelector is the first four bytes of keccak256("approve(address,uint256)").
var approveSelector = []byte{0x09, 0x5e, 0xa7, 0xb3}
