package doctor

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/sluicepay/sluice/internal/config"
)

// balanceOfSelector is the first four bytes of keccak256("balanceOf(address)").
var balanceOfSelector = []byte{0x70, 0xa0, 0x82, 0x31}

// checkTokenBalance compares a wallet's balance of one ERC-20 token
// (balanceOf, read from the first usable upstream) with the sum of its
// pending payouts in that token. Their gas is in the native check. p is
// nil without a database.
func checkTokenBalance(ctx context.Context, ch config.Chain, tok config.Token, addr common.Address, cp *chainProbe, p *pending, perr error, opts Options) Result {
	r := Result{Check: fmt.Sprintf("balance %s %s %s", ch.Name, addr.Hex(), tok.Symbol)}
	if len(cp.usable) == 0 {
		return fail(r, "no usable upstream to read it", fmt.Sprintf("chain %s: fix its upstreams first", ch.Name))
	}
	bal, err := balanceOf(ctx, cp.usable[0], common.HexToAddress(tok.Address), addr, opts)
	if err != nil {
		return fail(r, err.Error(), tokenAdvice(ch, tok, cp.usable[0], err))
	}
	dec := int(tok.Decimals)
	have := fmt.Sprintf("%s %s", formatUnits(bal, dec), tok.Symbol)
	if r, done := withoutPending(r, have, p, perr); done {
		return r
	}
	need := p.amount(tok.Symbol)
	r.Detail = fmt.Sprintf("%s; %d pending payouts need %s %s", have, p.counts[tok.Symbol], formatUnits(need, dec), tok.Symbol)
	switch {
	case bal.Cmp(need) < 0:
		short := new(big.Int).Sub(need, bal)
		r.Status, r.Advice = Fail, fmt.Sprintf("hot wallet %s on %s is short of %s: send it at least %s %s (token %s)",
			addr.Hex(), ch.Name, tok.Symbol, formatUnits(short, dec), tok.Symbol, tok.Address)
	case bal.Sign() == 0:
		r.Status, r.Advice = Warn, fmt.Sprintf("hot wallet %s on %s holds no %s: fund it before %s payouts arrive",
			addr.Hex(), ch.Name, tok.Symbol, tok.Symbol)
	default:
		r.Status = OK
	}
	return r
}

// errNoContract is a token address with no code: eth_call answers "0x".
var errNoContract = errors.New("no contract at this address")

// balanceOf calls token.balanceOf(holder) on c.
func balanceOf(ctx context.Context, c *rpcClient, token, holder common.Address, opts Options) (*big.Int, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	data := append(append([]byte{}, balanceOfSelector...), common.LeftPadBytes(holder.Bytes(), 32)...)
	call := map[string]any{"to": token, "data": hexutil.Bytes(data)}
	var out hexutil.Bytes
	if _, err := c.call(ctx, &out, "eth_call", call, "latest"); err != nil {
		return nil, fmt.Errorf("balanceOf: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("balanceOf at %s: %w", token.Hex(), errNoContract)
	}
	if len(out) != 32 {
		return nil, fmt.Errorf("balanceOf at %s: %d bytes answered, want 32: not an ERC-20 token", token.Hex(), len(out))
	}
	return new(big.Int).SetBytes(out), nil
}

// tokenAdvice is the one line of advice for a balance that cannot be read.
func tokenAdvice(ch config.Chain, tok config.Token, c *rpcClient, err error) string {
	if errors.Is(err, errNoContract) {
		return fmt.Sprintf("chain %s: check the address of token %s (%s): nothing is deployed there on chain %d", ch.Name, tok.Symbol, tok.Address, ch.ChainID)
	}
	return fmt.Sprintf("upstream %s: check it answers eth_call, and that token %s (%s) is an ERC-20 contract", c.shown, tok.Symbol, tok.Address)
}
