package rpcpool

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the pool's collectors; each upstream gets its labelled
// children.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	score    *prometheus.GaugeVec
	lag      *prometheus.GaugeVec
	breaker  *prometheus.GaugeVec
	healthy  *prometheus.GaugeVec
	hedges   *prometheus.CounterVec
}

// upstreamMetrics are one upstream's children of the pool's collectors.
type upstreamMetrics struct {
	requests *prometheus.CounterVec // curried: method, outcome
	latency  prometheus.Observer
	score    prometheus.Gauge
	lag      prometheus.Gauge
	breaker  prometheus.Gauge
	healthy  prometheus.Gauge
	hedges   prometheus.Counter
}

var upstreamLabels = []string{"chain", "upstream"}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_rpcpool_requests_total",
			Help: "Attempts sent to an upstream by method and outcome (ok, or an error kind).",
		}, []string{"chain", "upstream", "method", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_rpcpool_request_duration_seconds",
			Help:    "Latency of attempts sent to an upstream.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, upstreamLabels),
		score: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_rpcpool_upstream_score", Help: "The upstream's score; lower is preferred.",
		}, upstreamLabels),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_rpcpool_upstream_lag_blocks", Help: "Blocks the upstream's head is behind the best head.",
		}, upstreamLabels),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_rpcpool_upstream_breaker_state", Help: "Circuit breaker: 0 closed, 1 half-open, 2 open.",
		}, upstreamLabels),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_rpcpool_upstream_healthy", Help: "1 when the upstream is fit for reads of the latest state (a rate limit aside).",
		}, upstreamLabels),
		hedges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_rpcpool_hedges_total", Help: "Hedged attempts sent to the upstream.",
		}, upstreamLabels),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.latency = register(reg, m.latency)
		m.score = register(reg, m.score)
		m.lag = register(reg, m.lag)
		m.breaker = register(reg, m.breaker)
		m.healthy = register(reg, m.healthy)
		m.hedges = register(reg, m.hedges)
	}
	return m
}

// register registers c, or returns the collector already registered under
// its name, so that the pools of several chains share one set.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	if err != nil {
		panic(err) // a name clash with another kind of collector: a programming error
	}
	return c
}

func (m *metrics) forUpstream(chain, name string) *upstreamMetrics {
	l := prometheus.Labels{"chain": chain, "upstream": name}
	return &upstreamMetrics{
		requests: m.requests.MustCurryWith(l),
		latency:  m.latency.With(l),
		score:    m.score.With(l),
		lag:      m.lag.With(l),
		breaker:  m.breaker.With(l),
		healthy:  m.healthy.With(l),
		hedges:   m.hedges.With(l),
	}
}

func breakerValue(s BreakerState) float64 {
	switch s {
	case BreakerHalfOpen:
		return 1
	case BreakerOpen:
		return 2
	}
	return 0
}
