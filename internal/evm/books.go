package evm

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// What a reconciliation reads of the chain: balances after a block, and
// the token transfers a wallet received over a range of blocks.

// logsSpan bounds the blocks of one eth_getLogs call: providers refuse
// wide ranges (many at 2,000 to 10,000 blocks).
const logsSpan = 2000

// BalanceAt returns the account's native balance after block number. A
// node that no longer keeps that block's state (a full node keeps about
// the last 128) answers an error.
func (c *Client) BalanceAt(ctx context.Context, account common.Address, number uint64) (*big.Int, error) {
	var b hexutil.Big
	if err := c.call(ctx, &b, "eth_getBalance", account, hexutil.EncodeUint64(number)); err != nil {
		return nil, fmt.Errorf("balance of %s at block %d: %w", account.Hex(), number, err)
	}
	return b.ToInt(), nil
}

// TokenBalanceAt returns token.balanceOf(account) after block number: 0
// before the token's contract existed.
func (c *Client) TokenBalanceAt(ctx context.Context, token, account common.Address, number uint64) (*big.Int, error) {
	out, err := c.balanceOf(ctx, token, account, hexutil.EncodeUint64(number))
	if err != nil {
		return nil, fmt.Errorf("balanceOf(%s) on %s at block %d: %w", account.Hex(), token.Hex(), number, err)
	}
	switch len(out) {
	case 0: // no code there at that block: the token was not deployed yet, nobody held any
		return new(big.Int), nil
	case 32:
		return new(big.Int).SetBytes(out), nil
	}
	return nil, fmt.Errorf("balanceOf(%s) on %s at block %d: answer of %d bytes, want 32", account.Hex(), token.Hex(), number, len(out))
}

// TokenTransfersIn sums the token's Transfer events to account in blocks
// from to to (both included) and counts them, reading the logs in spans
// of logsSpan blocks.
func (c *Client) TokenTransfersIn(ctx context.Context, token, account common.Address, from, to uint64) (*big.Int, int, error) {
	sum, n := new(big.Int), 0
	for start := from; start <= to; start += logsSpan {
		end := min(to, start+logsSpan-1)
		filter := map[string]any{
			"address":   token,
			"fromBlock": hexutil.EncodeUint64(start),
			"toBlock":   hexutil.EncodeUint64(end),
			"topics":    []any{transferTopic, nil, common.BytesToHash(account.Bytes())},
		}
		var logs []types.Log
		if err := c.call(ctx, &logs, "eth_getLogs", filter); err != nil {
			return nil, 0, fmt.Errorf("transfers of %s to %s in blocks %d-%d: %w", token.Hex(), account.Hex(), start, end, err)
		}
		for _, l := range logs {
			if l.Address != token || len(l.Topics) != 3 || l.Topics[0] != transferTopic || len(l.Data) != 32 || l.Removed {
				continue // not an ERC-20 Transfer (an ERC-721 one has 4 topics)
			}
			sum.Add(sum, new(big.Int).SetBytes(l.Data))
			n++
		}
		if end == to {
			break
		}
	}
	return sum, n, nil
}
