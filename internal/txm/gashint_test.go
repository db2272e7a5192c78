package txm_test

import (
	"context"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/evm"
)

// A token transfer's estimate gets the largest earlier estimate of the same
// function as its gas, so that the node runs it once when that suffices.
// The answers must be the node's own estimates all the same: a hint too
// low must not fail the call, and a revert must still read as a revert.
func TestGasHintNeverChangesTheAnswer(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	hinted, err := evm.Dial(ctx, e.chain.RPCURL(), "sandbox", evm.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer hinted.Close()
	missed := func() float64 { return rpcCalls(t, reg, "eth_estimateGas", "hint_missed") }
	susd := *e.dom.Assets["SUSD"].Token
	wallet := crypto.PubkeyToAddress(e.key.PublicKey)
	transfer := func(to common.Address, amount *big.Int) evm.Call {
		return evm.TransferCall(wallet, &susd, to, amount)
	}
	estimate := func(c *evm.Client, call evm.Call) (uint64, error) {
		t.Helper()
		gas, errs, err := c.EstimateGas(ctx, []evm.Call{call})
		if err != nil {
			t.Fatal(err)
		}
		return gas[0], errs[0]
	}
	// unhinted is what the node estimates with no hint (e.client never
	// hints: it estimates each function once at most below).
	near := func(what string, got uint64, call evm.Call) {
		t.Helper()
		fresh, err := evm.Dial(ctx, e.chain.RPCURL(), "sandbox", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		want, err := estimate(fresh, call)
		if err != nil {
			t.Fatalf("%s: unhinted estimate: %v", what, err)
		}
		if got < want*98/100 || got > want*102/100 {
			t.Errorf("%s: hinted estimate %d, unhinted %d: more than 2%% apart", what, got, want)
		}
	}

	// A transfer to the wallet itself writes no new balance slot: the
	// cheapest kind, and the first hint learned.
	self := transfer(wallet, big.NewInt(1))
	gSelf, err := estimate(hinted, self)
	if err != nil {
		t.Fatal(err)
	}
	// A new holder needs a new slot, more than that hint: the hinted
	// estimate runs out of gas, is asked again without it and succeeds.
	first := transfer(common.HexToAddress("0x7100000000000000000000000000000000000001"), big.NewInt(1))
	gNew, err := estimate(hinted, first)
	if err != nil {
		t.Fatalf("new holder with a hint too low: %v", err)
	}
	if gNew <= gSelf || missed() != 1 {
		t.Fatalf("new holder %d gas after a self-transfer's %d, %v hints missed: want more gas and 1 miss", gNew, gSelf, missed())
	}
	near("new holder, hint too low", gNew, first)
	// The next new holder is hinted with that estimate and needs no retry.
	second := transfer(common.HexToAddress("0x7100000000000000000000000000000000000002"), big.NewInt(1))
	g2, err := estimate(hinted, second)
	if err != nil || missed() != 1 {
		t.Fatalf("second new holder: %v, %v hints missed (want 1)", err, missed())
	}
	near("new holder, hinted", g2, second)
	// A hint above what a call needs does not inflate its estimate.
	gSelf2, err := estimate(hinted, self)
	if err != nil || missed() != 1 {
		t.Fatalf("self-transfer again: %v, %v hints missed (want 1)", err, missed())
	}
	near("self-transfer with a higher hint", gSelf2, self)
	// A transfer of more than the wallet holds reverts with the hint and
	// again without it; it reads as a revert, not as too little gas.
	_, err = estimate(hinted, transfer(common.HexToAddress("0x7100000000000000000000000000000000000003"), new(big.Int).Lsh(big.NewInt(1), 200)))
	if kind, _ := evm.Classify(err); kind != evm.KindExecutionReverted || missed() != 2 {
		t.Fatalf("overdrawn transfer: %v (kind %s), %v hints missed; want a revert and 2 misses", err, kind, missed())
	}
}

// Once the node has estimated a plain transfer at 21,000 gas, plain
// transfers to accounts without code are answered from a read of the
// recipient's code, in the same batch, instead of an estimate that
// executes them. A recipient with code, and a precompile, are estimated
// still: a transfer to them may run code and cost more, or revert.
func TestPlainTransferReadsCodeInsteadOfEstimating(t *testing.T) {
	e := newSQLiteEnv(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	c, err := evm.Dial(ctx, e.chain.RPCURL(), "sandbox", evm.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wallet := crypto.PubkeyToAddress(e.key.PublicKey)
	pay := func(to common.Address) evm.Call { return evm.TransferCall(wallet, nil, to, big.NewInt(1)) }
	estimate := func(what string, calls ...evm.Call) ([]uint64, []error) {
		t.Helper()
		gas, errs, err := c.EstimateGas(ctx, calls)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return gas, errs
	}
	want := func(what string, estimates, codeReads float64) {
		t.Helper()
		if got, gotCode := rpcCalls(t, reg, "eth_estimateGas", "ok"), rpcCalls(t, reg, "eth_getCode", "ok"); got != estimates || gotCode != codeReads {
			t.Fatalf("%s: %v estimates and %v code reads so far, want %v and %v", what, got, gotCode, estimates, codeReads)
		}
	}

	gas, errs := estimate("first transfer", pay(common.HexToAddress("0x7200000000000000000000000000000000000001")))
	if errs[0] != nil || gas[0] != 21000 {
		t.Fatalf("first transfer: %d gas, %v", gas[0], errs[0])
	}
	want("first transfer (the node's estimate teaches the transfer gas)", 1, 0)

	token := *e.dom.Assets["SUSD"].Token
	precompile := common.BytesToAddress([]byte{0x01}) // ecrecover: no code, 3,000 gas when paid
	gas, errs = estimate("mixed round",
		pay(common.HexToAddress("0x7200000000000000000000000000000000000002")),
		pay(token), // has code, and no way to receive the coin: reverts
		pay(precompile),
		pay(common.HexToAddress("0x7200000000000000000000000000000000000003")))
	if errs[0] != nil || gas[0] != 21000 || errs[3] != nil || gas[3] != 21000 {
		t.Fatalf("transfers to accounts without code: %v gas, errors %v", gas, errs)
	}
	if kind, _ := evm.Classify(errs[1]); kind != evm.KindExecutionReverted {
		t.Fatalf("transfer to the token contract: %d gas, %v (kind %s); want a revert from the node's estimate", gas[1], errs[1], kind)
	}
	if errs[2] != nil || gas[2] <= 21000 {
		t.Fatalf("transfer to a precompile: %d gas, %v; want the node's estimate, above 21,000", gas[2], errs[2])
	}
	// One batch: three code reads and the precompile's estimate; then the
	// token contract, whose code was found, estimated on its own.
	want("mixed round", 3, 3)
}

// rpcCalls reads sluice_rpc_calls_total for a method and outcome.
func rpcCalls(t *testing.T, reg *prometheus.Registry, method, outcome string) float64 {
	t.Helper()
	return gathered(t, reg, "sluice_rpc_calls_total", map[string]string{"method": method, "outcome": outcome})
}
