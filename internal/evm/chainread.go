package evm

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// HeaderByNumber is Header with go-ethereum's ethclient shape (nil: the
// latest), for the fee oracle.
func (c *Client) HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error) {
	if number == nil {
		return c.Header(ctx, nil)
	}
	n := number.Uint64()
	return c.Header(ctx, &n)
}

// FeeHistory is eth_feeHistory, with ethclient's shape, for the fee oracle.
func (c *Client) FeeHistory(ctx context.Context, blockCount uint64, lastBlock *big.Int, rewardPercentiles []float64) (*ethereum.FeeHistory, error) {
	last := "latest"
	if lastBlock != nil {
		last = hexutil.EncodeBig(lastBlock)
	}
	var res struct {
		OldestBlock  *hexutil.Big     `json:"oldestBlock"`
		Reward       [][]*hexutil.Big `json:"reward"`
		BaseFee      []*hexutil.Big   `json:"baseFeePerGas"`
		GasUsedRatio []float64        `json:"gasUsedRatio"`
	}
	if err := c.call(ctx, &res, "eth_feeHistory", hexutil.Uint(blockCount), last, rewardPercentiles); err != nil {
		return nil, err
	}
	if res.OldestBlock == nil {
		return nil, fmt.Errorf("eth_feeHistory: no oldestBlock in the answer")
	}
	h := &ethereum.FeeHistory{OldestBlock: res.OldestBlock.ToInt(), GasUsedRatio: res.GasUsedRatio}
	for _, r := range res.Reward {
		row := make([]*big.Int, len(r))
		for i, v := range r {
			row[i] = v.ToInt()
		}
		h.Reward = append(h.Reward, row)
	}
	for _, b := range res.BaseFee {
		h.BaseFee = append(h.BaseFee, b.ToInt())
	}
	return h, nil
}

// SuggestGasPrice is eth_gasPrice, for chains without EIP-1559.
func (c *Client) SuggestGasPrice(ctx context.Context) (*big.Int, error) {
	var p hexutil.Big
	err := c.call(ctx, &p, "eth_gasPrice")
	return p.ToInt(), err
}

// balanceOfSelector is the first four bytes of keccak256("balanceOf(address)").
var balanceOfSelector = []byte{0x70, 0xa0, 0x82, 0x31}

// TokenBalance returns an account's ERC-20 balance at the latest block.
func (c *Client) TokenBalance(ctx context.Context, token, account common.Address) (*big.Int, error) {
	out, err := c.balanceOf(ctx, token, account, "latest")
	if err != nil {
		return nil, err
	}
	if len(out) != 32 {
		return nil, fmt.Errorf("balanceOf(%s) on %s: answer of %d bytes, want 32", account.Hex(), token.Hex(), len(out))
	}
	return new(big.Int).SetBytes(out), nil
}

// balanceOf calls token.balanceOf(account) at block (a tag or a number)
// and returns the raw answer.
func (c *Client) balanceOf(ctx context.Context, token, account common.Address, block string) (hexutil.Bytes, error) {
	var out hexutil.Bytes
	err := c.call(ctx, &out, "eth_call", balanceOfArg(token, account), block)
	return out, err
}

// balanceOfArg is the eth_call argument of token.balanceOf(account).
func balanceOfArg(token, account common.Address) map[string]any {
	data := make([]byte, 4+32)
	copy(data, balanceOfSelector)
	copy(data[4+12:], account.Bytes())
	return map[string]any{"to": token, "input": hexutil.Bytes(data)}
}

// NonceAt returns the account's nonce after block number.
func (c *Client) NonceAt(ctx context.Context, account common.Address, number uint64) (uint64, error) {
	return c.Nonce(ctx, account, hexutil.EncodeUint64(number))
}

// TxRef names a transaction of a block: its hash, sender and nonce.
type TxRef struct {
	Hash  common.Hash    `json:"hash"`
	From  common.Address `json:"from"`
	Nonce hexutil.Uint64 `json:"nonce"`
}

// BlockTxs returns who sent each transaction of a block, and at which nonce.
func (c *Client) BlockTxs(ctx context.Context, number uint64) ([]TxRef, error) {
	var b *struct {
		Transactions []TxRef `json:"transactions"`
	}
	if err := c.call(ctx, &b, "eth_getBlockByNumber", hexutil.EncodeUint64(number), true); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("block %d: %w", number, ErrNotFound)
	}
	return b.Transactions, nil
}

// FindNonceUser finds the transaction of account that used nonce, by
// bisecting the blocks up to head for the one after which the account's
// nonce passed it (about log2(head) nonce reads and one block read). It
// returns ErrNotFound when the nonce is not used up to head.
func (c *Client) FindNonceUser(ctx context.Context, account common.Address, nonce, head uint64) (TxRef, uint64, error) {
	if n, err := c.NonceAt(ctx, account, head); err != nil {
		return TxRef{}, 0, err
	} else if n <= nonce {
		return TxRef{}, 0, fmt.Errorf("nonce %d of %s up to block %d: %w", nonce, account.Hex(), head, ErrNotFound)
	}
	lo, hi := uint64(0), head // nonce unused after lo (or lo is genesis), used after hi
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		n, err := c.NonceAt(ctx, account, mid)
		if err != nil {
			return TxRef{}, 0, err
		}
		if n > nonce {
			hi = mid
		} else {
			lo = mid
		}
	}
	txs, err := c.BlockTxs(ctx, hi)
	if err != nil {
		return TxRef{}, 0, err
	}
	for _, tx := range txs {
		if tx.From == account && uint64(tx.Nonce) == nonce {
			return tx, hi, nil
		}
	}
	return TxRef{}, 0, fmt.Errorf("nonce %d of %s: block %d has no such transaction: %w", nonce, account.Hex(), hi, ErrNotFound)
}
