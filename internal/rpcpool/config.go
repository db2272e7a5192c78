package rpcpool

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Role says when an upstream is used.
type Role string

// The roles of an upstream. Fallbacks answer only when no primary is
// usable.
const (
	RolePrimary  Role = "primary"
	RoleFallback Role = "fallback"
)

// UpstreamConfig configures one upstream node.
type UpstreamConfig struct {
	// Name labels the upstream in logs, metrics and Status. Default: the
	// URL's host, made unique with a suffix. It must not hold secrets.
	Name string
	// URL is the node's HTTP(S) JSON-RPC endpoint. It may hold a provider
	// key; the pool never logs it and Status shows it redacted.
	URL string
	// Headers are sent with every request, e.g. a provider's API key.
	Headers map[string]string
	// Role is RolePrimary (default) or RoleFallback.
	Role Role
	// RequestsPerSecond caps the requests sent to the upstream (burst: one
	// second's worth). 0 means no cap.
	RequestsPerSecond float64
}

// Config configures a Pool. Zero durations and sizes take the defaults
// named on each field.
type Config struct {
	// Chain names the chain in logs and metrics; default "chain".
	Chain string
	// ChainID is the chain id every upstream must answer. Required.
	ChainID uint64
	// Upstreams are the chain's nodes. At least one is required.
	Upstreams []UpstreamConfig

	HealthInterval time.Duration // between health checks of an upstream; default 5s
	HealthTimeout  time.Duration // deadline of one health check; default 3s
	AttemptTimeout time.Duration // deadline of one call to one upstream; default 5s
	RequestTimeout time.Duration // deadline of a whole request with failover; default 15s
	MaxLag         uint64        // blocks behind the best head before an upstream is lagging; default 3

	Window          int           // latency and outcome samples kept per upstream; default 200
	BreakerFailures int           // consecutive failures that open the breaker; default 5
	BreakerOpenFor  time.Duration // how long an open breaker refuses before a probe; default 10s

	RateLimitBackoff    time.Duration // back-off after a 429 without Retry-After; default 1s
	MaxRateLimitBackoff time.Duration // longest back-off honoured from Retry-After; default 60s

	HedgeMinDelay time.Duration // shortest wait before hedging a read; default 2ms
	HedgeRatio    float64       // hedges allowed per request in steady state; default 0.1
	HedgeBurst    float64       // hedges allowed in a burst; default 10

	// HTTPClient sends the requests; default: a client with a shared
	// keep-alive transport. Its Transport is wrapped, not replaced.
	HTTPClient *http.Client
	// Logger receives the pool's logs; default: discarded.
	Logger *slog.Logger
	// Registerer, if set, gets the pool's Prometheus metrics. Pools of
	// several chains may share one.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HealthInterval, 5*time.Second)
	def(&c.HealthTimeout, 3*time.Second)
	def(&c.AttemptTimeout, 5*time.Second)
	def(&c.RequestTimeout, 15*time.Second)
	def(&c.BreakerOpenFor, 10*time.Second)
	def(&c.RateLimitBackoff, time.Second)
	def(&c.MaxRateLimitBackoff, time.Minute)
	def(&c.HedgeMinDelay, 2*time.Millisecond)
	if c.Chain == "" {
		c.Chain = "chain"
	}
	if c.MaxLag == 0 {
		c.MaxLag = 3
	}
	if c.Window == 0 {
		c.Window = 200
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = 5
	}
	if c.HedgeRatio == 0 {
		c.HedgeRatio = 0.1
	}
	if c.HedgeBurst == 0 {
		c.HedgeBurst = 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	for i := range c.Upstreams {
		if c.Upstreams[i].Role == "" {
			c.Upstreams[i].Role = RolePrimary
		}
	}
}

// maxUpstreams is the most upstreams a pool takes: a request tracks the
// ones it asked in a 64-bit set.
const maxUpstreams = 64

func (c *Config) validate() error {
	if c.ChainID == 0 {
		return errors.New("rpcpool: Config.ChainID is required")
	}
	if len(c.Upstreams) == 0 {
		return errors.New("rpcpool: Config.Upstreams needs at least one upstream")
	}
	if len(c.Upstreams) > maxUpstreams {
		return fmt.Errorf("rpcpool: Config.Upstreams holds %d upstreams, at most %d are supported", len(c.Upstreams), maxUpstreams)
	}
	if c.HedgeRatio < 0 || c.HedgeRatio > 1 {
		return fmt.Errorf("rpcpool: Config.HedgeRatio must be within [0, 1], got %g", c.HedgeRatio)
	}
	for i, u := range c.Upstreams {
		if err := u.validate(); err != nil {
			return fmt.Errorf("rpcpool: Config.Upstreams[%d].%w", i, err)
		}
	}
	return nil
}

func (u *UpstreamConfig) validate() error {
	parsed, err := url.Parse(u.URL)
	if err != nil || parsed.Host == "" || (parsed.Scheme != "http" && parsed.Scheme != "https") {
		return fmt.Errorf("URL must be an http or https URL, got %q", RedactURL(u.URL))
	}
	if u.Role != RolePrimary && u.Role != RoleFallback {
		return fmt.Errorf("Role must be %q or %q, got %q", RolePrimary, RoleFallback, u.Role)
	}
	if u.RequestsPerSecond < 0 {
		return fmt.Errorf("RequestsPerSecond must not be negative, got %g", u.RequestsPerSecond)
	}
	return nil
}
