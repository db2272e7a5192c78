package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/payout"
)

// Store is what the dispatcher needs of the database: the outbox and the
// webhook tables.
type Store interface {
	payout.WebhookStore
	// ListEvents returns events with Seq > afterSeq, oldest first.
	ListEvents(ctx context.Context, afterSeq int64, limit int) ([]payout.Event, error)
	// LastEventSeq returns the Seq of the newest event (0: none), with
	// every event up to it readable, as ListEvents would see them.
	LastEventSeq(ctx context.Context) (int64, error)
}

// Config configures a Dispatcher. Store and Owner are required.
type Config struct {
	Store Store
	// Committed, when not nil, returns a channel closed at the store's
	// next commit in this process (store.DB.Committed), so new events go
	// out at once; writes of other instances are seen by polling.
	Committed func() <-chan struct{}
	// Owner names this instance in the lease. Required.
	Owner string
	// Now is the clock for schedules, signatures and health. Default: time.Now.
	Now func() time.Time
	// Logger gets the dispatcher's logs. Default: slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics when not nil.
	Registerer prometheus.Registerer
	// Timeout bounds one attempt, connect to status line. Default: 10 s.
	Timeout time.Duration
	// Poll is how often the outbox and due retries are read without a
	// wake-up. Default: 1 s.
	Poll time.Duration
	// LeaseTTL is how long the lease lasts unrenewed: a crashed holder's
	// lease is taken over after it. Default: 15 s.
	LeaseTTL time.Duration
	// Schedule is the wait before each retry. Default: DefaultSchedule.
	Schedule []time.Duration
	// DisableAfter disables an endpoint with no success for this long.
	// Default: 72 h.
	DisableAfter time.Duration
	// Workers is how many attempts run at once. Default: 32.
	Workers int
	// BatchSize is how many events one fan-out transaction reads.
	// Default: 500.
	BatchSize int
	// AllowPrivateTargets lets deliveries reach loopback, private and
	// link-local addresses (sandbox, tests). Default: false.
	AllowPrivateTargets bool
}

func (c *Config) fill() error {
	if c.Store == nil {
		return errors.New("events: Config.Store is required")
	}
	if c.Owner == "" {
		return errors.New("events: Config.Owner is required")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 15 * time.Second
	}
	if c.Schedule == nil {
		c.Schedule = DefaultSchedule
	}
	if c.DisableAfter <= 0 {
		c.DisableAfter = 72 * time.Hour
	}
	if c.Workers <= 0 {
		c.Workers = 32
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	return nil
}

// job is one attempt to make.
type job struct {
	d    *payout.WebhookDelivery
	ev   payout.Event
	ep   *payout.WebhookEndpoint
	body []byte
}

// Dispatcher delivers the outbox to webhook endpoints. Start it, Stop it.
type Dispatcher struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics
	client  *http.Client
	jobs    chan job
	results chan payout.WebhookResult
	kick    chan struct{}      // room freed: claim more
	cancel  context.CancelFunc // stops the loop
	abandon context.CancelFunc // stops the attempts still running
	wg      sync.WaitGroup

	// Used by the run loop only.
	leader    bool
	cursor    int64
	renewedAt time.Time // when the lease was last taken or renewed
	triedAt   time.Time // when a follower last tried to take it
	skippedAt time.Time // when events were last skipped for want of endpoints

	// mu guards inflight: deliveries claimed and not yet recorded.
	mu       sync.Mutex
	inflight map[string]struct{}

	gate *endpointGate // one attempt at a time to a failing endpoint
}

// New checks cfg and builds a dispatcher.
func New(cfg Config) (*Dispatcher, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("events: metrics: %w", err)
	}
	d := &Dispatcher{cfg: cfg, log: cfg.Logger.With("component", "webhooks"), m: m,
		jobs: make(chan job, cfg.Workers*4), results: make(chan payout.WebhookResult, cfg.Workers*4),
		kick: make(chan struct{}, 1), inflight: map[string]struct{}{}, gate: newEndpointGate()}
	d.client = newClient(cfg.AllowPrivateTargets)
	return d, nil
}

