package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicepay/sluice/internal/batchfile"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/policy"
)

// Config is what a Server needs. Store, Catalog and at least one API key
// are required; the other fields have defaults.
type Config struct {
	// Store holds payouts and idempotency records. Required.
	Store payout.Store
	// Catalog lists the chains and assets payouts may use. Required.
	Catalog *payout.Catalog
	// APIKeys are the keys that may call /v1, stored as SHA-256 hashes of
	// the secret keys (see HashAPIKey). At least one is required.
	APIKeys []APIKey
	// Logger receives request logs and the causes of internal errors.
	// Default: slog.Default().
	Logger *slog.Logger
	// Registry serves /metrics and receives the API's metrics.
	// Default: a new registry.
	Registry *prometheus.Registry
	// Ready holds the checks of /readyz by name (database, upstreams,
	// signers). A "database" check pinging Store is added when absent.
	Ready map[string]func(context.Context) error
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// OnPayoutCreated, when not nil, is called after a payout is stored,
	// to wake its sender (the payout's Sender). It must not block.
	OnPayoutCreated func(p *payout.Payout)
	// Version is reported by /healthz and /readyz. Default: "dev".
	Version string
	// Upstreams, when not nil, reports a chain's upstream nodes for
	// GET /v1/status.
	Upstreams func(chain string) []UpstreamView
	// EventsChanged, when not nil, returns a channel closed at the next
	// commit to the store (store.DB.Committed), so event streams send new
	// events at once; without it they poll every second.
	EventsChanged func() <-chan struct{}
	// MaxEventStreams bounds the event streams open at once. Default 256.
	MaxEventStreams int
	// Broadcast, when not nil, sends a stored signed transaction again on a
	// chain, for POST /v1/payouts/{id}/rebroadcast.
	Broadcast func(ctx context.Context, chain string, raw []byte) error
	// APIKeyStore keeps the keys made through /v1/api_keys and the request
	// signatures seen. Default: Store, when it implements it; without one,
	// only APIKeys authenticate and /v1/api_keys answers 503.
	APIKeyStore payout.APIKeyStore
	// TestMode makes new API keys sk_test_ instead of sk_live_; the engine
	// sets it on the sandbox and dev chain. Default: false.
	TestMode bool
	// RateLimit is each key's token bucket unless the key has its own.
	// Default: DefaultRateLimit (100 a second, bursts of 200).
	RateLimit payout.RateLimit
	// Webhooks serves /v1/webhook_endpoints and event redelivery; without
	// its Store they answer 503.
	Webhooks WebhookConfig
	// WalletBalance, when not nil, says what a hot wallet can spend of an
	// asset, for the policy's balance_share fact (-1 without it).
	WalletBalance policy.BalanceFunc
	// MaxBatchRows and MaxBatchBytes bound one batch upload. Defaults:
	// batchfile.DefaultMaxRows and batchfile.DefaultMaxBytes.
	MaxBatchRows  int
	MaxBatchBytes int64
	// BlockTime, when not nil, returns a block's timestamp, for the
	// timestamp column of batch statements (empty without it).
	BlockTime func(ctx context.Context, chain string, number uint64) (time.Time, error)
	// Approvals says how payouts held for approval are approved: their
	// expiry (default 24h) and the approver groups.
	Approvals ApprovalConfig
}

// Server is the REST API. Build it with New and serve Handler().
type Server struct {
	hooks     WebhookConfig
	store     payout.Store
	catalog   *payout.Catalog
	keys      []APIKey
	log       *slog.Logger
	registry  *prometheus.Registry
	metrics   *metrics
	ready     map[string]func(context.Context) error
	now       func() time.Time
	created   func(*payout.Payout)
	version   string
	upstreams func(chain string) []UpstreamView
	broadcast broadcastFunc
	controls  controlStores // pauses and the audit log
	policy    *policyState  // policies and lists (issue 8)
	approvals approvals     // approvals of payouts policies hold (issue 8)
	batches   payout.BatchStore
	batchRows int   // most rows of one batch
	batchSize int64 // most bytes of one batch upload
	blockTime func(ctx context.Context, chain string, number uint64) (time.Time, error)

	ids      *payout.IDGenerator // payout ids
	reqIDs   *payout.IDGenerator // request ids
	inflight inflightSet
	chains   []byte // the GET /v1/chains answer; the catalog does not change
	handler  http.Handler
	served   map[string][]string // path pattern → methods, as routes registered them

	apiKeys     payout.APIKeyStore           // nil: configured keys only
	configKeys  map[string]map[string]string // the configured keys' labels ({} when none), by id
	testMode    bool
	versions    []apiVersion // apiVersions; tests add their own
	cache       keyCache
	limits      limiters
	authMetrics *authMetrics
	pruneMu     sync.Mutex
	lastPrune   time.Time // when seen signatures were last pruned

	eventsChanged func() <-chan struct{}
	streams       *streamSlots
	closing       chan struct{} // closed by CloseStreams
	closeOnce     sync.Once
}

