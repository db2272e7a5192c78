package events

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the dispatcher's Prometheus series.
type metrics struct {
	attempts *prometheus.CounterVec // by outcome
	duration prometheus.Histogram
	lag      prometheus.Histogram // event committed → first attempt
	inflight prometheus.Gauge
	deferred prometheus.Counter // deliveries left for later: their endpoint is failing and already being tried
}

// Attempt outcomes.
const (
	outcomeSucceeded = "succeeded"
	outcomeRetry     = "retry"
	outcomeFailed    = "failed"
	outcomeGone      = "gone"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_webhook_attempts_total",
			Help: "Webhook delivery attempts by outcome: succeeded, retry (will be tried again), failed (no retry left), gone (410: endpoint disabled)."},
			[]string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_webhook_attempt_duration_seconds",
			Help: "How long one webhook delivery attempt took, to the answer's status line or the failure.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_webhook_first_attempt_lag_seconds",
			Help: "From an event's commit to its first delivery attempt.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_webhook_queue_depth",
			Help: "Deliveries claimed by this dispatcher and not yet recorded (queued or being sent)."}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_webhook_deferred_total",
			Help: "Deliveries not attempted when their turn came because their endpoint is failing and one attempt to it is already running; they come back when their claim runs out."}),
	}
	for _, o := range []string{outcomeSucceeded, outcomeRetry, outcomeFailed, outcomeGone} {
		m.attempts.WithLabelValues(o)
	}
	if reg == nil {
		return m, nil
	}
	// A second dispatcher on the same registry (tests) shares the series.
	if err := register(reg, &m.attempts); err != nil {
		return nil, err
	}
	if err := register(reg, &m.duration); err != nil {
		return nil, err
	}
	if err := register(reg, &m.lag); err != nil {
		return nil, err
	}
	if err := register(reg, &m.deferred); err != nil {
		return nil, err
	}
	return m, register(reg, &m.inflight)
}

func register[C prometheus.Collector](reg prometheus.Registerer, c *C) error {
	err := reg.Register(*c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			*c = existing
			return nil
		}
	}
	return err
}
