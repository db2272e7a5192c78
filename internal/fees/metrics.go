package fees

import (
	"math/big"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the oracles' Prometheus metrics; one set serves every chain.
type Metrics struct {
	quotes     *prometheus.CounterVec
	baseFee    *prometheus.GaugeVec
	tip        *prometheus.GaugeVec
	cache      *prometheus.CounterVec
	capReached *prometheus.CounterVec
}

// NewMetrics registers the fee metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		quotes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_fee_quotes_total", Help: "Fee quotes handed out, by chain and priority.",
		}, []string{"chain", "priority"}),
		baseFee: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_fee_base_fee_wei", Help: "Next block's base fee (legacy chains: gas price) at the last quoted head.",
		}, []string{"chain"}),
		tip: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_fee_tip_wei", Help: "Quoted priority fee per gas at the last quoted head, by priority.",
		}, []string{"chain", "priority"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_fee_cache_total", Help: "Quote cache lookups: hit, miss (fee history fetched) or revalidated (same head).",
		}, []string{"chain", "result"}),
		capReached: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_fee_cap_reached_total", Help: "Fees refused by a cap, by chain and reason.",
		}, []string{"chain", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.quotes, m.baseFee, m.tip, m.cache, m.capReached)
	}
	return m
}

// weiGauge converts wei for a gauge; a metric may be approximate, money in
// the engine never is.
func weiGauge(v *big.Int) float64 {
	f, _ := new(big.Float).SetInt(v).Float64()
	return f
}