// New checks cfg, fills its defaults and builds the API.
func New(cfg Config) (*Server, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("httpapi: metrics: %w", err)
	}
	s := &Server{
		hooks: cfg.Webhooks, store: cfg.Store, catalog: cfg.Catalog, keys: cfg.APIKeys, log: cfg.Logger.With("component", "httpapi"),
		registry: cfg.Registry, metrics: m, ready: cfg.Ready, now: cfg.Now, created: cfg.OnPayoutCreated,
		version: cfg.Version, upstreams: cfg.Upstreams, broadcast: cfg.Broadcast, ids: payout.DefaultIDs, reqIDs: &payout.IDGenerator{},
		inflight: inflightSet{keys: map[string]struct{}{}}, controls: newControlStores(cfg.Store), policy: newPolicyState(cfg.Store, cfg.WalletBalance),
		approvals:     newApprovals(cfg.Store, cfg.Approvals),
		eventsChanged: cfg.EventsChanged, streams: newStreamSlots(cfg.MaxEventStreams), closing: make(chan struct{}),
		blockTime: cfg.BlockTime, batchRows: cfg.MaxBatchRows, batchSize: cfg.MaxBatchBytes,
	}
	if s.batchRows <= 0 {
		s.batchRows = batchfile.DefaultMaxRows
	}
	if s.batchSize <= 0 {
		s.batchSize = batchfile.DefaultMaxBytes
	}
	s.batches, _ = cfg.Store.(payout.BatchStore)
	if err := s.initKeys(cfg); err != nil {
		return nil, err
	}
	if s.chains, err = chainsBody(cfg.Catalog); err != nil {
		return nil, fmt.Errorf("httpapi: chains: %w", err)
	}
	s.handler = s.observe(s.routes())
	return s, nil
}

