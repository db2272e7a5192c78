package txm

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// funds is what the wallet can still spend in one send round: its balances
// less what the transactions in flight may take (each at most gas limit ×
// max fee, plus its value; a token transfer its amount). Payouts are
// covered in queue order; one that does not fit waits.
type funds struct {
	native *big.Int
	tokens map[common.Address]*big.Int
	symbol map[common.Address]string
}

// readFunds reads the native balance and the balances of the tokens that
// ps pay (every token when ps is nil), less the reservations of the
// flights, and fires the low-balance alerts.
func (s *Sender) readFunds(ctx context.Context, ps []*payout.Payout) (*funds, error) {
	f := &funds{tokens: map[common.Address]*big.Int{}, symbol: map[common.Address]string{}}
	bal, err := s.balance(ctx, payout.Asset{Symbol: s.cfg.Chain.NativeSymbol()})
	if err != nil {
		return nil, fmt.Errorf("balance: %w", err)
	}
	f.native = new(big.Int).Set(bal)
	symbols := make([]string, 0, len(ps))
	for _, p := range ps {
		symbols = append(symbols, p.Asset)
	}
	if ps == nil {
		for sym := range s.cfg.Chain.Assets {
			symbols = append(symbols, sym)
		}
	}
	for _, sym := range symbols {
		asset, ok := s.cfg.Chain.Assets[sym]
		if !ok || asset.Token == nil || f.tokens[*asset.Token] != nil {
			continue
		}
		b, err := s.balance(ctx, asset)
		if err != nil {
			return nil, fmt.Errorf("%s balance: %w", asset.Symbol, err)
		}
		f.tokens[*asset.Token], f.symbol[*asset.Token] = new(big.Int).Set(b), asset.Symbol
	}
	for _, fl := range s.st.flights {
		a := fl.last()
		f.native.Sub(f.native, new(big.Int).Mul(new(big.Int).SetUint64(a.GasLimit), a.MaxFeePerGas))
		f.native.Sub(f.native, fl.value)
		if fl.token != nil {
			if t := f.tokens[*fl.token]; t != nil {
				t.Sub(t, fl.amount)
			}
		}
	}
	return f, nil
}

// publish makes what is left spendable known to Available.
func (s *Sender) publish(f *funds) {
	s.availMu.Lock()
	defer s.availMu.Unlock()
	if s.avail == nil {
		s.avail = map[string]*big.Int{}
	}
	if sym := s.cfg.Chain.NativeSymbol(); sym != "" {
		s.avail[sym] = new(big.Int).Set(f.native)
	}
	for token, v := range f.tokens {
		s.avail[f.symbol[token]] = new(big.Int).Set(v)
	}
	s.st.fundsAt = time.Now()
}

// Available says how much of an asset the wallet can still spend after
// what is in flight, as last read (false: not read yet). Payouts assigned
// since are not counted. Safe for concurrent use.
func (s *Sender) Available(asset string) (*big.Int, bool) {
	s.availMu.Lock()
	defer s.availMu.Unlock()
	v, ok := s.avail[asset]
	if !ok {
		return nil, false
	}
	return new(big.Int).Set(v), true
}

// countOutstanding publishes, for Outstanding, the wallet's work not yet
// mined: its transactions in flight (a batch transaction counts once) and
// the queued payouts this round read but did not send.
func (s *Sender) countOutstanding(queued int) {
	s.availMu.Lock()
	defer s.availMu.Unlock()
	s.outstanding = len(s.st.flights) + queued
	s.outstandingSeq++
}

// Outstanding says how many payouts the wallet held that were not mined
// when its sender last counted them (after each send round), with the
// count's sequence number; false until the first count. Payouts assigned
// since are not counted, and a backlog larger than one round's read
// counts as one round's. Safe for concurrent use; payout.Catalog uses it
// to give new payouts to the least loaded wallet.
func (s *Sender) Outstanding() (n int, seq uint64, known bool) {
	s.availMu.Lock()
	defer s.availMu.Unlock()
	return s.outstanding, s.outstandingSeq, s.outstandingSeq > 0
}

// refreshFunds re-reads the balances when no send round has for a while.
func (s *Sender) refreshFunds(ctx context.Context) error {
	if time.Since(s.st.fundsAt) < s.cfg.FundsEvery {
		return nil
	}
	f, err := s.readFunds(ctx, nil)
	if err != nil {
		return err
	}
	s.publish(f)
	return nil
}

