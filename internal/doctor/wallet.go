package doctor

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/signer"
	"github.com/sluicepay/sluice/internal/store"
)

// Gas a pending payout is assumed to need, priced at twice the gas price.
const (
	nativeTransferGas = 21_000
	tokenTransferGas  = 100_000
	maxPendingPages   = 100 // of 100 payouts each
)

// checkWallets checks the signer and the balances of every hot wallet of
// ch: the native coin and each configured token.
func checkWallets(ctx context.Context, ch config.Chain, cp *chainProbe, db *store.DB, opts Options) []Result {
	var out []Result
	for _, w := range ch.HotWallets {
		addr := common.HexToAddress(w.Address)
		out = append(out, checkSigner(ctx, ch.Name, w, opts))
		var p *pending
		var perr error
		if db != nil {
			p, perr = pendingNeeds(ctx, db, ch, addr)
		}
		out = append(out, checkBalance(ctx, ch, addr, cp, p, perr, opts))
		for _, tok := range ch.Tokens {
			out = append(out, checkTokenBalance(ctx, ch, tok, addr, cp, p, perr, opts))
		}
	}
	return out
}

// checkSigner opens a wallet's keystore and has it sign a test digest that
// must recover to the wallet's address.
func checkSigner(ctx context.Context, chain string, w config.HotWallet, opts Options) Result {
	addr := common.HexToAddress(w.Address)
	r := Result{Check: fmt.Sprintf("signer %s %s", chain, addr.Hex())}
	if w.Signer.Type != "keystore" {
		return checkOtherSigner(ctx, r, addr, w.Signer, opts)
	}
	pass, err := w.Signer.Passphrase()
	if err != nil {
		return fail(r, err.Error(), fmt.Sprintf("hot wallet %s: set passphrase_file or $%s", addr.Hex(), w.Signer.PassphraseEnv))
	}
	ks, err := signer.OpenKeystore(w.Signer.Keystore, pass)
	if err != nil {
		return fail(r, err.Error(), fmt.Sprintf("hot wallet %s: check signer.keystore (%s) and its passphrase", addr.Hex(), w.Signer.Keystore))
	}
	if ks.Address() != addr {
		return fail(r, "the keystore holds the key of "+ks.Address().Hex(),
			fmt.Sprintf("hot wallet %s: point signer.keystore at this wallet's key, or fix the address", addr.Hex()))
	}
	if err := signAndRecover(ctx, ks); err != nil {
		return fail(r, err.Error(), fmt.Sprintf("hot wallet %s: the key cannot sign: replace the keystore", addr.Hex()))
	}
	r.Status, r.Detail = OK, "keystore opens; a test signature recovers to the wallet"
	return r
}

