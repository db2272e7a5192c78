package contracts_test

import (
	"bytes"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/sluicepay/sluice/contracts"
)

// rejecterCode deploys a contract whose runtime code, 0x60006000fd, reverts
// every call: a recipient that refuses the coin.
var rejecterCode = common.FromHex("0x600580600b6000396000f3" + "60006000fd")

// falseTokenCode deploys a "token" whose every call returns false (one zero
// word): runtime 0x60206000f3 returns 32 bytes of fresh, zeroed memory.
var falseTokenCode = common.FromHex("0x600580600b6000396000f3" + "60206000f3")

// silentTokenCode deploys a USDT-style "token" whose calls succeed and
// return nothing: runtime 0x00 (STOP).
var silentTokenCode = common.FromHex("0x600180600b6000396000f3" + "00")

func TestExecutorPaysTokensFromWallet(t *testing.T) {
	t.Parallel()
	c := newBatchChain(t)
	// 150 existing holders (paid once before) and 100 new ones.
	old, first := recipients(t, 150, func(i int) int64 { return 1_000_000 + int64(i) })
	c.ok(c.payExecutor(&c.susd, pack(t, old, first)), "first batch")
	fresh, _ := recipients(t, 100, func(int) int64 { return 0 })
	tos := append(append([]common.Address{}, old...), fresh...)
	amounts := make([]*big.Int, len(tos))
	for i := range amounts {
		amounts[i] = big.NewInt(2_000_000 + int64(i))
	}
	before := c.susdBalance(c.hot)
	r := c.ok(c.payExecutor(&c.susd, pack(t, tos, amounts)), "batch")

	c.checkTransfers(r, c.hot, tos, amounts)
	for i, to := range tos {
		want := new(big.Int).Set(amounts[i])
		if i < len(old) {
			want.Add(want, first[i])
		}
		if got := c.susdBalance(to); got.Cmp(want) != 0 {
			t.Errorf("recipient %d holds %s, want %s", i, got, want)
		}
	}
	if got, want := c.susdBalance(c.hot), new(big.Int).Sub(before, sum(amounts)); got.Cmp(want) != 0 {
		t.Errorf("hot wallet holds %s, want %s", got, want)
	}
	// transfer, not transferFrom: no allowance to anyone, nothing at the executor.
	if got := c.susdCall("allowance", c.hot, c.executor); got.Sign() != 0 {
		t.Errorf("allowance to the executor = %s", got)
	}
	c.checkEmpty(c.executor, "executor")
}

func TestExecutorPaysNative(t *testing.T) {
	t.Parallel()
	c := newBatchChain(t)
	tos, amounts := recipients(t, 250, func(i int) int64 { return params.GWei * int64(1_000+i) })
	before := c.balance(c.hot)
	r := c.ok(c.payExecutor(nil, pack(t, tos, amounts)), "batch")
	for i, to := range tos {
		if got := c.balance(to); got.Cmp(amounts[i]) != 0 {
			t.Errorf("recipient %d holds %s wei, want %s", i, got, amounts[i])
		}
	}
	fee := new(big.Int).Mul(new(big.Int).SetUint64(r.GasUsed), r.EffectiveGasPrice)
	if got, want := c.balance(c.hot), new(big.Int).Sub(before, new(big.Int).Add(sum(amounts), fee)); got.Cmp(want) != 0 {
		t.Errorf("hot wallet holds %s wei, want %s", got, want)
	}
	c.checkEmpty(c.executor, "executor")
}

