package evm

import (
	"context"
	"errors"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
)

// Gas hints make eth_estimateGas of a contract call cheaper for the node.
//
// Without a gas limit, geth's estimate runs the call at the block's gas
// limit, then at an optimistic limit, then binary-searches to within 1.5%:
// five executions for an ERC-20 transfer. Given as the call's gas the
// largest estimate seen for the same contract and function, a call that
// needs about as much is run once. The answer is still the node's own
// estimate, within the same 1.5% of what the call needs: a hint only
// bounds where the search starts, never what it returns on success.
//
// A hinted call that fails for any reason (too little gas, a revert,
// funds) is estimated again without the hint, and only that answer
// counts: a hint can never make a payout fail, nor make a revert look like
// running out of gas. Delegated calls (batches) get no hint: their gas
// grows with the chunk's size.
//
// Plain transfers (no data) are not estimated at all once the chain is
// known to charge exactly 21,000 gas for one (the node estimated a plain
// transfer at that): a transfer to an account without code costs that
// and nothing else on such a chain, so the node is asked for the
// recipient's code instead, in the same batch, which is a read where an
// estimate executes the transfer. A recipient with code (a contract, an
// EIP-7702 delegated account) is estimated again as before. Chains that
// add to a transfer's gas (an L2 charging its L1 data in gas) never
// estimate one at 21,000 and never take the shortcut. Addresses up to
// 0xffff are always estimated: precompiles have no code but run when paid.
type gasHints struct {
	mu  sync.Mutex
	max map[hintKey]uint64
	// transferGasKnown: a plain transfer was estimated at params.TxGas.
	transferGasKnown bool
}

// plainTransfer says whether c moves the native coin and runs no code
// when its recipient has none.
func plainTransfer(c Call) bool {
	return len(c.Data) == 0 && c.Delegate == nil && !maybePrecompile(c.To)
}

// maybePrecompile says whether a may be a precompiled contract (they
// live at the lowest addresses on every EVM chain; Osaka's P256VERIFY is
// at 0x100).
func maybePrecompile(a common.Address) bool {
	for _, b := range a[:18] {
		if b != 0 {
			return false
		}
	}
	return true
}

// transferGas says whether plain transfers are read as code instead of
// estimated.
func (h *gasHints) transferGas() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.transferGasKnown
}

// hintKey is a contract and the function a call runs on it.
type hintKey struct {
	to       common.Address
	selector [4]byte
}

// keyOf says whether c may be hinted, and under which key.
func keyOf(c Call) (hintKey, bool) {
	if len(c.Data) < 4 || c.Delegate != nil {
		return hintKey{}, false
	}
	k := hintKey{to: c.To}
	copy(k.selector[:], c.Data)
	return k, true
}

// hint returns the gas to give c's estimate (0: none).
func (h *gasHints) hint(c Call) uint64 {
	k, ok := keyOf(c)
	if !ok {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.max[k]
}

// learn records an estimate made without a hint.
func (h *gasHints) learn(c Call, gas uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if plainTransfer(c) && gas == params.TxGas {
		h.transferGasKnown = true
	}
	k, ok := keyOf(c)
	if !ok {
		return
	}
	if h.max == nil {
		h.max = map[hintKey]uint64{}
	}
	h.max[k] = max(h.max[k], gas)
}

// EstimateGas estimates every call against the latest block. A call that
// would revert gets its error (KindExecutionReverted) in errs. A plain
// transfer to an account without code may be answered from a read of its
// code (see gasHints): the sender's balance is then not checked, the
// caller checks its funds itself (as the sender does, with reservations).
func (c *Client) EstimateGas(ctx context.Context, calls []Call) (gas []uint64, errs []error, err error) {
	gas, errs, shortcut, err := c.estimate(ctx, calls, true)
	if err != nil {
		return nil, nil, err
	}
	var again []Call
	var at []int
	for i, call := range calls {
		switch {
		case shortcut[i] && errs[i] != nil:
			again, at = append(again, call), append(at, i)
		case !shortcut[i] && errs[i] == nil:
			c.hints.learn(call, gas[i])
		}
	}
	if len(again) == 0 {
		return gas, errs, nil
	}
	c.metrics.calls.WithLabelValues(c.chain, "eth_estimateGas", "hint_missed").Add(float64(len(again)))
	gas2, errs2, _, err := c.estimate(ctx, again, false)
	if err != nil {
		return nil, nil, err
	}
	for j, i := range at {
		gas[i], errs[i] = gas2[j], errs2[j]
		if errs2[j] == nil {
			c.hints.learn(again[j], gas2[j])
		}
	}
	return gas, errs, nil
}

// estimate sends one batch: each call's estimate, with its gas hint when
// shortcuts is set, or, for a plain transfer on a chain whose transfer gas
// is known (see gasHints), a read of its recipient's code. shortcut says
// which calls took one (a hint or a code read); their errors (errHasCode
// for a recipient with code) are not counted as the calls' outcomes:
// EstimateGas asks again without shortcuts.
func (c *Client) estimate(ctx context.Context, calls []Call, shortcuts bool) (gas []uint64, errs []error, shortcut []bool, err error) {
	elems := make([]rpc.BatchElem, len(calls))
	results := make([]hexutil.Uint64, len(calls))
	codes := make([]hexutil.Bytes, len(calls))
	shortcut = make([]bool, len(calls))
	readCode := shortcuts && c.hints.transferGas()
	for i, call := range calls {
		if readCode && plainTransfer(call) {
			elems[i], shortcut[i] = rpc.BatchElem{Method: "eth_getCode", Args: []any{call.To, "latest"}, Result: &codes[i]}, true
			continue
		}
		arg := callArg(call)
		if shortcuts {
			if h := c.hints.hint(call); h != 0 {
				arg["gas"], shortcut[i] = hexutil.Uint64(h), true
			}
		}
		args := []any{arg, "latest"}
		if call.Delegate != nil { // estimate as if the delegation were in place
			args = append(args, map[common.Address]any{call.From: map[string]any{"code": hexutil.Bytes(DelegationCode(*call.Delegate))}})
		}
		elems[i] = rpc.BatchElem{Method: "eth_estimateGas", Args: args, Result: &results[i]}
	}
	if err := c.batchCounting(ctx, "eth_estimateGas", elems, func(i int) bool { return !shortcut[i] }); err != nil {
		return nil, nil, nil, err
	}
	gas, errs = make([]uint64, len(calls)), make([]error, len(calls))
	for i, e := range elems {
		switch {
		case e.Method != "eth_getCode":
			gas[i], errs[i] = uint64(results[i]), e.Error
		case e.Error != nil:
			errs[i] = e.Error
		case len(codes[i]) > 0:
			errs[i] = errHasCode
		default:
			gas[i] = params.TxGas
		}
	}
	return gas, errs, shortcut, nil
}

// errHasCode: a plain transfer's recipient has code, which may run.
var errHasCode = errors.New("evm: the recipient has code; the transfer is estimated")
