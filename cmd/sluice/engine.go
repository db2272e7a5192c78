package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluicepay/sluice/internal/breaker"
	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/events"
	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/fees"
	"github.com/sluicepay/sluice/internal/httpapi"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/policy"
	"github.com/sluicepay/sluice/internal/reconcile"
	"github.com/sluicepay/sluice/internal/rpcpool"
	"github.com/sluicepay/sluice/internal/signer"
	"github.com/sluicepay/sluice/internal/store"
	"github.com/sluicepay/sluice/internal/txm"
)

// engine is one running Sluice: the store, a sender per hot wallet and the
// HTTP API. Tests start it on port 0.
type engine struct {
	log      *slog.Logger
	store    *store.DB
	pools    []*rpcpool.Pool
	poolOf   map[string]*rpcpool.Pool // by chain name
	senders  []*txm.Sender
	byWallet map[walletKey]*txm.Sender
	openings map[walletKey]*signer.Opening // each hot wallet's signer, its key perhaps still opening

	startMu  sync.Mutex         // orders senders started late (startSenders) with Close
	closing  bool               // Close has begun: start no sender
	webhooks *events.Dispatcher // nil when delivery is off here
	listener net.Listener
	server   *http.Server
	served   chan error

	stopPrune func()
	sweeper   *payout.ApprovalSweeper // releases holds, expires approvals
	breakers  *breaker.Monitor
	watchers  []*reconcile.Watcher // reconcile each chain's wallets with the chain
	unlock    func()               // releases the data dir's instance lock
	reg       *prometheus.Registry
	retired   *retiredWallets
	// stopOpening ends the retries of signers that could not be reached
	// (openSigners); Close cancels it.
	stopOpening    context.Context
	cancelOpenings context.CancelFunc
}

// engineOptions are the parts a caller may hand in already opened.
type engineOptions struct {
	Signers map[common.Address]payout.Signer // opened signers by address (the sandbox's)
	// Listening, when not nil, is told the API's URL as soon as it serves,
	// before the keys still opening are open.
	Listening func(url string)
}

