package evm

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"syscall"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

func TestRefusal(t *testing.T) {
	// Cured by sending again or by a replacement: not refusals.
	for _, k := range []ErrorKind{KindNone, KindAlreadyKnown, KindNonceTooLow, KindUnderpriced, KindReplacementUnderpriced,
		KindFeeCapTooLow, KindNonceTooHigh, KindPoolFull, KindTimeout, KindRateLimited, KindUnknown} {
		if Refusal(k) {
			t.Errorf("Refusal(%s) = true", k)
		}
	}
	for _, k := range []ErrorKind{KindInsufficientFunds, KindIntrinsicGas, KindGasLimit, KindFeeTooHigh, KindInvalidTx, KindExecutionReverted} {
		if !Refusal(k) {
			t.Errorf("Refusal(%s) = false", k)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err           error
		kind          ErrorKind
		deterministic bool
	}{
		{errors.New("nonce too low: next nonce 5, tx nonce 3"), KindNonceTooLow, true},
		{errors.New("already known"), KindAlreadyKnown, true},
		{errors.New("replacement transaction underpriced"), KindReplacementUnderpriced, true},
		{errors.New("transaction underpriced: tip needed 1, tip permitted 0"), KindUnderpriced, true},
		{errors.New("insufficient funds for gas * price + value: balance 0"), KindInsufficientFunds, true},
		{errors.New("execution reverted: ERC20: transfer amount exceeds balance"), KindExecutionReverted, true},
		{errors.New("intrinsic gas too low: gas 1, minimum needed 21000"), KindIntrinsicGas, true},
		{errors.New("429 Too Many Requests"), KindRateLimited, false},
		{fmt.Errorf("post: %w", context.DeadlineExceeded), KindTimeout, false},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, KindConnectionRefused, false},
		{errors.New("something odd"), KindUnknown, false},
		{errors.New("context deadline exceeded"), KindTimeout, false},
		{errors.New("daily request count exceeded, upgrade your plan"), KindRateLimited, false},
		{errors.New("compute units per second capacity exceeded"), KindRateLimited, false},
		{errors.New("header not found"), KindNodeBehind, false},
		{errors.New("missing trie node 0xabc (path )"), KindNodeBehind, false},
		{errors.New("historical state 21f0cb956f4a4f37 is not available"), KindNodeBehind, false},
		{errors.New("invalid sender"), KindInvalidTx, true},
		{errors.New("transaction type not supported"), KindInvalidTx, true},
		{errors.New("max fee per gas less than block base fee: address 0x1"), KindFeeCapTooLow, true},
		{errors.New("tx fee (2.10 ether) exceeds the configured cap (1.00 ether)"), KindFeeTooHigh, true},
		{errors.New("exceeds block gas limit"), KindGasLimit, true},
	}
	for _, tt := range tests {
		kind, det := Classify(tt.err)
		if kind != tt.kind || det != tt.deterministic {
			t.Errorf("Classify(%v) = %s, %v; want %s, %v", tt.err, kind, det, tt.kind, tt.deterministic)
		}
	}
	if k, det := Classify(nil); k != KindNone || !det {
		t.Errorf("Classify(nil) = %s, %v", k, det)
	}
}

