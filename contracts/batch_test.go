package contracts_test

import (
	"bytes"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/google/go-cmp/cmp"
	"github.com/sluicepay/sluice/contracts"
)

func TestBatchAmountFits(t *testing.T) {
	t.Parallel()
	max := contracts.MaxBatchAmount()
	tests := []struct {
		amount *big.Int
		want   bool
	}{
		{nil, false},
		{big.NewInt(-1), false},
		{big.NewInt(0), true},
		{big.NewInt(1), true},
		{max, true},
		{new(big.Int).Add(max, big.NewInt(1)), false},
	}
	for _, tt := range tests {
		if got := contracts.BatchAmountFits(tt.amount); got != tt.want {
			t.Errorf("BatchAmountFits(%v) = %v, want %v", tt.amount, got, tt.want)
		}
	}
	if want := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 96), big.NewInt(1)); max.Cmp(want) != 0 {
		t.Errorf("MaxBatchAmount = %s, want 2^96-1", max)
	}
	max.SetInt64(0)
	if contracts.MaxBatchAmount().Sign() == 0 {
		t.Error("MaxBatchAmount returned a shared value")
	}
}

func TestPackRecipientsRoundTrip(t *testing.T) {
	t.Parallel()
	tos := []common.Address{
		common.HexToAddress("0x1111111111111111111111111111111111111111"),
		common.HexToAddress("0x00000000000000000000000000000000000000b0"),
		common.HexToAddress("0xffffffffffffffffffffffffffffffffffffffff"),
	}
	amounts := []*big.Int{big.NewInt(0), big.NewInt(1_000_000), contracts.MaxBatchAmount()}
	packed, err := contracts.PackRecipients(tos, amounts)
	if err != nil {
		t.Fatal(err)
	}
	if len(packed) != 3*contracts.RecipientSize {
		t.Fatalf("len = %d, want %d", len(packed), 3*contracts.RecipientSize)
	}
	// The layout the contracts read: address, then a 12-byte big-endian amount.
	want1 := append(common.FromHex("0x00000000000000000000000000000000000000b0"), common.FromHex("0x0000000000000000000f4240")...)
	if !bytes.Equal(packed[32:64], want1) {
		t.Errorf("recipient 1 = %x, want %x", packed[32:64], want1)
	}
	gotTos, gotAmounts, err := contracts.UnpackRecipients(packed)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tos, gotTos); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	for i := range amounts {
		if amounts[i].Cmp(gotAmounts[i]) != 0 {
			t.Errorf("amount %d = %s, want %s", i, gotAmounts[i], amounts[i])
		}
	}
}

func TestPackRecipientsRefuses(t *testing.T) {
	t.Parallel()
	a := common.HexToAddress("0x1111111111111111111111111111111111111111")
	tooLarge := new(big.Int).Lsh(big.NewInt(1), 96)
	tests := []struct {
		name    string
		tos     []common.Address
		amounts []*big.Int
	}{
		{"empty", nil, nil},
		{"fewer amounts", []common.Address{a, a}, []*big.Int{big.NewInt(1)}},
		{"zero address", []common.Address{a, {}}, []*big.Int{big.NewInt(1), big.NewInt(1)}},
		{"amount 2^96", []common.Address{a}, []*big.Int{tooLarge}},
		{"negative amount", []common.Address{a}, []*big.Int{big.NewInt(-1)}},
		{"nil amount", []common.Address{a}, []*big.Int{nil}},
	}
	for _, tt := range tests {
		if got, err := contracts.PackRecipients(tt.tos, tt.amounts); err == nil {
			t.Errorf("%s: packed %x, want an error", tt.name, got)
		}
	}
}

func TestBatchCallsRefuseBadLengths(t *testing.T) {
	t.Parallel()
	token := common.HexToAddress("0x2222222222222222222222222222222222222222")
	for _, n := range []int{0, 1, 31, 33, 63} {
		packed := make([]byte, n)
		if _, _, err := contracts.UnpackRecipients(packed); !errors.Is(err, contracts.ErrBadPacked) {
			t.Errorf("UnpackRecipients(%d bytes) err = %v, want ErrBadPacked", n, err)
		}
		calls := map[string]func() ([]byte, error){
			"ExecutorNativeCall": func() ([]byte, error) { return contracts.ExecutorNativeCall(packed) },
			"ExecutorTokenCall":  func() ([]byte, error) { return contracts.ExecutorTokenCall(token, packed) },
			"BatchNativeCall":    func() ([]byte, error) { return contracts.BatchNativeCall(packed) },
			"BatchTokenCall":     func() ([]byte, error) { return contracts.BatchTokenCall(token, packed) },
		}
		for name, call := range calls {
			if _, err := call(); !errors.Is(err, contracts.ErrBadPacked) {
				t.Errorf("%s(%d bytes) err = %v, want ErrBadPacked", name, n, err)
			}
		}
	}
}

