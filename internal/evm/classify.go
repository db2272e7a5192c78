package evm

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
)

// ErrorKind is what a node error means for the sender.
type ErrorKind string

// The kinds of node errors. Deterministic kinds are answers about the
// transaction; the others are about the node or the network.
const (
	KindNone                   ErrorKind = ""
	KindNonceTooLow            ErrorKind = "nonce_too_low"
	KindAlreadyKnown           ErrorKind = "already_known"
	KindReplacementUnderpriced ErrorKind = "replacement_underpriced"
	KindUnderpriced            ErrorKind = "underpriced"
	KindNonceTooHigh           ErrorKind = "nonce_too_high"
	KindInsufficientFunds      ErrorKind = "insufficient_funds"
	KindIntrinsicGas           ErrorKind = "intrinsic_gas_too_low"
	KindFeeCapTooLow           ErrorKind = "fee_cap_too_low"
	KindExecutionReverted      ErrorKind = "execution_reverted"
	KindGasLimit               ErrorKind = "exceeds_gas_limit"
	KindFeeTooHigh             ErrorKind = "fee_exceeds_node_cap" // the node's own cap on a transaction's fee (geth --rpc.txfeecap)
	KindPoolFull               ErrorKind = "txpool_full"
	KindInvalidTx              ErrorKind = "invalid_transaction"
	KindNodeBehind             ErrorKind = "node_behind"
	KindRateLimited            ErrorKind = "rate_limited"
	KindTimeout                ErrorKind = "timeout"
	KindConnectionRefused      ErrorKind = "connection_refused"
	KindTransport              ErrorKind = "transport"
	KindUnknown                ErrorKind = "unknown"
)

// rule matches a lower-cased node message. Order matters: more specific
// phrases come first ("replacement transaction underpriced" before
// "underpriced").
type rule struct {
	contains      string
	kind          ErrorKind
	deterministic bool
}

// rules is the one classification table, shared by the sender and the
// upstream pool. Messages are geth's, Nethermind's, Erigon's and common
// providers'.
var rules = []rule{
	{"already known", KindAlreadyKnown, true},
	{"known transaction", KindAlreadyKnown, true},
	{"already imported", KindAlreadyKnown, true},
	{"nonce too low", KindNonceTooLow, true},
	{"oldnonce", KindNonceTooLow, true},
	{"nonce too high", KindNonceTooHigh, true},
	{"replacement transaction underpriced", KindReplacementUnderpriced, true},
	{"replacement fee too low", KindReplacementUnderpriced, true},
	{"transaction underpriced", KindUnderpriced, true},
	{"max fee per gas less than block base fee", KindFeeCapTooLow, true},
	{"insufficient funds", KindInsufficientFunds, true},
	{"intrinsic gas too low", KindIntrinsicGas, true},
	{"execution reverted", KindExecutionReverted, true},
	{"exceeds block gas limit", KindGasLimit, true},
	{"exceeds the configured cap", KindFeeTooHigh, true},
	{"gas limit too high", KindGasLimit, true},
	{"invalid sender", KindInvalidTx, true},
	{"transaction type not supported", KindInvalidTx, true},
	{"invalid chain id", KindInvalidTx, true},
	{"txpool is full", KindPoolFull, false},
	{"transaction pool limit", KindPoolFull, false},
	{"header not found", KindNodeBehind, false}, // the node is behind, or pruned that block
	{"missing trie node", KindNodeBehind, false},
	{"historical state", KindNodeBehind, false}, // geth: "historical state … is not available" (pruned)
	{"deadline exceeded", KindTimeout, false},   // before the "exceeded" rate-limit phrases
	{"too many requests", KindRateLimited, false},
	{"rate limit", KindRateLimited, false},
	{"request count exceeded", KindRateLimited, false},
	{"capacity exceeded", KindRateLimited, false},
	{"limit exceeded", KindRateLimited, false},
	{"connection refused", KindConnectionRefused, false},
	{"timeout", KindTimeout, false},
}

// Classify returns the kind of a node error and whether it is
// deterministic: an answer about the transaction that another node would
// give too, so it must not trigger failover.
func Classify(err error) (ErrorKind, bool) {
	if err == nil {
		return KindNone, true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return KindTimeout, false
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return KindConnectionRefused, false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return KindTimeout, false
	}
	msg := strings.ToLower(err.Error())
	for _, r := range rules {
		if strings.Contains(msg, r.contains) {
			return r.kind, r.deterministic
		}
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return KindTransport, false
	}
	return KindUnknown, false
}

// Refusal reports whether a node's answer to a broadcast refuses the
// transaction for a reason that sending it again, or a replacement with
// higher fees, does not cure: the transaction as signed cannot get in.
// (Underpriced answers are cured by replacement; a nonce already used or
// a transaction already known are not refusals.)
func Refusal(kind ErrorKind) bool {
	switch kind {
	case KindInsufficientFunds, KindIntrinsicGas, KindGasLimit, KindFeeTooHigh, KindInvalidTx, KindExecutionReverted:
		return true
	}
	return false
}
