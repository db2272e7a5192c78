package sandbox

import (
	"fmt"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the chain's Prometheus metrics.
type metrics struct {
	blocks prometheus.Counter
	txs    prometheus.Histogram
	head   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		blocks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_sandbox_blocks_produced_total",
			Help: "Blocks the dev chain has sealed since start.",
		}),
		txs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_sandbox_block_transactions",
			Help:    "Transactions per sealed dev chain block.",
			Buckets: []float64{0, 1, 10, 50, 100, 250, 500, 1000, 2000, 5000},
		}),
		head: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_sandbox_head_block_number",
			Help: "Number of the dev chain's head block.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for i, col := range m.collectors() {
		if err := reg.Register(col); err != nil {
			for _, done := range m.collectors()[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("sandbox: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.blocks, m.txs, m.head}
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	for _, col := range m.collectors() {
		reg.Unregister(col)
	}
}

func (m *metrics) observe(b *types.Block) {
	m.blocks.Inc()
	m.txs.Observe(float64(len(b.Transactions())))
	m.head.Set(float64(b.NumberU64()))
}
