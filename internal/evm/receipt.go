package evm

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// Receipt is what Sluice reads of a mined transaction's receipt.
type Receipt struct {
	TxHash            common.Hash
	BlockHash         common.Hash
	BlockNumber       uint64
	TransactionIndex  uint
	GasUsed           uint64
	EffectiveGasPrice *big.Int
	// L1Fee is what an OP-stack chain (Optimism, Base, ...) charges on top
	// of the gas for posting the transaction to L1: its receipt's l1Fee.
	// Nil on other chains.
	L1Fee   *big.Int
	Success bool // status 1
}

// Fee is what the transaction cost its sender: gasUsed ×
// effectiveGasPrice, plus the L1 data fee where the chain charges one.
func (r *Receipt) Fee() *big.Int {
	fee := new(big.Int).SetUint64(r.GasUsed)
	if r.EffectiveGasPrice != nil {
		fee.Mul(fee, r.EffectiveGasPrice)
	} else {
		fee.SetUint64(0)
	}
	if r.L1Fee != nil {
		fee.Add(fee, r.L1Fee)
	}
	return fee
}

// leanReceipt is the part of a receipt a sender reads. Decoding only these
// fields skips the logs and the bloom, which are most of a receipt's bytes
// and of its decoding cost (a block of token transfers is mostly logs).
type leanReceipt struct {
	TxHash            common.Hash    `json:"transactionHash"`
	BlockHash         common.Hash    `json:"blockHash"`
	BlockNumber       *hexutil.Big   `json:"blockNumber"`
	GasUsed           hexutil.Uint64 `json:"gasUsed"`
	EffectiveGasPrice *hexutil.Big   `json:"effectiveGasPrice"`
	L1Fee             *hexutil.Big   `json:"l1Fee"` // OP-stack chains only
	Status            hexutil.Uint64 `json:"status"`
	TransactionIndex  hexutil.Uint   `json:"transactionIndex"`
}

// receipt returns the receipt with the lean fields set (nil for nil).
func (r *leanReceipt) receipt() *Receipt {
	if r == nil {
		return nil
	}
	out := &Receipt{TxHash: r.TxHash, BlockHash: r.BlockHash, GasUsed: uint64(r.GasUsed),
		Success: r.Status == 1, TransactionIndex: uint(r.TransactionIndex)}
	if r.BlockNumber != nil {
		out.BlockNumber = r.BlockNumber.ToInt().Uint64()
	}
	if r.EffectiveGasPrice != nil {
		out.EffectiveGasPrice = r.EffectiveGasPrice.ToInt()
	}
	if r.L1Fee != nil {
		out.L1Fee = r.L1Fee.ToInt()
	}
	return out
}