func TestExecutorOnlySelf(t *testing.T) {
	t.Parallel()
	c := newBatchChain(t)
	mallory, _ := crypto.GenerateKey()
	malloryAddr := crypto.PubkeyToAddress(mallory.PublicKey)
	c.ok(c.send(c.key, &malloryAddr, big.NewInt(params.Ether), nil, 21_000), "funding")

	packed := pack(t, []common.Address{malloryAddr}, []*big.Int{big.NewInt(params.Ether)})
	notSelf := errorData(t, contracts.BatchExecutor(), "NotSelf")
	for _, token := range []*common.Address{nil, &c.susd} {
		data := c.executorData(token, packed)
		// Another account calling the delegated wallet, or anyone calling
		// the executor's own address, is refused.
		for _, to := range []common.Address{c.hot, c.executor} {
			if got := c.revertData(ethereum.CallMsg{From: malloryAddr, To: &to, Data: data}); !bytes.Equal(got, notSelf) {
				t.Errorf("call to %s from another account reverted with %x, want NotSelf", to, got)
			}
		}
		if r := c.mine(c.send(mallory, &c.hot, nil, data, 200_000)); r.Status != types.ReceiptStatusFailed {
			t.Error("another account made the delegated wallet pay")
		}
	}
	if got := c.balance(malloryAddr); got.Cmp(big.NewInt(params.Ether)) >= 0 {
		t.Errorf("mallory holds %s wei, more than she was given minus fees", got)
	}

	// The delegated wallet still receives coins; the executor does not.
	before := c.balance(c.hot)
	r := c.ok(c.send(mallory, &c.hot, big.NewInt(params.GWei), nil, 50_000), "top-up of the delegated wallet")
	t.Logf("a plain transfer to the delegated wallet used %d gas", r.GasUsed)
	if got := c.balance(c.hot); got.Cmp(new(big.Int).Add(before, big.NewInt(params.GWei))) != 0 {
		t.Errorf("hot wallet after a top-up holds %s, want %s + 1 gwei", got, before)
	}
	// But a plain transfer now runs receive(): 21,000 gas is not enough.
	if r := c.mine(c.send(mallory, &c.hot, big.NewInt(params.GWei), nil, 21_000)); r.Status != types.ReceiptStatusFailed {
		t.Error("a 21,000-gas top-up of the delegated wallet succeeded; update the README")
	}
	// Nor does the executor's runtime code placed at an address directly,
	// as the dev chain's genesis does.
	for _, exec := range []common.Address{c.executor, c.chain.BatchExecutor()} {
		if r := c.mine(c.send(mallory, &exec, big.NewInt(params.GWei), nil, 50_000)); r.Status != types.ReceiptStatusFailed {
			t.Errorf("the executor at %s accepted coins", exec)
		}
	}
	c.checkEmpty(c.executor, "executor")
}

