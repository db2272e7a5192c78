package fees

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/sluicepay/sluice/internal/evm"
)

// percentiles returns the distinct reward percentiles of the levels,
// ascending, as eth_feeHistory takes them.
func (o *Oracle) percentiles() []float64 {
	var ps []float64
	for _, l := range o.cfg.Levels {
		if !slices.Contains(ps, float64(l.Percentile)) {
			ps = append(ps, float64(l.Percentile))
		}
	}
	slices.Sort(ps)
	return ps
}

// dynamicQuotes quotes every priority from the fee history ending at head.
func (o *Oracle) dynamicQuotes(ctx context.Context, head *big.Int) (map[Priority]Quote, error) {
	ps := o.percentiles()
	h, err := o.backend.FeeHistory(ctx, o.cfg.Window, head, ps)
	if err != nil {
		return nil, fmt.Errorf("fee history: %w", err)
	}
	if len(h.BaseFee) == 0 {
		return nil, errors.New("fee history: no base fees")
	}
	next := h.BaseFee[len(h.BaseFee)-1]
	anchor := bigMax(next, median(h.BaseFee[:len(h.BaseFee)-1]))
	quotes := make(map[Priority]Quote, len(o.cfg.Levels))
	for p, l := range o.cfg.Levels {
		tip := bigMax(blockMedianReward(h.Reward, h.GasUsedRatio, slices.Index(ps, float64(l.Percentile))), o.cfg.MinTip)
		maxFee := Headroom(anchor, l.Headroom)
		quotes[p] = Quote{
			Priority: p, Dynamic: true, BaseFee: new(big.Int).Set(next), Anchor: anchor,
			Fees: evm.Fees{MaxFeePerGas: maxFee.Add(maxFee, tip), MaxPriorityFeePerGas: tip},
		}
	}
	return quotes, nil
}

// blockMedianReward returns the median over the non-empty blocks of the
// reward at percentile index i, or nil when every block was empty. Empty
// blocks are skipped because geth reports them as a reward of 0, which says
// nothing about what it takes to be included.
func blockMedianReward(rewards [][]*big.Int, used []float64, i int) *big.Int {
	var vs []*big.Int
	for b, r := range rewards {
		if b < len(used) && used[b] == 0 || i >= len(r) || r[i] == nil {
			continue
		}
		vs = append(vs, r[i])
	}
	return median(vs)
}

// median returns the upper median of vs, or nil if vs is empty.
func median(vs []*big.Int) *big.Int {
	if len(vs) == 0 {
		return nil
	}
	s := slices.Clone(vs)
	slices.SortFunc(s, func(a, b *big.Int) int { return a.Cmp(b) })
	return s[len(s)/2]
}

// legacyQuotes quotes every priority from eth_gasPrice plus its premium.
func (o *Oracle) legacyQuotes(ctx context.Context) (map[Priority]Quote, error) {
	price, err := o.backend.SuggestGasPrice(ctx)
	if err != nil {
		return nil, fmt.Errorf("gas price: %w", err)
	}
	quotes := make(map[Priority]Quote, len(o.cfg.Levels))
	for p, l := range o.cfg.Levels {
		v := new(big.Int).Mul(price, big.NewInt(int64(100+l.LegacyPremium)))
		v.Add(v, big.NewInt(99)).Quo(v, big.NewInt(100))
		v = bigMax(v, o.cfg.MinTip)
		quotes[p] = Quote{Priority: p, Fees: evm.Fees{MaxFeePerGas: v, MaxPriorityFeePerGas: new(big.Int).Set(v), Legacy: true}}
	}
	return quotes, nil
}
