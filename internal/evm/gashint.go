package evm

import (
	"context"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
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
// running out of gas. Plain transfers (no data) get no hint: geth answers
// them with one 21,000-gas execution already. Delegated calls (batches)
// get none either: their gas grows with the chunk's size.
type gasHints struct {
	mu  sync.Mutex
	max map[hintKey]uint64
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
	k, ok := keyOf(c)
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.max == nil {
		h.max = map[hintKey]uint64{}
	}
	h.max[k] = max(h.max[k], gas)
}

// EstimateGas estimates every call against the latest block. A call that
// would revert gets its error (KindExecutionReverted) in errs.
func (c *Client) EstimateGas(ctx context.Context, calls []Call) (gas []uint64, errs []error, err error) {
	gas, errs, hinted, err := c.estimate(ctx, calls, c.hints.hint)
	if err != nil {
		return nil, nil, err
	}
	var again []Call
	var at []int
	for i, call := range calls {
		switch {
		case hinted[i] && errs[i] != nil:
			again, at = append(again, call), append(at, i)
		case !hinted[i] && errs[i] == nil:
			c.hints.learn(call, gas[i])
		}
	}
	if len(again) == 0 {
		return gas, errs, nil
	}
	c.metrics.calls.WithLabelValues(c.chain, "eth_estimateGas", "hint_missed").Add(float64(len(again)))
	gas2, errs2, _, err := c.estimate(ctx, again, func(Call) uint64 { return 0 })
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

// estimate sends one batch of estimates, each with the gas hint gives it
// (0: none); hinted says which had one. Errors of hinted calls are not
// counted as the calls' outcomes: EstimateGas asks again without a hint.
func (c *Client) estimate(ctx context.Context, calls []Call, hint func(Call) uint64) (gas []uint64, errs []error, hinted []bool, err error) {
	elems := make([]rpc.BatchElem, len(calls))
	results := make([]hexutil.Uint64, len(calls))
	hinted = make([]bool, len(calls))
	for i, call := range calls {
		arg := callArg(call)
		if h := hint(call); h != 0 {
			arg["gas"], hinted[i] = hexutil.Uint64(h), true
		}
		args := []any{arg, "latest"}
		if call.Delegate != nil { // estimate as if the delegation were in place
			args = append(args, map[common.Address]any{call.From: map[string]any{"code": hexutil.Bytes(DelegationCode(*call.Delegate))}})
		}
		elems[i] = rpc.BatchElem{Method: "eth_estimateGas", Args: args, Result: &results[i]}
	}
	if err := c.batchCounting(ctx, "eth_estimateGas", elems, func(i int) bool { return !hinted[i] }); err != nil {
		return nil, nil, nil, err
	}
	gas, errs = make([]uint64, len(calls)), make([]error, len(calls))
	for i := range elems {
		gas[i], errs[i] = uint64(results[i]), elems[i].Error
	}
	return gas, errs, hinted, nil
}