func TestExecutorRecipientFailed(t *testing.T) {
	t.Parallel()
	c := newBatchChain(t)
	rejecter := c.deploy(rejecterCode)
	falseToken := c.deploy(falseTokenCode)
	silentToken := c.deploy(silentTokenCode)
	self := func(data []byte) ethereum.CallMsg { return ethereum.CallMsg{From: c.hot, To: &c.hot, Data: data} }

	tos, amounts := recipients(t, 5, func(int) int64 { return 1_000 })
	tos[3] = rejecter
	data := c.executorData(nil, pack(t, tos, amounts))
	if i, ok := contracts.RecipientFailedIndex(c.revertData(self(data))); !ok || i != 3 {
		t.Errorf("native batch to a rejecting contract: index %d, %v; want 3", i, ok)
	}
	r := c.mine(c.send(c.key, &c.hot, nil, data, batchGas))
	if r.Status != types.ReceiptStatusFailed || c.balance(tos[0]).Sign() != 0 {
		t.Error("a batch with a rejecting recipient paid")
	}

	// SUSD refuses the zero address, which PackRecipients would not pack.
	packed := pack(t, tos, amounts)
	copy(packed[2*32:2*32+20], make([]byte, 20))
	if i, ok := contracts.RecipientFailedIndex(c.revertData(self(c.executorData(&c.susd, packed)))); !ok || i != 2 {
		t.Errorf("SUSD batch to the zero address: index %d, %v; want 2", i, ok)
	}
	// The executor itself refuses to burn coins at the zero address.
	if i, ok := contracts.RecipientFailedIndex(c.revertData(self(c.executorData(nil, packed)))); !ok || i != 2 {
		t.Errorf("native batch to the zero address: index %d, %v; want 2", i, ok)
	}
	if i, ok := contracts.RecipientFailedIndex(c.revertData(self(c.executorData(&falseToken, pack(t, tos, amounts))))); !ok || i != 0 {
		t.Errorf("token returning false: index %d, %v; want 0", i, ok)
	}
	// A token that returns nothing succeeded; an address without code is
	// not a token.
	if _, err := c.cl.CallContract(t.Context(), self(c.executorData(&silentToken, pack(t, tos, amounts))), nil); err != nil {
		t.Errorf("token returning no data: %v", err)
	}
	noCode := tos[0]
	if got, want := c.revertData(self(c.executorData(&noCode, pack(t, tos, amounts)))), errorData(t, contracts.BatchExecutor(), "NotAContract", noCode); !bytes.Equal(got, want) {
		t.Errorf("token without code reverted with %x, want NotAContract", got)
	}
	// More coin than the wallet holds is the wallet's problem, not the
	// recipient's.
	amounts[1] = contracts.MaxBatchAmount()
	tos[3] = tos[4]
	got := c.revertData(self(c.executorData(nil, pack(t, tos, amounts))))
	if want := errorData(t, contracts.BatchExecutor(), "InsufficientBalance", big.NewInt(1)); !bytes.Equal(got, want) {
		t.Errorf("overdraft reverted with %x, want InsufficientBalance(1)", got)
	}
	// Malformed packing.
	bad := make([]byte, 33)
	data = append(contracts.BatchExecutor().ABI.Methods["payNative"].ID, mustPackBytes(t, bad)...)
	if got, want := c.revertData(self(data)), errorData(t, contracts.BatchExecutor(), "BadPackedLength", big.NewInt(33)); !bytes.Equal(got, want) {
		t.Errorf("33 packed bytes reverted with %x, want BadPackedLength(33)", got)
	}
}

// mustPackBytes ABI-encodes one bytes argument, bypassing the Go builders'
// length check.
func mustPackBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	enc, err := contracts.BatchExecutor().ABI.Methods["payNative"].Inputs.Pack(b)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// TestDelegatedWalletOneInFlight records a constraint the sender must live
// with: geth's pool keeps at most one pending transaction for an account
// with a delegation (a replacement of it is still accepted), so a delegated
// hot wallet cannot pipeline transactions through a geth node.
func TestDelegatedWalletOneInFlight(t *testing.T) {
	t.Parallel()
	c := newBatchChain(t)
	to := common.HexToAddress("0x00000000000000000000000000000000000000b0")
	first := c.send(c.key, &to, big.NewInt(1), nil, 21_000)
	second, err := types.SignNewTx(c.key, types.LatestSignerForChainID(first.ChainId()), &types.DynamicFeeTx{
		ChainID: first.ChainId(), Nonce: first.Nonce() + 1, To: &to, Value: big.NewInt(1),
		GasTipCap: first.GasTipCap(), GasFeeCap: first.GasFeeCap(), Gas: 21_000,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cl.SendTransaction(t.Context(), second); err == nil || !strings.Contains(err.Error(), txpool.ErrInflightTxLimitReached.Error()) {
		t.Errorf("second pending transaction of a delegated wallet: err = %v, want the in-flight limit", err)
	}
	bump, err := types.SignNewTx(c.key, types.LatestSignerForChainID(first.ChainId()), &types.DynamicFeeTx{
		ChainID: first.ChainId(), Nonce: first.Nonce(), To: &to, Value: big.NewInt(1),
		GasTipCap: big.NewInt(2 * params.GWei), GasFeeCap: big.NewInt(100 * params.GWei), Gas: 21_000,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cl.SendTransaction(t.Context(), bump); err != nil {
		t.Errorf("fee bump of the pending transaction: %v", err)
	}
	c.ok(bump, "fee bump")
}
