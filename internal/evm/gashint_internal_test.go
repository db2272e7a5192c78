package evm

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// Only a plain transfer's estimate of exactly 21,000 gas teaches that the
// chain charges that for one: a chain adding its L1 data cost to a
// transfer's gas estimates more, and must be estimated every time.
func TestTransferGasIsLearnedOnlyFromA21000GasTransfer(t *testing.T) {
	to := common.HexToAddress("0x7200000000000000000000000000000000000001")
	plain := Call{To: to, Value: big.NewInt(1)}
	var h gasHints
	for _, c := range []struct {
		what string
		call Call
		gas  uint64
	}{
		{"a transfer costing more (an L2's data fee in gas)", plain, 21_500},
		{"a call with data at 21,000", Call{To: to, Value: new(big.Int), Data: []byte{0xa9, 0x05, 0x9c, 0xbb}}, 21_000},
		{"a delegated call at 21,000", Call{To: to, Value: big.NewInt(1), Delegate: &to}, 21_000},
		{"a transfer to a precompile at 21,000", Call{To: common.BytesToAddress([]byte{0x01, 0x00}), Value: big.NewInt(1)}, 21_000},
	} {
		h.learn(c.call, c.gas)
		if h.transferGas() {
			t.Fatalf("learned the transfer gas from %s", c.what)
		}
	}
	h.learn(plain, 21_000)
	if !h.transferGas() {
		t.Fatal("a plain transfer estimated at 21,000 did not teach the transfer gas")
	}
}