// newClient makes the delivery client: no redirects followed, no proxy,
// and, unless allowPrivate, connections only to allowed addresses.
func newClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = DialControl
	}
	tr := &http.Transport{DialContext: dialer.DialContext, MaxIdleConns: 256, MaxIdleConnsPerHost: 64,
		IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 5 * time.Second, ForceAttemptHTTP2: true}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// stopGrace is how long Stop lets running attempts finish and be recorded.
const stopGrace = 2 * time.Second

// Start runs the dispatcher until Stop.
func (d *Dispatcher) Start(ctx context.Context) {
	sendCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	ctx, d.cancel = context.WithCancel(ctx)
	d.abandon = abandon
	var senders sync.WaitGroup
	for range d.cfg.Workers {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for j := range d.jobs {
				if !d.gate.admit(j.ep.ID) {
					// Its endpoint stalls and is already being tried: leave this
					// one claimed; it comes back when the claim runs out.
					d.m.deferred.Inc()
					d.forget(j.d.ID)
					continue
				}
				r := d.attempt(sendCtx, j)
				// Only a slow failure holds a sender: a receiver that answers
				// an error at once costs nothing to try in parallel.
				stalled := r.Status != payout.DeliverySucceeded && r.Duration >= d.cfg.Timeout/2
				d.gate.done(j.ep.ID, stalled)
				if r.StatusCode == 0 && sendCtx.Err() != nil {
					// Stopped mid-attempt: not a failure of the endpoint. It
					// stays claimed and is sent again after the claim.
					d.forget(j.d.ID)
					continue
				}
				d.results <- r
			}
		}()
	}
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		d.run(ctx)
		close(d.jobs) // the senders finish what is queued, failing fast on the cancelled ctx
		senders.Wait()
		close(d.results)
	}()
	go func() {
		defer d.wg.Done()
		d.record()
	}()
}

// Stop ends the dispatcher: no new work is taken, attempts already queued
// or running get stopGrace to finish and are recorded (those cut off stay
// claimed and are sent again later), and the lease is given up. It waits
// for all of it.
func (d *Dispatcher) Stop() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	t := time.AfterFunc(stopGrace, d.abandon)
	d.wg.Wait()
	t.Stop()
	d.abandon()
	if d.leader {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.cfg.Store.ReleaseWebhookLease(ctx, d.cfg.Owner); err != nil {
			d.log.Warn("release lease", "err", err)
		}
	}
}