// balance returns the wallet's balance of an asset (the native coin when it
// has no token address), read once per head: balances change only with blocks, and
// the flights, which the reservation subtracts, are settled per head too. A
// balance read from a newer block than the scanned head can only be lower
// (more of the flights mined), so the reservation errs on the safe side.
func (s *Sender) balance(ctx context.Context, asset payout.Asset) (*big.Int, error) {
	st := s.st
	if st.balanceHead != st.head || st.balances == nil {
		st.balanceHead, st.balances = st.head, map[common.Address]*big.Int{}
	}
	key := common.Address{}
	if asset.Token != nil {
		key = *asset.Token
	}
	if b, ok := st.balances[key]; ok {
		return b, nil
	}
	var b *big.Int
	var err error
	if asset.Token == nil {
		b, err = s.cfg.Client.Balance(ctx, s.sender)
	} else {
		b, err = s.cfg.Client.TokenBalance(ctx, *asset.Token, s.sender)
	}
	if err != nil {
		return nil, err
	}
	st.balances[key] = b
	s.observeBalance(ctx, asset.Symbol, b)
	return b, nil
}

// takeToken reserves a token payout's amount, or says why it must wait.
func (f *funds) takeToken(p *payout.Payout, token *common.Address) (payout.Hold, bool) {
	avail := f.tokens[*token]
	if avail == nil || avail.Cmp(p.Amount) < 0 {
		return payout.Hold{PayoutID: p.ID, Reason: payout.ReasonInsufficientFunds, Detail: fmt.Sprintf(
			"the hot wallet can spend %s %s base units after what is in flight, the payout needs %s; it waits for a top-up",
			nonNegative(avail), p.Asset, p.Amount)}, true
	}
	avail.Sub(avail, p.Amount)
	return payout.Hold{}, false
}

// refundToken gives back what takeToken reserved for a plan that waits.
func (f *funds) refundToken(pl planned) {
	if len(pl.call.Data) == 0 {
		return
	}
	if avail := f.tokens[pl.call.To]; avail != nil {
		avail.Add(avail, pl.p.Amount)
	}
}

// takeNative reserves a plan's gas × max fee and value, or says why it
// must wait.
func (f *funds) takeNative(pl planned) (payout.Hold, bool) {
	need := new(big.Int).Mul(new(big.Int).SetUint64(pl.gas), pl.fees.MaxFeePerGas)
	need.Add(need, pl.call.Value)
	if f.native.Cmp(need) < 0 {
		return payout.Hold{PayoutID: pl.p.ID, Reason: payout.ReasonInsufficientFunds, Detail: fmt.Sprintf(
			"the hot wallet can spend %s wei after what is in flight, the payout needs %s (value and gas at the max fee); it waits for a top-up",
			nonNegative(f.native), need)}, true
	}
	f.native.Sub(f.native, need)
	return payout.Hold{}, false
}

func nonNegative(v *big.Int) *big.Int {
	if v == nil || v.Sign() < 0 {
		return new(big.Int)
	}
	return v
}

// observeBalance publishes a balance and fires wallet.low_balance when it
// falls below the asset's threshold (once until it rises above again).
func (s *Sender) observeBalance(ctx context.Context, asset string, bal *big.Int) {
	f, _ := new(big.Float).SetInt(bal).Float64()
	s.cfg.Metrics.balance.WithLabelValues(s.cfg.Chain.Name, s.sender.Hex(), asset).Set(f)
	threshold := s.cfg.LowBalance[asset]
	if threshold == nil {
		return
	}
	low := bal.Cmp(threshold) < 0
	if low == s.st.low[asset] {
		return
	}
	s.st.low[asset] = low
	if !low {
		s.log.Info("wallet balance back above its threshold", "asset", asset, "balance", bal, "threshold", threshold)
		return
	}
	s.log.Warn("wallet balance below its threshold: top it up", "asset", asset, "balance", bal, "threshold", threshold)
	s.alert(ctx, payout.EventWalletLowBalance, map[string]any{
		"chain": s.cfg.Chain.Name, "wallet": s.sender.Hex(), "asset": asset,
		"balance": bal.String(), "threshold": threshold.String(),
	})
}

// alert writes an event about the sender's wallet; a failure to write it
// is logged, not fatal (the condition is seen again).
func (s *Sender) alert(ctx context.Context, eventType string, data map[string]any) {
	if err := s.cfg.Store.AppendEvent(ctx, payout.WalletObjectID(s.cfg.Chain.ChainID, s.sender), eventType, data); err != nil {
		s.log.Error("could not record wallet event", "type", eventType, "err", err)
	}
}