// fill validates the config and sets defaults; errors name the field.
func (c *Config) fill() error {
	switch {
	case c.Store == nil:
		return errors.New("httpapi: Config.Store is required")
	case c.Catalog == nil || len(c.Catalog.Chains) == 0:
		return errors.New("httpapi: Config.Catalog needs at least one chain")
	case len(c.APIKeys) == 0:
		return errors.New("httpapi: Config.APIKeys needs at least one key")
	}
	seen := map[string]bool{}
	for i, k := range c.APIKeys {
		if k.ID == "" || seen[k.ID] || k.Hash == ([32]byte{}) {
			return fmt.Errorf("httpapi: Config.APIKeys[%d]: needs a unique ID and a hash", i)
		}
		seen[k.ID] = true
		if len(k.Scopes) == 0 {
			c.APIKeys[i].Scopes = []Scope{payout.ScopeAdmin}
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.MaxEventStreams <= 0 {
		c.MaxEventStreams = 256
	}
	ready := make(map[string]func(context.Context) error, len(c.Ready)+1)
	for name, check := range c.Ready {
		ready[name] = check
	}
	if _, ok := ready["database"]; !ok {
		ready["database"] = c.Store.Ping
	}
	c.Ready = ready
	return nil
}

// Handler returns the API's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// routes registers every endpoint. Each path also gets a fallback that
// answers 405 with Allow for the methods it does not serve.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	s.served = map[string][]string{}
	route := func(path string, methods map[string]http.HandlerFunc) {
		allow := ""
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
			if h, ok := methods[m]; ok {
				mux.Handle(m+" "+path, h)
				allow += ", " + m
				s.served[path] = append(s.served[path], m)
			}
		}
		if methods[http.MethodGet] != nil {
			allow += ", HEAD"
		}
		// The 405 fallback is registered per method, not for the bare
		// path, so that it cannot clash with a more specific path that
		// another route serves (GET /v1/events/{id} and /v1/events/stream).
		notAllowed := s.methodNotAllowed(allow[2:])
		for _, m := range otherMethods {
			if _, served := methods[m]; !served && !(m == http.MethodHead && methods[http.MethodGet] != nil) {
				mux.HandleFunc(m+" "+path, notAllowed)
			}
		}
	}
	route("/v1/payouts", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopePayoutsWrite, s.createPayout), "GET": s.auth(payout.ScopePayoutsRead, s.listPayouts)})
	route("/v1/payouts/{id}", map[string]http.HandlerFunc{"GET": s.auth(payout.ScopePayoutsRead, s.getPayout)})
	route("/v1/payouts/{id}/cancel", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopePayoutsWrite, s.cancelPayout)})
	route("/v1/payouts/{id}/speed-up", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopePayoutsWrite, s.speedUp)})
	route("/v1/payouts/{id}/attempts", map[string]http.HandlerFunc{"GET": s.auth(payout.ScopePayoutsRead, s.listAttempts)})
	route("/v1/payouts/{id}/approve", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopeApprover, s.approvePayout)})
	route("/v1/payouts/{id}/reject", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopeApprover, s.rejectPayout)})
	route("/v1/payouts/{id}/rebroadcast", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopePayoutsWrite, s.rebroadcast)})
	route("/v1/batches", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopeBatchesWrite, s.needBatches(s.createBatch))})
	route("/v1/batches/{id}", map[string]http.HandlerFunc{"GET": s.auth(payout.ScopePayoutsRead, s.needBatches(s.getBatch))})
	route("/v1/batches/{id}/approve", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopeApprover, s.needBatches(s.approveBatch))})
	route("/v1/batches/{id}/reject", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopeApprover, s.needBatches(s.rejectBatch))})
	route("/v1/batches/{id}/statement.csv", map[string]http.HandlerFunc{"GET": s.auth(payout.ScopePayoutsRead, s.needBatches(s.batchStatement))})
	route("/v1/events", map[string]http.HandlerFunc{"GET": s.auth(payout.ScopePayoutsRead, s.listEvents)})
	route("/v1/events/stream", map[string]http.HandlerFunc{"GET": s.auth(payout.ScopePayoutsRead, s.streamEvents)})
	route("/v1/events/{id}", map[string]http.HandlerFunc{"GET": s.auth(payout.ScopePayoutsRead, s.getEvent)})
	s.webhookRoutes(route)
	route("/v1/api_keys", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopeAdmin, s.createAPIKey), "GET": s.auth(payout.ScopeAdmin, s.listAPIKeys)})
	route("/v1/api_keys/{id}/revoke", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopeAdmin, s.revokeAPIKey)})
	route("/v1/pauses", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopeAdmin, s.createPause), "GET": s.auth(payout.ScopeAdmin, s.listPauses)})
	route("/v1/wallet_rotations", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopeAdmin, s.createRotation), "GET": s.auth(payout.ScopeAdmin, s.listRotations)})
	route("/v1/wallet_rotations/{id}", map[string]http.HandlerFunc{"GET": s.auth(payout.ScopeAdmin, s.getRotation)})
	route("/v1/offline_plans", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopeAdmin, s.createOfflinePlan)})
	route("/v1/offline_plans/{id}", map[string]http.HandlerFunc{"GET": s.auth(payout.ScopeAdmin, s.getOfflinePlan)})
	route("/v1/offline_plans/{id}/signed", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopeAdmin, s.submitSigned)})
	route("/v1/offline_plans/{id}/void", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopeAdmin, s.voidOfflinePlan)})
	route("/v1/pauses/{id}", map[string]http.HandlerFunc{"DELETE": s.auth(payout.ScopeAdmin, s.resumePause)})
	route("/v1/pauses/{id}/resume", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopeAdmin, s.resumePause)})
	route("/v1/policy", map[string]http.HandlerFunc{"GET": s.auth(payout.ScopeAdmin, s.getPolicy), "PUT": s.auth(payout.ScopeAdmin, s.putPolicy)})
	route("/v1/policy/versions", map[string]http.HandlerFunc{"GET": s.auth(payout.ScopeAdmin, s.listPolicyVersions)})
	route("/v1/policy/versions/{version}/approve", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopeApprover, s.approvePolicy)})
	route("/v1/policy/versions/{version}/reject", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopeApprover, s.rejectPolicy)})
	route("/v1/lists", map[string]http.HandlerFunc{"GET": s.auth(payout.ScopeAdmin, s.listLists), "POST": s.auth(payout.ScopeAdmin, s.createList)})
	route("/v1/lists/{name}/entries", map[string]http.HandlerFunc{"POST": s.auth(payout.ScopeAdmin, s.addListEntries)})
	route("/v1/audit", map[string]http.HandlerFunc{"GET": s.auth(payout.ScopeAdmin, s.listAudit)})
	route("/v1/chains", map[string]http.HandlerFunc{"GET": s.auth(payout.ScopePayoutsRead, s.listChains)})
	route("/v1/status", map[string]http.HandlerFunc{"GET": s.auth(payout.ScopePayoutsRead, s.status)})
	route("/v1/openapi.yaml", map[string]http.HandlerFunc{"GET": serveOpenAPI})
	route("/healthz", map[string]http.HandlerFunc{"GET": s.healthz})
	route("/readyz", map[string]http.HandlerFunc{"GET": s.readyz})
	metrics := promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry})
	route("/metrics", map[string]http.HandlerFunc{"GET": metrics.ServeHTTP})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, newError(payout.CodeNotFound, "no route for %s %s", r.Method, truncate(r.URL.Path, 100)))
	})
	return mux
}

// otherMethods are the methods a path answers 405 to when it does not
// serve them; any other method finds no route (404).
var otherMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodTrace, http.MethodConnect}

func (s *Server) methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		s.fail(w, r, newError(payout.CodeMethodNotAllowed, "%s is not allowed here; allowed: %s", truncate(r.Method, 16), allow))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