// startEngine opens everything a config names, checks it (chain ids,
// signer addresses), starts the senders and serves the API.
func startEngine(ctx context.Context, cfg *config.Config, log *slog.Logger, opts engineOptions) (_ *engine, err error) {
	e := &engine{log: log, served: make(chan error, 1), byWallet: map[walletKey]*txm.Sender{}, openings: map[walletKey]*signer.Opening{}}
	e.stopOpening, e.cancelOpenings = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	reg := prometheus.NewRegistry()
	e.reg = reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	sealKey, err := secretsKey(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	e.store, err = store.Open(ctx, cfg.Database, store.Options{Logger: log, Registerer: reg, SecretsKey: sealKey})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if n, err := e.store.SealSecrets(ctx); err != nil {
		return nil, fmt.Errorf("webhook secrets: %w: start every instance with the same %s (or the same data dir's secrets.key)", err, secretsKeyEnv)
	} else if n > 0 {
		log.Info("webhook secrets sealed in the database", "endpoints", n)
	}
	reg.MustRegister(&statusCollector{store: e.store})
	e.retired = &retiredWallets{store: e.store}
	catalog := &payout.Catalog{Chains: map[string]payout.Chain{}, Available: e.available, Outstanding: e.outstanding, Retired: e.retired.retired,
		RetiredChanged: e.retired.forget}
	recheck := policyRecheck(e.store, catalog, e.walletBalance)
	clients := map[string]*evm.Client{}
	ready := map[string]func(context.Context) error{"database": e.store.Ping}
	rpcMetrics, txmMetrics, signerMetrics := evm.NewMetrics(reg), txm.NewMetrics(reg), signer.NewMetrics(reg)
	feeMetrics := fees.NewMetrics(reg)
	owner, unlock, err := instanceID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	e.unlock = unlock
	for _, ch := range cfg.Chains {
		domain, client, signers, err := e.openChain(ctx, ch, rpcMetrics, signerMetrics, opts)
		if err != nil {
			return nil, err
		}
		catalog.Chains[ch.Name] = domain
		clients[ch.Name] = client
		oracle, err := feeOracle(ch, client, log, feeMetrics)
		if err != nil {
			return nil, err
		}
		lowBalance := map[string]*big.Int{}
		for sym, v := range ch.LowBalance {
			lowBalance[sym], _ = config.ParseWei(v) // checked by config
		}
		ready["chain:"+ch.Name] = func(ctx context.Context) error { _, err := client.Header(ctx, nil); return err }
		for _, sg := range signers {
			ready["signer:"+sg.Address().Hex()] = signerCheck(sg)
			opening := e.openings[walletKey{ch.Name, sg.Address()}]
			s, err := txm.New(txm.Config{
				Chain: domain, Store: e.store, Client: client, Signer: sg, Owner: owner, Fees: oracle, LowBalance: lowBalance,
				Handoff: walletHandoff{e: e, chain: domain}, SignerReady: opening.Ready, SignerOpened: opening.Done(),
				SignerUnreachable: opening.Unreachable, Pauses: e.store, Offline: e.store, Rotations: e.store,
				BatchSize: cfg.Engine.BatchSize, Poll: cfg.Engine.Poll, LeaseTTL: cfg.Engine.LeaseTTL,
				Batching: batching(ch.Batching), Recheck: recheck, Logger: log, Metrics: txmMetrics,
			})
			if err != nil {
				return nil, err
			}
			e.senders = append(e.senders, s)
			e.byWallet[walletKey{ch.Name, sg.Address()}] = s
		}
	}
	keys, err := apiKeys(cfg)
	if err != nil {
		return nil, err
	}
	api, err := httpapi.New(httpapi.Config{
		Store: e.store, Catalog: catalog, APIKeys: keys, Logger: log, Registry: reg, Ready: ready,
		Now: time.Now, OnPayoutCreated: e.wake, Version: version, Upstreams: e.upstreamViews,
		Broadcast: e.broadcast, EventsChanged: e.store.Committed,
		TestMode: cfg.TestMode, RateLimit: payout.RateLimit{PerSecond: cfg.RateLimit.PerSecond, Burst: cfg.RateLimit.Burst},
		Webhooks:  httpapi.WebhookConfig{CheckURL: webhookURLCheck(cfg.Webhooks)},
		BlockTime: blockTimes(clients), WalletBalance: e.walletBalance, MaxBatchRows: cfg.Batches.MaxRows, MaxBatchBytes: cfg.Batches.MaxBytes,
		Approvals: httpapi.ApprovalConfig{Expiry: cfg.Approvals.Expiry, Groups: cfg.Approvals.GroupMap(),
			PolicyChanges: cfg.Approvals.PolicyChanges, PolicyGroup: cfg.Approvals.PolicyGroup},
	})
	if err != nil {
		return nil, err
	}
	e.startSenders(ctx, catalog)
	if err := e.startReconcile(ctx, cfg, clients); err != nil {
		return nil, err
	}
	if e.webhooks, err = startWebhooks(ctx, cfg.Webhooks, e.store, owner, log, reg); err != nil {
		return nil, err
	}
	e.stopPrune = e.pruneIdempotency(api)
	if err := e.startRisk(ctx, cfg, catalog); err != nil {
		return nil, err
	}
	if err := e.serve(cfg.HTTP, withRPCProxy(cfg, e.poolOf, api.Handler(), log, reg)); err != nil {
		return e, err
	}
	e.server.RegisterOnShutdown(api.CloseStreams) // Shutdown waits for handlers; streams never end by themselves
	if opts.Listening != nil {
		opts.Listening(e.URL())
	}
	// The API and the senders run while keys are still opening: a payout
	// goes to a wallet that can sign now, and a wallet sends as soon as its
	// own key is open. A key that cannot be opened still fails the start;
	// a signer that cannot be reached now is tried again (Retrying).
	for _, o := range e.openings {
		if err := o.Started(ctx); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// startSenders starts the senders. On a chain with several hot wallets
// each starts at once, key open or not: while its key opens it hands its
// payouts to a wallet that can sign. The sender of a chain's only wallet
// starts when its key is open: nothing could take its payouts meanwhile,
// and its start-up work would only slow the key's decryption down.
func (e *engine) startSenders(ctx context.Context, catalog *payout.Catalog) {
	ctx = context.WithoutCancel(ctx)
	for key, s := range e.byWallet {
		o := e.openings[key]
		if o == nil || len(catalog.Chains[key.chain].Wallets()) > 1 {
			s.Start(ctx)
			continue
		}
		go func() {
			if o.Started(ctx) != nil {
				return // startEngine fails with the key's error
			}
			e.startMu.Lock()
			defer e.startMu.Unlock()
			if !e.closing {
				s.Start(ctx)
			}
		}()
	}
}

// walletKey names a hot wallet of a chain.
type walletKey struct {
	chain  string
	wallet common.Address
}

// available is what a hot wallet's sender last saw it could still spend;
// not known while its key is still opening.
func (e *engine) available(chain string, wallet common.Address, asset string) (*big.Int, bool) {
	s := e.byWallet[walletKey{chain, wallet}]
	if s == nil {
		return nil, false
	}
	if o := e.openings[walletKey{chain, wallet}]; o != nil && !o.Ready() {
		return nil, false
	}
	return s.Available(asset)
}

// outstanding is how many payouts a hot wallet's sender last counted as
// not mined yet; not known while its key is still opening (Assign then
// counts only what it gave the wallet since).
func (e *engine) outstanding(chain string, wallet common.Address) (int, uint64, bool) {
	s := e.byWallet[walletKey{chain, wallet}]
	if s == nil {
		return 0, 0, false
	}
	return s.Outstanding()
}

// walletBalance is what a hot wallet can spend of an asset after what it
// has in flight, as its sender last saw it: the policy's balance_share.
func (e *engine) walletBalance(_ context.Context, chain string, wallet common.Address, asset string) (*big.Int, bool) {
	return e.available(chain, wallet, asset)
}

// walletHandoff lets a chain's hot wallets hand each other the queued
// payouts one cannot cover (txm.Handoff).
type walletHandoff struct {
	e     *engine
	chain payout.Chain
}

// Target is the first other hot wallet of the chain whose sender last saw
// enough of the asset to cover p.
func (h walletHandoff) Target(p *payout.Payout) (common.Address, bool) {
	for _, w := range h.chain.Wallets() {
		if w == p.Sender || h.e.retired.retired(h.chain.Name, w) {
			continue
		}
		if avail, known := h.e.available(h.chain.Name, w, p.Asset); known && avail.Cmp(p.Amount) >= 0 {
			return w, true
		}
	}
	return common.Address{}, false
}

// Moved wakes the sender of the wallet that received payouts.
func (h walletHandoff) Moved(chain string, wallet common.Address) {
	if s := h.e.byWallet[walletKey{chain, wallet}]; s != nil {
		s.Wake()
	}
}

// feeOracle builds a chain's fee oracle from its config: caps and the
// replacement schedule per priority.
func feeOracle(ch config.Chain, client *evm.Client, log *slog.Logger, m *fees.Metrics) (*fees.Oracle, error) {
	var caps fees.Caps
	if ch.Fees.MaxFeePerGas != "" {
		caps.MaxFeePerGas, _ = config.ParseWei(ch.Fees.MaxFeePerGas) // checked by config
	}
	if ch.Fees.MaxFeePerPayout != "" {
		caps.MaxFeePerPayout, _ = config.ParseWei(ch.Fees.MaxFeePerPayout)
	}
	levels := map[fees.Priority]fees.Level{}
	for p, after := range ch.Fees.ReplaceAfterBlocks {
		l, _ := fees.DefaultLevel(fees.Priority(p))
		l.Replace.After = after
		levels[fees.Priority(p)] = l
	}
	o, err := fees.New(client, fees.Config{Chain: ch.Name, Caps: caps, Levels: levels, Logger: log, Metrics: m})
	if err != nil {
		return nil, fmt.Errorf("chain %s fees: %w", ch.Name, err)
	}
	return o, nil
}

// openChain dials a chain's upstream, checks it is the configured chain,
// and opens the signer of every hot wallet.
func (e *engine) openChain(ctx context.Context, ch config.Chain, m *evm.Metrics, sm *signer.Metrics, opts engineOptions) (payout.Chain, *evm.Client, []payout.Signer, error) {
	// Keys are decrypted (CPU) while the upstreams are checked (network),
	// and go on opening while the engine starts: see startEngine.
	openings := e.openSigners(ch, opts)
	client, err := e.dialChain(ctx, ch, m)
	if err != nil {
		return payout.Chain{}, nil, nil, err
	}
	signers := make([]payout.Signer, len(openings))
	wallets := make([]common.Address, len(openings))
	for i, o := range openings {
		signers[i] = signer.Instrumented{Signer: o, Backend: ch.HotWallets[i].Signer.Type, Metrics: sm}
		wallets[i] = o.Address()
		e.openings[walletKey{ch.Name, o.Address()}] = o
	}
	return domainChain(ch, wallets), client, signers, nil
}

// dialChain starts the chain's upstream pool and checks that it answers
// for the configured chain id.
func (e *engine) dialChain(ctx context.Context, ch config.Chain, m *evm.Metrics) (*evm.Client, error) {
	pool, err := e.startPool(ctx, ch)
	if err != nil {
		return nil, err
	}
	client := evm.NewClient(pool, ch.Name, m)
	idCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	id, err := client.ChainID(idCtx)
	if err != nil {
		return nil, fmt.Errorf("chain %s: no upstream answers for chain id %d: %w", ch.Name, ch.ChainID, err)
	}
	if id != ch.ChainID {
		return nil, fmt.Errorf("chain %s: upstream is on chain id %d, the config says %d", ch.Name, id, ch.ChainID)
	}
	return client, nil
}

// openSigners starts opening the chain's hot wallets' signers and returns
// them at once, still opening: a keystore takes about a CPU second of
// scrypt to decrypt, and a restarted engine should send as soon as one
// key is open (the other wallets hand their payouts to it meanwhile), not
// after the last one. So the first key opens alone, at full speed; then
// the others, at most one per CPU at a time (each holds 256 MiB while it
// works). A signer that cannot be reached (a remote signer, an HSM or MPC
// parties down) does not hold the engine up: its opening is Retrying and
// is tried again, from 1 s to every 30 s, until it opens or the engine
// closes.
func (e *engine) openSigners(ch config.Chain, opts engineOptions) []*signer.Opening {
	out := make([]*signer.Opening, len(ch.HotWallets))
	slots := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	firstOpen := make(chan struct{})
	for i, w := range ch.HotWallets {
		out[i] = signer.NewOpening(common.HexToAddress(w.Address))
		go func() {
			if i > 0 {
				<-firstOpen
			}
			slots <- struct{}{}
			sg, err := openSigner(ch.Name, w, opts)
			<-slots
			if i == 0 {
				close(firstOpen)
			}
			// Give scrypt's 256 MiB back before the next key takes its
			// slot; left to the collector, the heap reached 1 GiB with
			// four wallets.
			debug.FreeOSMemory()
			for wait := time.Second; errors.Is(err, payout.ErrSignerUnavailable); wait = min(2*wait, 30*time.Second) {
				out[i].Retrying(err)
				if wait == time.Second {
					e.log.Warn("hot wallet's signer cannot be reached: the engine starts without it, its payouts wait, and it is tried again",
						"chain", ch.Name, "wallet", w.Address, "err", err)
				}
				select {
				case <-e.stopOpening.Done():
					out[i].Set(nil, err)
					return
				case <-time.After(wait):
				}
				if sg, err = openSigner(ch.Name, w, opts); err == nil {
					e.log.Info("hot wallet's signer reached and opened", "chain", ch.Name, "wallet", w.Address)
				}
			}
			out[i].Set(sg, err)
		}()
	}
	return out
}

// startPool starts the pool of a chain's upstreams and checks each once.
func (e *engine) startPool(ctx context.Context, ch config.Chain) (*rpcpool.Pool, error) {
	pool, err := startPool(ctx, ch, e.log, e.reg)
	if err != nil {
		return nil, err
	}
	e.pools = append(e.pools, pool)
	if e.poolOf == nil {
		e.poolOf = map[string]*rpcpool.Pool{}
	}
	e.poolOf[ch.Name] = pool
	return pool, nil
}

// startPool builds a chain's pool of upstreams and checks each once.
func startPool(ctx context.Context, ch config.Chain, log *slog.Logger, reg prometheus.Registerer) (*rpcpool.Pool, error) {
	ups := make([]rpcpool.UpstreamConfig, len(ch.Upstreams))
	for i, u := range ch.Upstreams {
		ups[i] = rpcpool.UpstreamConfig{URL: u.URL, Headers: u.Headers, Role: rpcpool.Role(u.Role), RequestsPerSecond: u.RequestsPerSecond}
	}
	pool, err := rpcpool.New(rpcpool.Config{Chain: ch.Name, ChainID: ch.ChainID, Upstreams: ups, Logger: log, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("chain %s: %w", ch.Name, err)
	}
	startCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := pool.Start(startCtx); err != nil {
		return nil, fmt.Errorf("chain %s: start upstream pool: %w", ch.Name, err)
	}
	return pool, nil
}

// withRPCProxy serves POST /rpc/{chain} beside the API unless disabled.
func withRPCProxy(cfg *config.Config, pools map[string]*rpcpool.Pool, api http.Handler, log *slog.Logger, reg prometheus.Registerer) http.Handler {
	if cfg.RPCProxy.Disabled {
		return api
	}
	mux := http.NewServeMux()
	mux.Handle("/rpc/", rpcpool.NewProxy(pools, rpcpool.ProxyConfig{Tokens: cfg.ProxyTokens(), Logger: log, Registerer: reg}))
	mux.Handle("/", api)
	return mux
}

// broadcast sends a stored signed transaction to every usable upstream of
// a chain.
func (e *engine) broadcast(ctx context.Context, chain string, raw []byte) error {
	pool := e.poolOf[chain]
	if pool == nil {
		return fmt.Errorf("chain %q is not configured", chain)
	}
	_, err := pool.Broadcast(ctx, raw)
	return err
}

// upstreamViews reports a chain's upstreams for GET /v1/status.
func (e *engine) upstreamViews(chain string) []httpapi.UpstreamView {
	pool := e.poolOf[chain]
	if pool == nil {
		return nil
	}
	var out []httpapi.UpstreamView
	for _, u := range pool.Status() {
		v := httpapi.UpstreamView{Name: u.Name, URL: u.URL, Role: string(u.Role), Healthy: u.Healthy,
			Breaker: string(u.Breaker), WrongChain: u.WrongChain, Syncing: u.Syncing, Head: u.Head, Lag: u.Lag,
			P50MS: float64(u.P50.Microseconds()) / 1000, P90MS: float64(u.P90.Microseconds()) / 1000,
			ErrorRate: u.ErrorRate, LastError: u.LastError}
		if u.RateLimited.After(time.Now()) {
			until := u.RateLimited
			v.RateLimitedTo = &until
		}
		out = append(out, v)
	}
	return out
}

// openSigner opens a hot wallet's signer (or takes the one handed in) and
// checks that it holds the wallet's key.
func openSigner(chain string, w config.HotWallet, opts engineOptions) (payout.Signer, error) {
	addr := common.HexToAddress(w.Address)
	sg, ok := opts.Signers[addr]
	if !ok {
		var err error
		sg, err = openSignerFor(context.Background(), w.Signer, fmt.Sprintf("chain %s hot wallet %s signer", chain, addr.Hex()), slog.Default(), addr)
		if err != nil {
			return nil, err
		}
	}
	if sg.Address() != addr {
		return nil, fmt.Errorf("chain %s: the signer holds the key of %s, not of hot wallet %s", chain, sg.Address().Hex(), addr.Hex())
	}
	return sg, nil
}

// domainChain turns a configured chain into the domain's view of it.
func domainChain(ch config.Chain, wallets []common.Address) payout.Chain {
	return payout.Chain{Name: ch.Name, ChainID: ch.ChainID, Confirmations: ch.Confirmations, Assets: assetsOf(ch),
		HotWallet: wallets[0], HotWallets: wallets}
}

// assetsOf returns a chain's assets by symbol: its coin and its tokens.
func assetsOf(ch config.Chain) map[string]payout.Asset {
	assets := map[string]payout.Asset{ch.NativeSymbol: {Symbol: ch.NativeSymbol, Decimals: *ch.NativeDecimals}}
	for _, t := range ch.Tokens {
		a := common.HexToAddress(t.Address)
		assets[t.Symbol] = payout.Asset{Symbol: t.Symbol, Token: &a, Decimals: t.Decimals}
	}
	return assets
}

func apiKeys(cfg *config.Config) ([]httpapi.APIKey, error) {
	keys := make([]httpapi.APIKey, len(cfg.APIKeys))
	for i, k := range cfg.APIKeys {
		h, err := k.Hash()
		if err != nil {
			return nil, err
		}
		keys[i] = httpapi.APIKey{ID: fmt.Sprintf("key_%x", h[:6]), Name: k.Name, Hash: h, Labels: k.Labels,
			RateLimit: payout.RateLimit{PerSecond: k.RateLimit.PerSecond, Burst: k.RateLimit.Burst}}
		for _, name := range k.Scopes {
			sc, err := payout.ParseScope(name)
			if err != nil {
				return nil, fmt.Errorf("api_keys[%d].scopes: %w", i, err)
			}
			keys[i].Scopes = append(keys[i].Scopes, sc)
		}
	}
	return keys, nil
}

// signerCheck asks the signer's health check when it has one (a remote
// signer never signs a bare digest), else signs a test digest and checks
// who signed it.
func signerCheck(s payout.Signer) func(context.Context) error {
	return func(ctx context.Context) error {
		if c, ok := s.(signer.Checker); ok {
			return c.Health(ctx)
		}
		digest := crypto.Keccak256Hash([]byte("sluice readiness check"))
		sig, err := s.SignDigest(ctx, digest)
		if err != nil {
			return err
		}
		pub, err := crypto.SigToPub(digest[:], sig)
		if err != nil {
			return err
		}
		if crypto.PubkeyToAddress(*pub) != s.Address() {
			return errors.New("signature recovers to another address")
		}
		return nil
	}
}

func (e *engine) serve(addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	e.listener = ln
	e.server = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go func() { e.served <- e.server.Serve(ln) }()
	e.log.Info("API listening", "url", e.URL())
	return nil
}

// pruneIdempotency deletes expired idempotency records now and every hour
// until the returned stop is called.
func (e *engine) pruneIdempotency(api *httpapi.Server) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Hour)
		defer tick.Stop()
		for {
			pctx, pcancel := context.WithTimeout(ctx, time.Minute)
			n, err := api.PruneIdempotency(pctx)
			pcancel()
			if err != nil && ctx.Err() == nil {
				e.log.Warn("prune idempotency records", "err", err)
			} else if n > 0 {
				e.log.Info("pruned idempotency records", "deleted", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// URL is the API's base URL.
func (e *engine) URL() string {
	addr := e.listener.Addr().String()
	if strings.HasPrefix(addr, "[::]") || strings.HasPrefix(addr, "0.0.0.0") {
		_, port, _ := net.SplitHostPort(addr)
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	return "http://" + addr
}

// wake wakes the sender of a new payout's hot wallet (all of them when it
// is not known), not every sender: each woken sender reads its queue.
func (e *engine) wake(p *payout.Payout) {
	if s := e.byWallet[walletKey{p.Chain, p.Sender}]; s != nil {
		s.Wake()
		return
	}
	for _, s := range e.senders {
		s.Wake()
	}
}

// Wait blocks until the HTTP server fails or ctx ends.
func (e *engine) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-e.served:
		return fmt.Errorf("http server: %w", err)
	}
}

// Close stops serving, stops the senders and closes the database.
func (e *engine) Close() error {
	e.startMu.Lock()
	e.closing = true
	e.startMu.Unlock()
	e.cancelOpenings()
	var errs []error
	if e.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, e.server.Shutdown(ctx))
		cancel()
	}
	if e.stopPrune != nil {
		e.stopPrune()
	}
	if e.sweeper != nil {
		e.sweeper.Stop()
	}
	if e.breakers != nil {
		e.breakers.Stop()
	}
	for _, w := range e.watchers {
		w.Stop()
	}
	for _, s := range e.senders {
		s.Stop()
	}
	for _, p := range e.pools {
		p.Stop()
	}
	if e.webhooks != nil {
		e.webhooks.Stop()
	}
	if e.store != nil {
		errs = append(errs, e.store.Close())
	}
	if e.unlock != nil {
		e.unlock()
	}
	return errors.Join(errs...)
}

// instanceLockWait is how long a starting engine waits for the data dir's
// lock: a supervisor that restarts a killed engine at once can start the
// new one while the kernel is still tearing the old one down.
var instanceLockWait = 5 * time.Second

// lockWithin takes an exclusive flock on f, trying until wait has passed.
func lockWithin(f *os.File, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// instanceID returns this engine's identity for leases: kept in the data
// dir, so an engine restarted after a crash takes its own leases back at
// once instead of waiting for them to expire. An exclusive lock on the
// data dir (released by the kernel when the process dies, however it
// dies) makes sure no two live engines share the identity; a second
// engine on the same data dir is refused.
func instanceID(dataDir string) (string, func(), error) {
	lock, err := os.OpenFile(filepath.Join(dataDir, "instance.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", nil, fmt.Errorf("instance lock: %w", err)
	}
	if err := lockWithin(lock, instanceLockWait); err != nil {
		lock.Close()
		return "", nil, fmt.Errorf("another sluice engine is running with data dir %s (its lock %s is held): "+
			"give each engine its own --data-dir", dataDir, lock.Name())
	}
	unlock := func() { lock.Close() }
	path := filepath.Join(dataDir, "instance-id")
	b, err := os.ReadFile(path)
	id := strings.TrimSpace(string(b))
	if errors.Is(err, os.ErrNotExist) || id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s-%s", host, randomHex(6))
		if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
			unlock()
			return "", nil, fmt.Errorf("write instance id: %w", err)
		}
	} else if err != nil {
		unlock()
		return "", nil, fmt.Errorf("read instance id: %w", err)
	}
	return id, unlock, nil
}

// batching turns a chain's batching config (validated) into the sender's.
func batching(b config.Batching) txm.Batching {
	out := txm.Batching{GasBudget: b.GasBudget, MaxInFlight: b.MaxInFlight}
	switch b.Mode {
	case "eip7702":
		out.Mode, out.Executor = txm.BatchEIP7702, common.HexToAddress(b.Executor)
	case "contract":
		out.Mode, out.Contract = txm.BatchContract, common.HexToAddress(b.Contract)
	}
	return out
}

// blockTimes reads block timestamps through each chain's client.
func blockTimes(clients map[string]*evm.Client) func(ctx context.Context, chain string, number uint64) (time.Time, error) {
	return func(ctx context.Context, chain string, number uint64) (time.Time, error) {
		c := clients[chain]
		if c == nil {
			return time.Time{}, fmt.Errorf("no chain %q", chain)
		}
		h, err := c.Header(ctx, &number)
		if err != nil {
			return time.Time{}, err
		}
		return time.Unix(int64(h.Time), 0).UTC(), nil
	}
}

// defaultReconcileEvery is how often the books are reconciled when the
// config does not say.
const defaultReconcileEvery = time.Minute

// startReconcile starts a watcher per chain that reconciles its hot
// wallets' books with the chain over the blocks their senders have settled
// (engine.reconcile_every; negative: none).
func (e *engine) startReconcile(ctx context.Context, cfg *config.Config, clients map[string]*evm.Client) error {
	every := cfg.Engine.ReconcileEvery
	if every < 0 {
		return nil
	}
	if every == 0 {
		every = defaultReconcileEvery
	}
	metrics := reconcile.NewMetrics(e.reg)
	for _, ch := range cfg.Chains {
		wallets := make([]common.Address, len(ch.HotWallets))
		for i, w := range ch.HotWallets {
			wallets[i] = common.HexToAddress(w.Address)
		}
		w, err := reconcile.NewWatcher(reconcile.WatchConfig{
			Chain: ch.Name, ChainID: ch.ChainID, Assets: chainAssets(ch), Wallets: wallets, Confirmations: ch.Confirmations,
			Every: every, Books: e.store, Node: clients[ch.Name], Marks: e.store, Metrics: metrics, Logger: e.log,
			Settled: func(wallet common.Address) uint64 {
				if s := e.byWallet[walletKey{ch.Name, wallet}]; s != nil {
					return s.Settled()
				}
				return 0
			},
		})
		if err != nil {
			return err
		}
		w.Start(context.WithoutCancel(ctx))
		e.watchers = append(e.watchers, w)
	}
	return nil
}

// startRisk starts the approval sweep and the circuit breakers.
func (e *engine) startRisk(ctx context.Context, cfg *config.Config, catalog *payout.Catalog) error {
	e.sweeper = payout.NewApprovalSweeper(e.store, cfg.Approvals.Sweep, time.Now, e.log)
	e.sweeper.PolicyExpiry = cfg.Approvals.Expiry // a policy version waits as long as a payout
	e.sweeper.OnReleased = func(ctx context.Context, id string) {
		if p, err := e.store.GetPayout(ctx, id); err == nil {
			e.wake(p)
		}
	}
	e.sweeper.Start(context.WithoutCancel(ctx))
	rules := make([]breaker.Rule, 0, len(cfg.Breakers))
	for i, b := range cfg.Breakers {
		ch, ok := catalog.Chains[b.Chain]
		if _, known := ch.Assets[b.Asset]; !ok || (b.Asset != "" && !known) {
			return fmt.Errorf("config: breakers[%d]: chain %q or asset %q is not configured", i, b.Chain, b.Asset)
		}
		r := breaker.Rule{Name: b.Name, Scope: payout.PauseScope(b.Scope), Chain: b.Chain, Asset: b.Asset,
			Window: b.Window, MaxFailureRate: b.MaxFailureRate, MinCount: b.MinCount}
		if b.Wallet != "" {
			r.Wallet = common.HexToAddress(b.Wallet)
		}
		if b.MaxOutflow != "" {
			r.MaxOutflow, _ = config.ParseWei(b.MaxOutflow) // checked by config
		}
		rules = append(rules, r)
	}
	var err error
	if e.breakers, err = breaker.New(breaker.Config{Store: e.store, Rules: rules, Logger: e.log, Registerer: e.reg}); err != nil {
		return err
	}
	e.breakers.Start(context.WithoutCancel(ctx))
	return nil
}

// policyRecheck decides queued payouts again just before they are signed,
// with the active policy (nil when the store keeps no policies).
func policyRecheck(st payout.Store, catalog *payout.Catalog, balance policy.BalanceFunc) func(context.Context, *payout.Payout) (payout.Code, string, error) {
	ps, ok := st.(payout.PolicyStore)
	if !ok {
		return nil
	}
	r := policy.NewRechecker(ps, balance)
	return func(ctx context.Context, p *payout.Payout) (payout.Code, string, error) {
		if payout.IsSweepOf(p, "") {
			// A rotation's sweep moves funds between two hot wallets of
			// the config; its external id cannot be given by a client.
			return "", "", nil
		}
		var decimals uint8
		if _, a, err := catalog.Lookup(p.Chain, p.Asset); err == nil {
			decimals = a.Decimals
		}
		return r.Recheck(ctx, p, decimals)
	}
}