// checkOtherSigner opens a pkcs11, remote or failover signer, checks
// whose key it holds and asks its health check (a remote signer never signs
// a bare digest).
func checkOtherSigner(ctx context.Context, r Result, addr common.Address, s config.Signer, opts Options) Result {
	if opts.OpenSigner == nil {
		r.Status, r.Detail = Warn, s.Type+" signer not checked"
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	sg, err := opts.OpenSigner(ctx, s, "signer")
	if err != nil {
		return fail(r, err.Error(), fmt.Sprintf("hot wallet %s: check its %s signer's settings and that it is up", addr.Hex(), s.Type))
	}
	if c, ok := sg.(interface{ Close() }); ok {
		defer c.Close()
	}
	if sg.Address() != addr {
		return fail(r, "the signer holds the key of "+sg.Address().Hex(),
			fmt.Sprintf("hot wallet %s: point the signer at this wallet's key, or fix the address", addr.Hex()))
	}
	if err := signer.Health(ctx, sg); err != nil {
		return fail(r, err.Error(), fmt.Sprintf("hot wallet %s: the %s signer cannot sign now", addr.Hex(), s.Type))
	}
	r.Status, r.Detail = OK, s.Type+" signer answers for the wallet and is healthy"
	return r
}

func signAndRecover(ctx context.Context, ks *signer.Keystore) error {
	digest := crypto.Keccak256Hash([]byte("sluice doctor check"))
	sig, err := ks.SignDigest(ctx, digest)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	pub, err := crypto.SigToPub(digest[:], sig)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	if crypto.PubkeyToAddress(*pub) != ks.Address() {
		return errors.New("the test signature recovers to another address")
	}
	return nil
}

// checkBalance compares a wallet's native balance with what its pending
// payouts (queued, submitted, stuck) need: their native amounts plus an
// estimate of gas for every one of them. p is nil without a database.
func checkBalance(ctx context.Context, ch config.Chain, addr common.Address, cp *chainProbe, p *pending, perr error, opts Options) Result {
	r := Result{Check: fmt.Sprintf("balance %s %s", ch.Name, addr.Hex())}
	if len(cp.usable) == 0 {
		return fail(r, "no usable upstream to read it", fmt.Sprintf("chain %s: fix its upstreams first", ch.Name))
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	var bal, price hexutil.Big
	c := cp.usable[0]
	for _, q := range []struct {
		result *hexutil.Big
		method string
		params []any
	}{{&bal, "eth_getBalance", []any{addr, "latest"}}, {&price, "eth_gasPrice", nil}} {
		if _, err := c.call(ctx, q.result, q.method, q.params...); err != nil {
			return fail(r, q.method+": "+err.Error(), fmt.Sprintf("upstream %s: check it answers %s", c.shown, q.method))
		}
	}
	dec := int(*ch.NativeDecimals)
	have := fmt.Sprintf("%s %s", formatUnits(bal.ToInt(), dec), ch.NativeSymbol)
	if r, done := withoutPending(r, have, p, perr); done {
		return r
	}
	need := new(big.Int).Add(p.amount(ch.NativeSymbol), p.gas(ch.NativeSymbol, price.ToInt()))
	r.Detail = fmt.Sprintf("%s; %d pending payouts need %s %s (gas included)", have, p.total(), formatUnits(need, dec), ch.NativeSymbol)
	if bal.ToInt().Cmp(need) < 0 {
		short := new(big.Int).Sub(need, bal.ToInt())
		r.Status, r.Advice = Fail, fmt.Sprintf("hot wallet %s on %s is short: send it at least %s %s", addr.Hex(), ch.Name, formatUnits(short, dec), ch.NativeSymbol)
		return r
	}
	r.Status = OK
	if bal.ToInt().Sign() == 0 {
		r.Status, r.Advice = Warn, fmt.Sprintf("hot wallet %s on %s is empty: fund it before payouts arrive", addr.Hex(), ch.Name)
	}
	return r
}

// pendingStatuses are the statuses whose payouts still take money from
// the wallet: nothing of theirs is mined yet.
var pendingStatuses = []payout.Status{payout.StatusQueued, payout.StatusSigningOffline, payout.StatusSubmitted, payout.StatusStuck}

// pending is what a wallet's pending payouts need, per asset symbol.
// withoutPending ends a balance check that cannot compare with the pending
// payouts: FAIL when they could not be read, OK (the balance alone) when
// there is no database. It says whether it ended r.
func withoutPending(r Result, have string, p *pending, perr error) (Result, bool) {
	switch {
	case perr != nil:
		return fail(r, have+"; "+perr.Error(), "the payouts cannot be read: check the database"), true
	case p == nil:
		r.Status, r.Detail = OK, have+"; pending payouts unknown (no database)"
		return r, true
	}
	return r, false
}

type pending struct {
	counts  map[string]int
	amounts map[string]*big.Int
}

// pendingNeeds sums the wallet's pending payouts on ch by asset.
func pendingNeeds(ctx context.Context, db *store.DB, ch config.Chain, addr common.Address) (*pending, error) {
	p := &pending{counts: map[string]int{}, amounts: map[string]*big.Int{}}
	for _, st := range pendingStatuses {
		f := payout.ListFilter{Status: st, Limit: store.MaxListLimit}
		for range maxPendingPages {
			ps, more, err := db.ListPayouts(ctx, f)
			if err != nil {
				return nil, fmt.Errorf("list %s payouts: %w", st, err)
			}
			for _, x := range ps {
				if x.ChainID == ch.ChainID && x.Sender == addr {
					p.add(x)
				}
			}
			if !more || len(ps) == 0 {
				break
			}
			f.StartingAfter = ps[len(ps)-1].ID
		}
	}
	return p, nil
}

func (p *pending) add(x *payout.Payout) {
	p.counts[x.Asset]++
	if p.amounts[x.Asset] == nil {
		p.amounts[x.Asset] = new(big.Int)
	}
	p.amounts[x.Asset].Add(p.amounts[x.Asset], x.Amount)
}

// amount is what the pending payouts in asset add up to.
func (p *pending) amount(asset string) *big.Int {
	if a := p.amounts[asset]; a != nil {
		return new(big.Int).Set(a)
	}
	return new(big.Int)
}

// total is the number of pending payouts, every asset.
func (p *pending) total() int {
	n := 0
	for _, c := range p.counts {
		n += c
	}
	return n
}

// gas estimates the fees of every pending payout at twice price: a
// native transfer's gas for those in native, a token transfer's for the
// others.
func (p *pending) gas(native string, price *big.Int) *big.Int {
	units := int64(0)
	for asset, c := range p.counts {
		per := int64(tokenTransferGas)
		if asset == native {
			per = nativeTransferGas
		}
		units += int64(c) * per
	}
	return new(big.Int).Mul(big.NewInt(2*units), price)
}

// formatUnits writes base units as a decimal with the given decimals.
func formatUnits(v *big.Int, decimals int) string {
	s := new(big.Int).Abs(v).String()
	if len(s) <= decimals {
		s = strings.Repeat("0", decimals-len(s)+1) + s
	}
	whole, frac := s[:len(s)-decimals], strings.TrimRight(s[len(s)-decimals:], "0")
	if v.Sign() < 0 {
		whole = "-" + whole
	}
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}