// run is the loop: hold the lease, fan new events out, claim due retries,
// then sleep until a commit, a poll tick or freed room.
func (d *Dispatcher) run(ctx context.Context) {
	tick := time.NewTicker(d.cfg.Poll)
	defer tick.Stop()
	for {
		var wake <-chan struct{}
		if d.cfg.Committed != nil {
			wake = d.cfg.Committed()
		}
		if err := d.step(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("dispatch", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick.C:
		case <-d.kick:
		}
	}
}

// step does one round of work with a bounded time.
func (d *Dispatcher) step(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := d.holdLease(ctx); err != nil || !d.leader {
		return err
	}
	// Without endpoints there is nothing to fan out or to claim.
	if skipped, err := d.skipWithoutEndpoints(ctx); skipped || err != nil {
		return err
	}
	if err := d.fanOut(ctx); err != nil {
		return err
	}
	return d.claim(ctx)
}

// holdLease takes the lease, or renews it once a third of it has passed.
func (d *Dispatcher) holdLease(ctx context.Context) error {
	now := time.Now()
	if d.leader && now.Sub(d.renewedAt) < d.cfg.LeaseTTL/3 {
		return nil
	}
	// A follower is woken by every commit here; it asks once a poll.
	if !d.leader && now.Sub(d.triedAt) < d.cfg.Poll {
		return nil
	}
	d.triedAt = now
	cursor, err := d.cfg.Store.AcquireWebhookLease(ctx, d.cfg.Owner, d.cfg.LeaseTTL)
	if errors.Is(err, payout.ErrLeaseHeld) {
		if d.leader {
			d.log.Info("lost the dispatch lease")
		}
		d.leader = false
		return nil
	}
	if err != nil {
		d.leader = false
		return fmt.Errorf("acquire lease: %w", err)
	}
	if !d.leader {
		d.log.Info("dispatching webhooks", "owner", d.cfg.Owner, "cursor", cursor)
		d.cursor = cursor
	}
	d.leader, d.renewedAt = true, now
	return nil
}

// claimHold is how long a claimed delivery waits before another claim may
// take it: long enough for the queue ahead of it and its own attempt.
func (d *Dispatcher) claimHold() time.Duration { return 6*d.cfg.Timeout + 30*time.Second }

// fanOut turns new outbox events into deliveries, batch by batch, and
// queues at once as many as the queue has room for; the others are stored
// due now and claimed as room frees. It never waits for the queue, so a
// slow receiver neither holds the cursor back nor lets the lease lapse.
func (d *Dispatcher) fanOut(ctx context.Context) error {
	for {
		// A long backlog must not outlast the lease.
		if err := d.holdLease(ctx); err != nil || !d.leader {
			return err
		}
		evs, err := d.cfg.Store.ListEvents(ctx, d.cursor, d.cfg.BatchSize)
		if err != nil || len(evs) == 0 {
			return err
		}
		// Read after the events, every batch: an endpoint disabled (410, or
		// by an operator) while an earlier batch was out gets no delivery
		// of an event committed after that.
		eps, err := d.cfg.Store.EnabledWebhookEndpoints(ctx)
		if err != nil {
			return err
		}
		now := d.cfg.Now()
		room := cap(d.jobs) - d.inflightCount()
		var ds []*payout.WebhookDelivery
		var js []job
		for _, ev := range evs {
			for _, ep := range eps {
				// An endpoint gets the events that happened after it was created.
				if !ep.Matches(ev.Type) || ev.CreatedAt.Before(ep.CreatedAt) {
					continue
				}
				dl := &payout.WebhookDelivery{ID: payout.NewWebhookDeliveryID(now), EndpointID: ep.ID, EventID: ev.ID,
					EventType: ev.Type, EventSeq: ev.Seq, Status: payout.DeliveryPending, NextAttemptAt: now}
				if len(js) < room {
					dl.NextAttemptAt = now.Add(d.claimHold()) // claimed by this dispatcher
					js = append(js, job{d: dl, ev: ev, ep: ep})
				}
				ds = append(ds, dl)
			}
		}
		last := evs[len(evs)-1].Seq
		err = d.cfg.Store.FanOutEvents(ctx, d.cfg.Owner, d.cursor, last, ds)
		if errors.Is(err, payout.ErrLeaseHeld) {
			d.leader = false
			d.log.Info("lost the dispatch lease during fan-out")
			return nil
		}
		if err != nil {
			return fmt.Errorf("fan out: %w", err)
		}
		d.cursor = last
		for _, j := range js {
			d.enqueue(j)
		}
	}
}

// skipWithoutEndpoints moves the cursor past the new events without
// reading them when no endpoint is enabled (none would get them: an
// endpoint gets only the events after its creation), and says whether it
// did so. It looks at most once a poll: the first endpoint's first events
// may wait that long. The newest event is read before the endpoints, as
// fanOut reads the events before them: an endpoint created meanwhile is
// seen, and the events are read as usual.
func (d *Dispatcher) skipWithoutEndpoints(ctx context.Context) (bool, error) {
	if time.Since(d.skippedAt) < d.cfg.Poll {
		return true, nil
	}
	last, err := d.cfg.Store.LastEventSeq(ctx)
	if err != nil {
		return false, err
	}
	eps, err := d.cfg.Store.EnabledWebhookEndpoints(ctx)
	if err != nil || len(eps) > 0 {
		return false, err
	}
	if last <= d.cursor {
		d.skippedAt = time.Now()
		return true, nil
	}
	err = d.cfg.Store.FanOutEvents(ctx, d.cfg.Owner, d.cursor, last, nil)
	if errors.Is(err, payout.ErrLeaseHeld) {
		d.leader = false
		d.log.Info("lost the dispatch lease while skipping events no endpoint wants")
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("skip events: %w", err)
	}
	d.cursor, d.skippedAt = last, time.Now()
	return true, nil
}

// claim queues due retries (and deliveries a dead dispatcher left), as
// many as there is room for.
//
// The in-flight set stays locked from the read to the check: a delivery in
// flight whose result is recorded after the claim read it as pending must
// still count as in flight, or it would be sent twice.
func (d *Dispatcher) claim(ctx context.Context) error {
	d.mu.Lock()
	room := cap(d.jobs) - len(d.inflight)
	if room <= 0 {
		d.mu.Unlock()
		return nil
	}
	now := d.cfg.Now()
	due, err := d.cfg.Store.ClaimDueDeliveries(ctx, now, now.Add(d.claimHold()), room, d.inflight)
	var fresh []job
	for _, dd := range due {
		if _, ok := d.inflight[dd.Delivery.ID]; !ok {
			d.inflight[dd.Delivery.ID] = struct{}{}
			fresh = append(fresh, job{d: dd.Delivery, ev: dd.Event, ep: dd.Endpoint})
		}
	}
	n := len(d.inflight)
	d.mu.Unlock()
	d.m.inflight.Set(float64(n))
	if err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	for _, j := range fresh {
		d.hand(j)
	}
	return nil
}

// enqueue hands a claimed delivery to the senders without waiting. The
// callers only claim what the queue has room for (the queue holds no more
// than the in-flight set); should it be full anyway, the delivery stays
// claimed and is sent when the claim runs out.
func (d *Dispatcher) enqueue(j job) {
	d.mu.Lock()
	d.inflight[j.d.ID] = struct{}{}
	n := len(d.inflight)
	d.mu.Unlock()
	d.m.inflight.Set(float64(n))
	d.hand(j)
}

// hand gives a job already in the in-flight set to the senders.
func (d *Dispatcher) hand(j job) {
	select {
	case d.jobs <- j:
	default:
		d.log.Warn("webhook queue full; delivery waits for its claim to run out", "delivery_id", j.d.ID)
		d.forget(j.d.ID)
	}
}

func (d *Dispatcher) inflightCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.inflight)
}

// recordBatch is the most results one transaction records.
const recordBatch = 500

// record stores results in batches until the results channel closes.
func (d *Dispatcher) record() {
	for r := range d.results {
		batch := []payout.WebhookResult{r}
	drain:
		for len(batch) < recordBatch {
			select {
			case r, ok := <-d.results:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := d.cfg.Store.RecordWebhookResults(ctx, batch)
		cancel()
		if err != nil {
			// Not recorded: the deliveries stay claimed and are sent again
			// after the claim runs out (at least once).
			d.log.Error("record webhook results", "n", len(batch), "err", err)
		}
		d.forget(batchIDs(batch)...)
	}
}

func batchIDs(rs []payout.WebhookResult) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.DeliveryID
	}
	return ids
}

// forget drops deliveries from the in-flight set and wakes the loop to
// claim more.
func (d *Dispatcher) forget(ids ...string) {
	d.mu.Lock()
	for _, id := range ids {
		delete(d.inflight, id)
	}
	n := len(d.inflight)
	d.mu.Unlock()
	d.m.inflight.Set(float64(n))
	select {
	case d.kick <- struct{}{}:
	default:
	}
}
