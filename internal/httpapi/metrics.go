package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus series. Labels are bounded: route is a
// registered pattern (or "unmatched"), method one of a fixed set.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	replays  prometheus.Counter
	streams  prometheus.Gauge   // event streams open
	streamed prometheus.Counter // events sent on streams
	// auditFailures counts actions done whose audit entry could not be written.
	auditFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_http_requests_total",
			Help: "HTTP requests answered, by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_http_requests_in_flight",
			Help: "HTTP requests being answered.",
		}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_http_idempotent_replays_total",
			Help: "Requests answered from a stored idempotency record.",
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_event_streams_open",
			Help: "Server-Sent Event streams (GET /v1/events/stream) open.",
		}),
		streamed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_event_stream_events_total",
			Help: "Events sent on Server-Sent Event streams.",
		}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_audit_append_failures_total",
			Help: "Administrative actions done through the API whose audit entry could not be written (the cause is logged).",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight, m.replays, m.streams, m.streamed, m.auditFailures} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// statusText avoids an allocation per request for the usual statuses.
var statusText = map[int]string{}

func init() {
	for code := 100; code < 600; code++ {
		if http.StatusText(code) != "" {
			statusText[code] = strconv.Itoa(code)
		}
	}
}

func (m *metrics) observe(route, method string, status int, took time.Duration) {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodHead:
	default:
		method = "other"
	}
	code, ok := statusText[status]
	if !ok {
		code = strconv.Itoa(status)
	}
	m.requests.WithLabelValues(route, method, code).Inc()
	m.duration.WithLabelValues(route, method).Observe(took.Seconds())
}
