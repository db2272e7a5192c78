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
	// Outstanding, when not nil, says how many payouts a hot wallet holds
	// that are not yet mined (queued that it read, and in flight), as its
	// sender last counted them, with the count's sequence number (it grows
	// with every count); false: not counted yet. Assign gives a new payout
	// to the wallet with the fewest, counting also what it assigned since.
	Outstanding func(chain string, wallet common.Address) (n int, seq uint64, known bool)

	mu    sync.Mutex
	next  map[string]int              // round-robin position per chain
	since map[walletKey]assignedSince // what Assign gave each wallet since its last count
}

type walletKey struct {
	chain  string
	wallet common.Address
}

// assignedSince counts the payouts Assign gave a wallet since the count
// seq of its sender.
type assignedSince struct {
	seq uint64
	n   int
}

// Assign picks the hot wallet that will pay a new payout of amount of an
// asset on a chain, so that sending throughput grows with the wallets:
// among those not rotated away and not known unable to cover the amount
// (when none can, all of them; the payout then waits for a top-up where it
// lands), the one with the fewest payouts outstanding (Outstanding, plus
// those assigned since its sender counted); wallets that tie take turns. A
// wallet whose sender falls behind (a slow signer, a stuck nonce) thus
// gets fewer new payouts until it catches up.
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
	if c.Outstanding == nil {
		return c.takeTurns(ch.Name, ws)
	}
	type load struct {
		n   int
		seq uint64
	}
	loads := make([]load, len(ws))
	for i, w := range ws {
		if n, seq, known := c.Outstanding(ch.Name, w); known {
			loads[i] = load{n, seq}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.initLocked()
	start := c.next[ch.Name]
	best, bestLoad := -1, 0
	for k := range ws {
		i := (start + k) % len(ws)
		key := walletKey{ch.Name, ws[i]}
		s := c.since[key]
		if s.seq != loads[i].seq { // counted again since: what was assigned before is in the count
			s = assignedSince{seq: loads[i].seq}
			c.since[key] = s
		}
		if l := loads[i].n + s.n; best < 0 || l < bestLoad {
			best, bestLoad = i, l
		}
	}
	key := walletKey{ch.Name, ws[best]}
	s := c.since[key]
	s.n++
	c.since[key] = s
	c.next[ch.Name] = best + 1
	return ws[best]
}

// initLocked makes Assign's maps on first use; c.mu is held.
func (c *Catalog) initLocked() {
	if c.next == nil {
		c.next, c.since = map[string]int{}, map[walletKey]assignedSince{}
	}
}

// takeTurns picks the chain's wallets in turn.
func (c *Catalog) takeTurns(chain string, ws []common.Address) common.Address {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.initLocked()
	i := c.next[chain] % len(ws)
	c.next[chain] = i + 1
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
