package contracts_test

import (
	"bytes"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
	"github.com/sluicepay/sluice/contracts"
)

func TestBatchPaysTokensWithExactAllowance(t *testing.T) {
	t.Parallel()
	c := newBatchChain(t)
	tos, amounts := recipients(t, 250, func(i int) int64 { return 1_000_000 + int64(i) })
	packed := pack(t, tos, amounts)
	total := sum(amounts)

	// One unit short of the total: the last recipient is the one that fails.
	c.ok(c.approveSUSD(new(big.Int).Sub(total, big.NewInt(1))), "short approval")
	data, _ := contracts.BatchTokenCall(c.susd, packed)
	if i, ok := contracts.RecipientFailedIndex(c.revertData(ethereum.CallMsg{From: c.hot, To: &c.batch, Data: data})); !ok || i != len(tos)-1 {
		t.Errorf("batch over the allowance: index %d, %v; want %d", i, ok, len(tos)-1)
	}

	c.ok(c.approveSUSD(total), "approval")
	before := c.susdBalance(c.hot)
	r := c.ok(c.payBatch(&c.susd, packed, nil), "batch")
	c.checkTransfers(r, c.hot, tos, amounts)
	for i, to := range tos {
		if got := c.susdBalance(to); got.Cmp(amounts[i]) != 0 {
			t.Errorf("recipient %d holds %s, want %s", i, got, amounts[i])
		}
	}
	if got, want := c.susdBalance(c.hot), new(big.Int).Sub(before, total); got.Cmp(want) != 0 {
		t.Errorf("hot wallet holds %s, want %s", got, want)
	}
	if got := c.susdCall("allowance", c.hot, c.batch); got.Sign() != 0 {
		t.Errorf("allowance left to the batch contract = %s, want 0", got)
	}
	c.checkEmpty(c.batch, "batch contract")

	// Someone else's call spends only their own (absent) allowance.
	if r := c.mine(c.payBatch(&c.susd, packed, nil)); r.Status != types.ReceiptStatusFailed {
		t.Error("a second batch without approval paid")
	}
}

func TestBatchPaysExactValue(t *testing.T) {
	t.Parallel()
	c := newBatchChain(t)
	tos, amounts := recipients(t, 250, func(i int) int64 { return params.GWei * int64(1_000+i) })
	packed := pack(t, tos, amounts)
	total := sum(amounts)
	data, _ := contracts.BatchNativeCall(packed)

	batch := contracts.Batch()
	for _, value := range []*big.Int{new(big.Int).Sub(total, big.NewInt(1)), new(big.Int).Add(total, big.NewInt(1)), new(big.Int)} {
		msg := ethereum.CallMsg{From: c.hot, To: &c.batch, Value: value, Data: data}
		if got, want := c.revertData(msg), errorData(t, batch, "ValueMismatch", value, total); !bytes.Equal(got, want) {
			t.Errorf("msg.value %s for %s reverted with %x, want ValueMismatch", value, total, got)
		}
	}
	if r := c.mine(c.payBatch(nil, packed, new(big.Int).Add(total, big.NewInt(1)))); r.Status != types.ReceiptStatusFailed {
		t.Error("a batch with one wei too many paid")
	}

	c.ok(c.payBatch(nil, packed, total), "batch")
	for i, to := range tos {
		if got := c.balance(to); got.Cmp(amounts[i]) != 0 {
			t.Errorf("recipient %d holds %s wei, want %s", i, got, amounts[i])
		}
	}
	c.checkEmpty(c.batch, "batch contract")

	// A recipient that refuses the coin is named; coins sent to the
	// contract itself are refused.
	rejecter := c.deploy(rejecterCode)
	tos[7] = rejecter
	data, _ = contracts.BatchNativeCall(pack(t, tos, amounts))
	if i, ok := contracts.RecipientFailedIndex(c.revertData(ethereum.CallMsg{From: c.hot, To: &c.batch, Value: total, Data: data})); !ok || i != 7 {
		t.Errorf("batch to a rejecting contract: index %d, %v; want 7", i, ok)
	}
	if r := c.mine(c.send(c.key, &c.batch, big.NewInt(1), nil, 50_000)); r.Status != types.ReceiptStatusFailed {
		t.Error("the batch contract accepted a plain transfer")
	}
	c.checkEmpty(c.batch, "batch contract")
}

func TestBatchTokenReturnRules(t *testing.T) {
	t.Parallel()
	c := newBatchChain(t)
	falseToken := c.deploy(falseTokenCode)
	silentToken := c.deploy(silentTokenCode)
	tos, amounts := recipients(t, 3, func(int) int64 { return 1_000 })
	packed := pack(t, tos, amounts)
	call := func(token common.Address) ethereum.CallMsg {
		data, err := contracts.BatchTokenCall(token, packed)
		if err != nil {
			t.Fatal(err)
		}
		return ethereum.CallMsg{From: c.hot, To: &c.batch, Data: data}
	}
	if i, ok := contracts.RecipientFailedIndex(c.revertData(call(falseToken))); !ok || i != 0 {
		t.Errorf("token returning false: index %d, %v; want 0", i, ok)
	}
	if _, err := c.cl.CallContract(t.Context(), call(silentToken), nil); err != nil {
		t.Errorf("token returning no data: %v", err)
	}
	if got, want := c.revertData(call(tos[0])), errorData(t, contracts.Batch(), "NotAContract", tos[0]); !bytes.Equal(got, want) {
		t.Errorf("token without code reverted with %x, want NotAContract", got)
	}
	// Without an approval SUSD's transferFrom reverts: the first recipient
	// is named.
	if i, ok := contracts.RecipientFailedIndex(c.revertData(call(c.susd))); !ok || i != 0 {
		t.Errorf("SUSD without approval: index %d, %v; want 0", i, ok)
	}
}