func TestBatchCallData(t *testing.T) {
	t.Parallel()
	token := common.HexToAddress("0x2222222222222222222222222222222222222222")
	packed, err := contracts.PackRecipients([]common.Address{token}, []*big.Int{big.NewInt(7)})
	if err != nil {
		t.Fatal(err)
	}
	// Both contracts expose the same two functions, so a planner can build
	// the same data for either mode.
	for _, a := range []*contracts.Artifact{contracts.BatchExecutor(), contracts.Batch()} {
		if got := a.ABI.Methods["payNative"].Sig; got != "payNative(bytes)" {
			t.Errorf("%s payNative = %q", a.ContractName, got)
		}
		if got := a.ABI.Methods["payToken"].Sig; got != "payToken(address,bytes)" {
			t.Errorf("%s payToken = %q", a.ContractName, got)
		}
		if _, ok := a.ABI.Errors["RecipientFailed"]; !ok {
			t.Errorf("%s has no RecipientFailed error", a.ContractName)
		}
	}
	for name, build := range map[string]func() ([]byte, error){
		"ExecutorNativeCall": func() ([]byte, error) { return contracts.ExecutorNativeCall(packed) },
		"BatchNativeCall":    func() ([]byte, error) { return contracts.BatchNativeCall(packed) },
	} {
		data, err := build()
		if err != nil {
			t.Fatal(err)
		}
		args, err := contracts.Batch().ABI.Methods["payNative"].Inputs.Unpack(data[4:])
		if err != nil || !bytes.Equal(args[0].([]byte), packed) {
			t.Errorf("%s does not carry the packed recipients: %v", name, err)
		}
	}
	for name, build := range map[string]func() ([]byte, error){
		"ExecutorTokenCall": func() ([]byte, error) { return contracts.ExecutorTokenCall(token, packed) },
		"BatchTokenCall":    func() ([]byte, error) { return contracts.BatchTokenCall(token, packed) },
	} {
		data, err := build()
		if err != nil {
			t.Fatal(err)
		}
		args, err := contracts.Batch().ABI.Methods["payToken"].Inputs.Unpack(data[4:])
		if err != nil || args[0].(common.Address) != token || !bytes.Equal(args[1].([]byte), packed) {
			t.Errorf("%s does not carry the token and the packed recipients: %v", name, err)
		}
	}
}

func TestRecipientFailedIndex(t *testing.T) {
	t.Parallel()
	for _, a := range []*contracts.Artifact{contracts.BatchExecutor(), contracts.Batch()} {
		data, err := a.ABI.Errors["RecipientFailed"].Inputs.Pack(big.NewInt(41))
		if err != nil {
			t.Fatal(err)
		}
		id := a.ABI.Errors["RecipientFailed"].ID
		data = append(id[:4:4], data...)
		if i, ok := contracts.RecipientFailedIndex(data); !ok || i != 41 {
			t.Errorf("%s: RecipientFailedIndex = %d, %v; want 41, true", a.ContractName, i, ok)
		}
		huge := bytes.Clone(data)
		huge[4] = 1
		if _, ok := contracts.RecipientFailedIndex(huge); ok {
			t.Error("an index of 2^248 decoded")
		}
		if _, ok := contracts.RecipientFailedIndex(data[:35]); ok {
			t.Error("short revert data decoded")
		}
	}
	other := contracts.BatchExecutor().ABI.Errors["NotSelf"].ID
	if _, ok := contracts.RecipientFailedIndex(append(other[:4:4], make([]byte, 32)...)); ok {
		t.Error("another error decoded as RecipientFailed")
	}
	if _, ok := contracts.RecipientFailedIndex(nil); ok {
		t.Error("empty revert data decoded")
	}
}

func TestIsDelegatedTo(t *testing.T) {
	t.Parallel()
	exec := common.HexToAddress("0x3333333333333333333333333333333333333333")
	tests := []struct {
		name string
		code []byte
		want bool
	}{
		{"designator", types.AddressToDelegation(exec), true},
		{"raw designator", append([]byte{0xef, 0x01, 0x00}, exec.Bytes()...), true},
		{"other target", types.AddressToDelegation(common.HexToAddress("0x44")), false},
		{"no code", nil, false},
		{"contract code", contracts.BatchExecutor().DeployedBytecode, false},
		{"trailing byte", append(types.AddressToDelegation(exec), 0), false},
	}
	for _, tt := range tests {
		if got := contracts.IsDelegatedTo(tt.code, exec); got != tt.want {
			t.Errorf("%s: IsDelegatedTo = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBatchArtifacts(t *testing.T) {
	t.Parallel()
	for _, a := range []*contracts.Artifact{contracts.BatchExecutor(), contracts.Batch()} {
		if a.EVMVersion != "prague" || !bytes.Contains(a.Bytecode, a.DeployedBytecode[:32]) {
			t.Errorf("%s: evm %q, or creation code without runtime code", a.ContractName, a.EVMVersion)
		}
		if data, err := a.DeployData(); err != nil || !bytes.Equal(data, a.Bytecode) {
			t.Errorf("%s: DeployData = %v, want the creation code alone", a.ContractName, err)
		}
	}
	a := contracts.Batch()
	a.Bytecode[0] ^= 0xff
	if bytes.Equal(a.Bytecode, contracts.Batch().Bytecode) {
		t.Error("modifying a returned artifact changed the embedded one")
	}
}
