package contracts

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// The batch contracts' names, as Load knows them.
const (
	// ExecutorName is the EIP-7702 executor a hot wallet delegates its code
	// to; the wallet then sends its batches to itself.
	ExecutorName = "SluiceBatchExecutor"
	// BatchName is the deployed batch contract for chains without EIP-7702.
	BatchName = "SluiceBatch"
)

// Packed recipients: RecipientSize bytes each, a 20-byte address followed by
// a BatchAmountBits-bit big-endian amount. Both batch contracts read this
// layout; it costs less calldata than an ABI-encoded array.
const (
	RecipientSize   = 32
	BatchAmountBits = 96
	amountSize      = RecipientSize - common.AddressLength
)

// ErrBadPacked reports packed recipients the batch contracts would reject.
var ErrBadPacked = errors.New("contracts: packed recipients must be a non-empty multiple of 32 bytes")

var maxBatchAmount = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), BatchAmountBits), big.NewInt(1))

// MaxBatchAmount returns the largest amount one batch recipient can be paid,
// 2^96 - 1 base units. A larger payout goes in a transaction of its own.
func MaxBatchAmount() *big.Int { return new(big.Int).Set(maxBatchAmount) }

// BatchAmountFits reports whether amount can be paid in a batch: it is not
// negative and below 2^96.
func BatchAmountFits(amount *big.Int) bool {
	return amount != nil && amount.Sign() >= 0 && amount.BitLen() <= BatchAmountBits
}

// PackRecipients encodes the recipients for payNative and payToken. It
// refuses an empty batch, lists of different lengths, the zero address and
// amounts that do not fit (see BatchAmountFits), as the contracts would.
func PackRecipients(tos []common.Address, amounts []*big.Int) ([]byte, error) {
	if len(tos) == 0 || len(tos) != len(amounts) {
		return nil, fmt.Errorf("contracts: pack %d recipients with %d amounts: need the same non-zero number", len(tos), len(amounts))
	}
	packed := make([]byte, len(tos)*RecipientSize)
	for i, to := range tos {
		if to == (common.Address{}) {
			return nil, fmt.Errorf("contracts: recipient %d is the zero address", i)
		}
		if !BatchAmountFits(amounts[i]) {
			return nil, fmt.Errorf("contracts: recipient %d amount %v is not in [0, 2^96)", i, amounts[i])
		}
		r := packed[i*RecipientSize : (i+1)*RecipientSize]
		copy(r, to.Bytes())
		amounts[i].FillBytes(r[common.AddressLength:])
	}
	return packed, nil
}

// UnpackRecipients decodes what PackRecipients encoded.
func UnpackRecipients(packed []byte) ([]common.Address, []*big.Int, error) {
	if err := checkPacked(packed); err != nil {
		return nil, nil, err
	}
	n := len(packed) / RecipientSize
	tos, amounts := make([]common.Address, n), make([]*big.Int, n)
	for i := range n {
		r := packed[i*RecipientSize : (i+1)*RecipientSize]
		tos[i] = common.BytesToAddress(r[:common.AddressLength])
		amounts[i] = new(big.Int).SetBytes(r[common.AddressLength:])
	}
	return tos, amounts, nil
}

func checkPacked(packed []byte) error {
	if len(packed) == 0 || len(packed)%RecipientSize != 0 {
		return fmt.Errorf("%w, got %d", ErrBadPacked, len(packed))
	}
	return nil
}

func mustLoad(name string) func() *Artifact {
	return sync.OnceValue(func() *Artifact {
		a, err := Load(name)
		if err != nil {
			// Embedded at build time and checked by the tests: a broken
			// build, not a runtime condition.
			panic(err)
		}
		return a
	})
}

var (
	loadExecutor = mustLoad(ExecutorName)
	loadBatch    = mustLoad(BatchName)
)

func cloneArtifact(a *Artifact) *Artifact {
	c := *a
	c.Bytecode = bytes.Clone(a.Bytecode)
	c.DeployedBytecode = bytes.Clone(a.DeployedBytecode)
	return &c
}

// BatchExecutor returns the compiled EIP-7702 executor. It has no
// constructor arguments: its creation code is a deployment's whole data. The
// caller may modify the returned value: it is a copy.
func BatchExecutor() *Artifact { return cloneArtifact(loadExecutor()) }

// Batch returns the compiled deployed-mode batch contract. It has no
// constructor arguments. The caller may modify the returned value: it is a
// copy.
func Batch() *Artifact { return cloneArtifact(loadBatch()) }

// ExecutorNativeCall returns the data of the transaction a delegated hot
// wallet sends to itself to pay packed recipients in the native coin.
func ExecutorNativeCall(packed []byte) ([]byte, error) {
	return pack(loadExecutor(), "payNative", packed)
}

// ExecutorTokenCall returns the data of the transaction a delegated hot
// wallet sends to itself to pay packed recipients in token.
func ExecutorTokenCall(token common.Address, packed []byte) ([]byte, error) {
	return pack(loadExecutor(), "payToken", packed, token)
}

// BatchNativeCall returns the data of a call to the deployed batch contract
// paying packed recipients in the native coin. The call's value must be the
// sum of the amounts.
func BatchNativeCall(packed []byte) ([]byte, error) {
	return pack(loadBatch(), "payNative", packed)
}

// BatchTokenCall returns the data of a call to the deployed batch contract
// paying packed recipients in token, pulled from the caller with
// transferFrom. The caller approves the batch contract for exactly the sum
// of the amounts first.
func BatchTokenCall(token common.Address, packed []byte) ([]byte, error) {
	return pack(loadBatch(), "payToken", packed, token)
}

// pack ABI-encodes a call whose last argument is the packed recipients.
func pack(a *Artifact, method string, packed []byte, args ...any) ([]byte, error) {
	if err := checkPacked(packed); err != nil {
		return nil, err
	}
	data, err := a.ABI.Pack(method, append(args, packed)...)
	if err != nil {
		return nil, fmt.Errorf("contracts: %s.%s: %w", a.ContractName, method, err)
	}
	return data, nil
}

// RecipientFailedIndex decodes the revert data of either batch contract's
// RecipientFailed(index) error: the 0-based index of the recipient that
// rejected its payment. ok is false for any other revert.
func RecipientFailedIndex(revertData []byte) (index int, ok bool) {
	id := loadExecutor().ABI.Errors["RecipientFailed"].ID
	if len(revertData) != 4+32 || !bytes.Equal(revertData[:4], id[:4]) {
		return 0, false
	}
	word := revertData[4:]
	// An index is below the number of recipients, so anything that does
	// not fit in 8 bytes is not ours.
	if !bytes.Equal(word[:24], make([]byte, 24)) {
		return 0, false
	}
	i := binary.BigEndian.Uint64(word[24:])
	if i > math.MaxInt32 {
		return 0, false
	}
	return int(i), true
}

// IsDelegatedTo reports whether code is an EIP-7702 delegation designator
// (0xef0100 ‖ address) pointing at executor: what a hot wallet's code reads
// once its delegation to the executor is in force.
func IsDelegatedTo(code []byte, executor common.Address) bool {
	target, ok := types.ParseDelegation(code)
	return ok && target == executor
}
