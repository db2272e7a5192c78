package store

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus collectors.
type metrics struct {
	duration  *prometheus.HistogramVec
	errors    *prometheus.CounterVec
	groupSize prometheus.Histogram
	// groupIsolated counts groups run a second time, each call in a
	// savepoint, because one of their calls failed.
	groupIsolated prometheus.Counter
	// heldRows counts payouts a transition took from committedRows ("held"),
	// read from the database ("read"), or found stale ("stale").
	heldRows *prometheus.CounterVec
	audit    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "sluice", Subsystem: "store", Name: "operation_duration_seconds",
			Help:    "Duration of store operations (one transaction or one read), by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sluice", Subsystem: "store", Name: "errors_total",
			Help: "Store operations that failed, by operation; outcomes the Store contract names " +
				"(not found, conflicts, stale, lease held) are not errors.",
		}, []string{"op"}),
		groupSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "sluice", Subsystem: "store", Name: "group_commit_size",
			Help:    "Write transactions (creates, sender transitions, ...) committed together in one SQLite transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		groupIsolated: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sluice", Subsystem: "store", Name: "group_commit_isolated_total",
			Help: "Groups of write transactions run again with each call in a savepoint because one of them failed.",
		}),
		heldRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sluice", Subsystem: "store", Name: "payout_copies_total",
			Help: "Payouts a transition started from: held as this process last committed them (held), read from " +
				"the database (read), or held but changed since by someone else (stale: read again).",
		}, []string{"outcome"}),
		audit: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sluice", Subsystem: "audit", Name: "entries_total",
			Help: "Entries appended to the audit log by this process.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.errors, err = register(reg, m.errors); err != nil {
		return nil, err
	}
	if m.groupSize, err = register(reg, m.groupSize); err != nil {
		return nil, err
	}
	if m.groupIsolated, err = register(reg, m.groupIsolated); err != nil {
		return nil, err
	}
	if m.heldRows, err = register(reg, m.heldRows); err != nil {
		return nil, err
	}
	if m.audit, err = register(reg, m.audit); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or reuses the collector already registered under
// the same name (several DBs may share a registry, e.g. in tests).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// observe records one operation's duration and, unless its error is a
// domain outcome, its failure.
func (m *metrics) observe(op string, start time.Time, err error) {
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !isDomain(err) {
		m.errors.WithLabelValues(op).Inc()
	}
}