func TestERC20TransferData(t *testing.T) {
	to := common.HexToAddress("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
	data := ERC20TransferData(to, big.NewInt(1500000))
	want := "a9059cbb" + "0000000000000000000000005aaeb6053f3e94c9b9a09f33669435e7ef1beaed" +
		"000000000000000000000000000000000000000000000000000000000016e360"
	if got := common.Bytes2Hex(data); got != want {
		t.Errorf("data = %s\nwant   %s", got, want)
	}
	if sel := crypto.Keccak256([]byte("transfer(address,uint256)"))[:4]; common.Bytes2Hex(sel) != "a9059cbb" {
		t.Errorf("selector = %x", sel)
	}
}

func TestSignTransferChecksSender(t *testing.T) {
	key, _ := crypto.GenerateKey()
	s := KeySigner{Key: key}
	call := TransferCall(s.Address(), nil, common.HexToAddress("0x01"), big.NewInt(5))
	fees := Fees{MaxFeePerGas: big.NewInt(100), MaxPriorityFeePerGas: big.NewInt(1)}
	tx, err := SignTransfer(context.Background(), s, big.NewInt(1337), 4, 21000, fees, call)
	if err != nil {
		t.Fatal(err)
	}
	from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(1337)), tx)
	if err != nil || from != s.Address() || tx.Nonce() != 4 || tx.Value().Int64() != 5 || tx.Type() != types.DynamicFeeTxType {
		t.Fatalf("signed tx wrong: from %s nonce %d value %s type %d err %v", from.Hex(), tx.Nonce(), tx.Value(), tx.Type(), err)
	}

	other, _ := crypto.GenerateKey()
	_, err = SignTransfer(context.Background(), KeySigner{Key: other}, big.NewInt(1337), 4, 21000, fees, call)
	if !errors.Is(err, ErrWrongSender) {
		t.Errorf("signing with another key: err = %v, want ErrWrongSender", err)
	}
	// A signer not known to sign with its own key in this process (remote,
	// HSM, MPC) has each signature recovered and checked.
	_, err = SignTransfer(context.Background(), digestOnly{KeySigner{Key: other}}, big.NewInt(1337), 4, 21000, fees, call)
	if !errors.Is(err, ErrWrongSender) {
		t.Errorf("a remote signature from another key: err = %v, want ErrWrongSender", err)
	}
	if _, err = SignTransfer(context.Background(), digestOnly{s}, big.NewInt(1337), 4, 21000, fees, call); err != nil {
		t.Errorf("a remote signature from the right key: %v", err)
	}

	token := common.HexToAddress("0x0000000000000000000000000000000000000b0b")
	tc := TransferCall(s.Address(), &token, common.HexToAddress("0x02"), big.NewInt(7))
	if tc.To != token || tc.Value.Sign() != 0 || len(tc.Data) != 68 {
		t.Errorf("token call = %+v", tc)
	}
}

func BenchmarkSignTransfer(b *testing.B) {
	key, _ := crypto.GenerateKey()
	s := KeySigner{Key: key}
	call := TransferCall(s.Address(), nil, common.HexToAddress("0x01"), big.NewInt(5))
	fees := Fees{MaxFeePerGas: big.NewInt(100), MaxPriorityFeePerGas: big.NewInt(1)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := SignTransfer(context.Background(), s, big.NewInt(1337), uint64(i), 21000, fees, call); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSignTransferLegacyAndBack(t *testing.T) {
	key, _ := crypto.GenerateKey()
	s := KeySigner{Key: key}
	call := TransferCall(s.Address(), nil, common.HexToAddress("0x01"), big.NewInt(5))
	legacy := Fees{MaxFeePerGas: big.NewInt(300), MaxPriorityFeePerGas: big.NewInt(300), Legacy: true}
	tx, err := SignTransfer(context.Background(), s, big.NewInt(1337), 9, 21000, legacy, call)
	if err != nil {
		t.Fatal(err)
	}
	if tx.Type() != types.LegacyTxType || tx.GasPrice().Int64() != 300 || tx.ChainId().Int64() != 1337 {
		t.Fatalf("legacy tx: type %d gas price %s chain id %s; want an EIP-155 legacy tx at 300", tx.Type(), tx.GasPrice(), tx.ChainId())
	}
	// A replacement reads fees and call back from the stored transaction.
	if got := FeesOf(tx); !got.Legacy || got.MaxFeePerGas.Int64() != 300 || got.MaxPriorityFeePerGas.Int64() != 300 {
		t.Errorf("FeesOf(legacy) = %+v", got)
	}
	dyn, err := SignTransfer(context.Background(), s, big.NewInt(1337), 9, 21000, Fees{MaxFeePerGas: big.NewInt(100), MaxPriorityFeePerGas: big.NewInt(2)}, call)
	if err != nil {
		t.Fatal(err)
	}
	if got := FeesOf(dyn); got.Legacy || got.MaxFeePerGas.Int64() != 100 || got.MaxPriorityFeePerGas.Int64() != 2 {
		t.Errorf("FeesOf(dynamic) = %+v", got)
	}
	back := CallOf(s.Address(), dyn)
	if back.To != call.To || back.Value.Cmp(call.Value) != 0 || back.From != s.Address() || len(back.Data) != 0 {
		t.Errorf("CallOf = %+v, want %+v", back, call)
	}
}

// digestOnly hides everything of a signer but SignDigest, as a remote
// signer looks to SignTransfer.
type digestOnly struct{ s DigestSigner }

func (d digestOnly) SignDigest(ctx context.Context, digest [32]byte) ([]byte, error) {
	return d.s.SignDigest(ctx, digest)
}
