package payout

import (
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/common"
)

// Asset is something a chain can pay: its native coin (Token nil) or an
// ERC-20 token.
type Asset struct {
	Symbol   string
	Token    *common.Address // nil for the native coin
	Decimals uint8
}

// Native reports whether the asset is the chain's native coin.
func (a Asset) Native() bool { return a.Token == nil }

// Chain is a configured chain as the domain sees it.
type Chain struct {
	Name          string
	ChainID       uint64
	Confirmations uint64
	Assets        map[string]Asset // by symbol
	HotWallet     common.Address   // the first hot wallet
	HotWallets    []common.Address // every hot wallet, HotWallet first; empty means just HotWallet
}

// NativeSymbol returns the symbol of the chain's native coin (the asset
// without a token address), or "" when none is configured.
func (c Chain) NativeSymbol() string {
	for sym, a := range c.Assets {
		if a.Token == nil {
			return sym
		}
	}
	return ""
}

// Wallets lists the chain's hot wallets.
func (c Chain) Wallets() []common.Address {
	if len(c.HotWallets) == 0 {
		return []common.Address{c.HotWallet}
	}
	return c.HotWallets
}

// Catalog is the set of chains payouts may be made on.
type Catalog struct {
	Chains map[string]Chain // by name
	// Available, when not nil, says how much of an asset a hot wallet can
	// still spend after what it has in flight, as its sender last saw it
	// (false: not known yet). Assign uses it to skip wallets that cannot
	// cover a payout.
	Available func(chain string, wallet common.Address, asset string) (*big.Int, bool)
	// Retired, when not nil, says whether a hot wallet is rotated away
	// (Rotation): Assign never picks it while another wallet remains.
	Retired func(chain string, wallet common.Address) bool
	// RetiredChanged, when not nil, is told that a rotation was just made,
	// so that Retired answers from it at once.
	RetiredChanged func()

	mu   sync.Mutex
	next map[string]int // round-robin position per chain
}

// Assign picks the hot wallet that will pay a new payout of amount of an
// asset on a chain: the wallets take turns, so that sending throughput
// grows with their number, skipping those known unable to cover the
// amount (when none can, all take turns and the payout waits for a
// top-up where it lands).
func (c *Catalog) Assign(ch Chain, asset string, amount *big.Int) common.Address {
	ws := ch.Wallets()
	if len(ws) == 1 {
		return ws[0]
	}
	if c.Retired != nil {
		active := make([]common.Address, 0, len(ws))
		for _, w := range ws {
			if !c.Retired(ch.Name, w) {
				active = append(active, w)
			}
		}
		if len(active) > 0 {
			ws = active
		}
		if len(ws) == 1 {
			return ws[0]
		}
	}
	if c.Available != nil && amount != nil {
		able := make([]common.Address, 0, len(ws))
		for _, w := range ws {
			if avail, known := c.Available(ch.Name, w, asset); !known || avail.Cmp(amount) >= 0 {
				able = append(able, w)
			}
		}
		if len(able) > 0 {
			ws = able
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next == nil {
		c.next = map[string]int{}
	}
	i := c.next[ch.Name] % len(ws)
	c.next[ch.Name] = i + 1
	return ws[i]
}

// Lookup finds a chain and an asset on it, with errors that name the field.
func (c *Catalog) Lookup(chain, asset string) (Chain, Asset, error) {
	ch, ok := c.Chains[chain]
	if !ok {
		return Chain{}, Asset{}, &FieldError{Field: "chain", Code: CodeUnknownChain,
			Message: fmt.Sprintf("chain %q is not configured (known: %s)", truncate(chain, 64), strings.Join(c.chainNames(), ", "))}
	}
	a, ok := ch.Assets[asset]
	if !ok {
		names := make([]string, 0, len(ch.Assets))
		for s := range ch.Assets {
			names = append(names, s)
		}
		sort.Strings(names)
		return Chain{}, Asset{}, &FieldError{Field: "asset", Code: CodeUnknownAsset,
			Message: fmt.Sprintf("asset %q is not configured on chain %q (known: %s)", truncate(asset, 64), chain, strings.Join(names, ", "))}
	}
	return ch, a, nil
}

// Names lists the chains' names in order.
func (c *Catalog) Names() []string { return c.chainNames() }

func (c *Catalog) chainNames() []string {
	names := make([]string, 0, len(c.Chains))
	for n := range c.Chains {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
