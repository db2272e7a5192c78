package rpcpool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/rpc"
)

// staleOK are methods whose answer does not depend on the node's head, so
// a lagging or syncing upstream may give it.
var staleOK = map[string]bool{
	"eth_chainId":            true,
	"net_version":            true,
	"web3_clientVersion":     true,
	"eth_getBlockByHash":     true,
	"eth_sendRawTransaction": true,
}

// noHedge are methods never sent twice at once: a broadcast is not a read.
var noHedge = map[string]bool{"eth_sendRawTransaction": true}

// attemptFunc sends one request to one upstream; the pool calls it once
// per upstream tried.
type attemptFunc func(ctx context.Context, u *upstream) error

// result is one attempt's end.
type result struct {
	u     *upstream
	err   error
	out   outcome
	apply func() // copies the attempt's answer to the caller's result
}

// Call sends a JSON-RPC request through the pool and decodes its result
// into result, which must be a pointer (or nil). Transport errors,
// timeouts, 5xx, 429 and malformed responses move the request to the next
// upstream at once; a deterministic JSON-RPC error (a revert, nonce too
// low, ...) is the answer and is returned as it is. A slow read is hedged
// to a second upstream.
func (p *Pool) Call(ctx context.Context, result any, method string, args ...any) error {
	var raws = make([]json.RawMessage, len(p.ups))
	check := answerChecks[method]
	attempt := func(ctx context.Context, u *upstream) error {
		err := u.client.CallContext(ctx, &raws[u.index], method, args...)
		if err == nil && check != nil {
			err = check(p, u, raws[u.index])
		}
		return err
	}
	u, err := p.do(ctx, method, !staleOK[method], !noHedge[method], attempt)
	if u == nil || result == nil {
		return err
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raws[u.index], result); err != nil {
		return fmt.Errorf("decode %s result: %w", method, err)
	}
	return nil
}

// BatchCall sends the calls in one JSON-RPC batch through the pool, with
// the failover of Call for the batch as a whole. Each element's own
// error, if any, is in its Error field; the returned error means no
// upstream answered the batch. Batches are not hedged.
func (p *Pool) BatchCall(ctx context.Context, elems []rpc.BatchElem) error {
	if len(elems) == 0 {
		return nil
	}
	fresh := false
	for _, e := range elems {
		fresh = fresh || !staleOK[e.Method]
	}
	copies := make([][]rpc.BatchElem, len(p.ups))
	attempt := func(ctx context.Context, u *upstream) error {
		c := make([]rpc.BatchElem, len(elems))
		for i, e := range elems {
			c[i] = rpc.BatchElem{Method: e.Method, Args: e.Args, Result: new(json.RawMessage)}
		}
		copies[u.index] = c
		return u.client.BatchCallContext(ctx, c)
	}
	u, err := p.do(ctx, "batch", fresh, false, attempt)
	if err != nil {
		return err
	}
	for i, c := range copies[u.index] {
		elems[i].Error = c.Error
		if c.Error == nil && elems[i].Result != nil {
			if err := json.Unmarshal(*c.Result.(*json.RawMessage), elems[i].Result); err != nil {
				elems[i].Error = fmt.Errorf("decode %s result: %w", c.Method, err)
			}
		}
	}
	return nil
}

// do runs attempt on upstreams in candidate order until one answers, the
// candidates run out or ctx ends. It returns the upstream whose answer
// (a result or a deterministic error) won, with that error.
func (p *Pool) do(ctx context.Context, method string, fresh, hedge bool, attempt attemptFunc) (*upstream, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	defer cancel()
	p.hedges.request()
	cands := p.candidates(time.Now(), fresh)
	if len(cands) == 0 && p.waitRateLimit(ctx, fresh) {
		cands = p.candidates(time.Now(), fresh)
	}
	if len(cands) == 0 {
		p.recheck(ctx, fresh)
		cands = p.candidates(time.Now(), fresh)
	}
	u, err := p.race(ctx, cancel, method, fresh, hedge, attempt, cands)
	// Every upstream tried failed: the faults may have moved to where the
	// health state has not caught up yet (an upstream that recovered still
	// shows the stale head of its last failed check). Check now and try
	// again, a few times, within the request's deadline, until a round
	// finds nothing at all to ask. An upstream that was only backing off
	// after a rate limit was never asked: wait out its Retry-After, when
	// the deadline allows, rather than fail while it is still there.
	for range maxRechecks {
		if err == nil || u != nil || ctx.Err() != nil {
			break
		}
		if !p.waitRateLimit(ctx, fresh) {
			if errors.Is(err, ErrNoUpstream) {
				break
			}
			p.recheck(ctx, fresh)
		}
		u, err = p.race(ctx, cancel, method, fresh, hedge, attempt, p.candidates(time.Now(), fresh))
	}
	return u, err
}

// maxRechecks is how many times a request whose every upstream failed
// re-checks the upstreams and tries again.
const maxRechecks = 5

// race runs one round of attempts over cands, then over any upstream that
// became usable meanwhile, then over the sound upstreams whatever their
// breakers say. cancel ends ctx: the round calls it when an answer wins
// while the caller's own attempt still runs (see race.run).
func (p *Pool) race(ctx context.Context, cancel context.CancelFunc, method string, fresh, hedge bool, attempt attemptFunc, cands []*upstream) (*upstream, error) {
	r := &race{p: p, ctx: ctx, cancel: cancel, method: method, attempt: attempt, cands: cands, fresh: fresh}
	for _, u := range cands {
		r.seen |= 1 << u.index
	}
	if len(cands) == 0 {
		// Every breaker is open: rather than fail for sure, ask the sound
		// ones anyway, one at a time; an answer closes a breaker.
		hedge = false
		r.extend()
	}
	r.results = make(chan result, len(p.ups))
	return r.run(hedge)
}

// waitRateLimit waits, when every fit upstream is backing off after a
// rate limit, until the first of them may be asked again, if that comes
// before ctx's deadline. It reports whether it waited.
func (p *Pool) waitRateLimit(ctx context.Context, fresh bool) bool {
	now := time.Now()
	var first int64
	for _, u := range p.ups {
		if until := u.rlUntil.Load(); p.fit(u, now, fresh) && until > now.UnixNano() && (first == 0 || until < first) {
			first = until
		}
	}
	if first == 0 {
		return false
	}
	wait := time.Until(time.Unix(0, first))
	if deadline, ok := ctx.Deadline(); ok && now.Add(wait).After(deadline) {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// CallContext is Call under the name of rpc.Client's method, so the pool
// can stand where an *rpc.Client does.
func (p *Pool) CallContext(ctx context.Context, result any, method string, args ...any) error {
	return p.Call(ctx, result, method, args...)
}

// BatchCallContext is BatchCall under the name of rpc.Client's method.
func (p *Pool) BatchCallContext(ctx context.Context, elems []rpc.BatchElem) error {
	return p.BatchCall(ctx, elems)
}

// race is one request's attempts over its candidates.
type race struct {
	p        *Pool
	ctx      context.Context
	cancel   context.CancelFunc // ends ctx, and with it every attempt
	method   string
	fresh    bool
	attempt  attemptFunc
	cands    []*upstream
	next     int // the next candidate to try
	inFlight int
	results  chan result
	lastErr  error
	// seen holds the indexes of the upstreams in cands; forced those of
	// the candidates asked as a last resort, whatever their breakers say.
	seen, forced uint64
	// launched is how many attempts started.
	launched int
	// takenOver is done, and verdict holds the race's end, when takeOver
	// ran the race.
	takenOver sync.WaitGroup
	verdict   result
}

// run tries the candidates until one answers. The first attempt runs on
// the caller's goroutine: handing it to a worker and waiting for its
// result cost two goroutine wake-ups per request. Hedges, rescues and
// the attempts after a failure run on workers, under the loop below. If
// the hedge delay passes while the first attempt is still running, the
// hedge timer's goroutine takes the race over (takeOver): it launches
// the hedge and runs the loop, the first attempt's result reaching it
// like a worker's; when another attempt wins, it cancels the request's
// context so that the first attempt, and the caller with it, end at once.
func (r *race) run(hedge bool) (*upstream, error) {
	u := r.pick()
	if u == nil {
		return nil, r.fail()
	}
	var t *time.Timer
	if hedge {
		r.takenOver.Add(1)
		t = time.AfterFunc(r.hedgeDelay(u), r.takeOver)
	}
	// Until t is stopped, takeOver may own the race's state: this
	// goroutine touches none of it.
	res := r.try(u)
	if t != nil && !t.Stop() {
		r.results <- res
		r.takenOver.Wait()
		return r.verdict.u, r.verdict.err
	}
	if res.out != outcomeOK && res.out != outcomeAnswer && r.ctx.Err() != nil {
		return nil, fmt.Errorf("%s: %w", r.method, r.ctx.Err())
	}
	if end, u, err := r.settle(res); end {
		return u, err
	}
	return r.loop(hedge, nil)
}

// takeOver runs the race from the moment the hedge delay passed with the
// first attempt, on the caller's goroutine, still running.
func (r *race) takeOver() {
	u, err := r.loop(false, r.hedge())
	if u != nil {
		// An answer won: end the attempts still running, the caller's
		// among them. (The request would end with this answer anyway.)
		r.cancel()
	}
	r.verdict = result{u: u, err: err}
	r.takenOver.Done()
}

// loop waits for the attempts in flight, launching hedges, rescues and
// the next candidates, until an answer wins, the candidates run out or
// the request ends. hedge asks for a hedge once a single attempt has run
// longer than its upstream's hedge delay; rescueC is a rescue already
// scheduled.
func (r *race) loop(hedge bool, rescueC <-chan time.Time) (*upstream, error) {
	for {
		var hedgeC <-chan time.Time
		if hedge && r.inFlight == 1 {
			t := time.NewTimer(r.hedgeDelay(r.cands[r.next-1]))
			hedgeC = t.C
			defer t.Stop()
		}
		select {
		case <-r.ctx.Done():
			return nil, fmt.Errorf("%s: %w", r.method, r.ctx.Err())
		case <-hedgeC:
			rescueC = r.hedge()
			hedge = false // one hedge per request
		case <-rescueC:
			rescueC = nil
			if r.inFlight != 1 {
				break
			}
			if r.launch() {
				r.cands[r.next-1].m.hedges.Inc()
			} else {
				// Nothing else to ask yet: have every upstream checked
				// (one that recovered shows a stale head until then) and
				// look again shortly.
				r.p.recheckAsync()
				rescueC = time.After(minRescueDelay)
			}
		case res := <-r.results:
			if end, u, err := r.settle(res); end {
				return u, err
			}
		}
	}
}

// hedge launches the hedge of an attempt that has run past its hedge
// delay. When the budget is spent, or no other upstream is known usable,
// it returns the rescue's timer instead: the read goes elsewhere anyway
// if the upstream goes on saying nothing for much longer than it ever
// takes (a black hole), rather than wait out the attempt deadline.
func (r *race) hedge() <-chan time.Time {
	if r.next < len(r.cands) && r.p.hedges.take() && r.launch() {
		r.cands[r.next-1].m.hedges.Inc()
		return nil
	}
	return time.After(r.rescueDelay(r.cands[r.next-1]))
}

// settle takes an attempt's result: end is true when the race is over,
// with an answer (u non-nil) or because every candidate failed.
func (r *race) settle(res result) (end bool, u *upstream, err error) {
	r.inFlight--
	if res.out == outcomeOK || res.out == outcomeAnswer {
		return true, res.u, res.err
	}
	r.lastErr = res.err
	if r.inFlight == 0 && !r.launch() {
		return true, nil, r.fail()
	}
	return false, nil, nil
}

// launch starts an attempt on a worker on the next candidate whose
// breaker and budget let it through, looking for more candidates when
// the known ones are spent; false when none is left.
func (r *race) launch() bool {
	u := r.pick()
	if u == nil {
		return false
	}
	r.p.workers.run(func() { r.results <- r.try(u) })
	return true
}

// pick takes the next candidate whose breaker and budget let an attempt
// through and counts the attempt as started, looking for more candidates
// when the known ones are spent; nil when none is left.
func (r *race) pick() *upstream {
	for {
		for r.next < len(r.cands) {
			u := r.cands[r.next]
			r.next++
			if u.limiter != nil && !u.limiter.Allow() {
				r.lastErr = fmt.Errorf("upstream %s: request budget spent", u.name)
				continue
			}
			if r.forced&(1<<u.index) == 0 && !u.brk.allow(time.Now()) {
				continue
			}
			r.inFlight++
			r.launched++
			return u
		}
		if !r.extend() {
			return nil
		}
	}
}

// extend appends the upstreams not yet in the race that are usable now
// (their breaker closed, their back-off over, their head caught up since
// the race began), then those sound but for an open breaker, to be asked
// as a last resort. It reports whether it found any.
func (r *race) extend() bool {
	now := time.Now()
	n := len(r.cands)
	for _, u := range r.p.candidates(now, r.fresh) {
		if r.seen&(1<<u.index) == 0 {
			r.seen |= 1 << u.index
			r.cands = append(r.cands, u)
		}
	}
	for _, u := range r.p.lastResort(r.fresh) {
		if r.seen&(1<<u.index) == 0 {
			r.seen |= 1 << u.index
			r.forced |= 1 << u.index
			r.cands = append(r.cands, u)
		}
	}
	return len(r.cands) > n
}

// try runs one attempt on u and records its outcome. It reads only what
// no other goroutine of the race writes.
func (r *race) try(u *upstream) result {
	ctx, cancel := context.WithTimeout(r.ctx, r.p.cfg.AttemptTimeout)
	defer cancel()
	start := time.Now()
	err := u.scrub(r.attempt(ctx, u))
	took := time.Since(start)
	out, label := classify(err)
	if r.ctx.Err() != nil && out != outcomeOK && out != outcomeAnswer {
		// The request ended (a winner, or the caller gave up): no verdict
		// on the upstream, but a lost hedge still tells how slow it was.
		out, label = outcomeCanceled, "canceled"
		u.win.add(sample{latency: took})
	}
	if err != nil && out != outcomeAnswer && out != outcomeCanceled {
		u.setErr(fmt.Sprintf("%s: %s", r.method, err))
	}
	r.p.record(u, r.method, start, out, label)
	return result{u: u, err: err, out: out}
}

// unknownHedgeDelay is the wait before hedging on an upstream with too few
// samples for a p90.
const unknownHedgeDelay = 500 * time.Millisecond

// hedgeDelay is how long to wait on u before hedging: its p90 latency.
func (r *race) hedgeDelay(u *upstream) time.Duration {
	s := u.win.stats(time.Now())
	if s.n < 10 {
		// Too little known to judge slowness: hedge only the very slow.
		return min(unknownHedgeDelay, r.p.cfg.AttemptTimeout)
	}
	return max(s.p90, r.p.cfg.HedgeMinDelay)
}

// The silence after which a read goes to a second upstream even with the
// hedge budget spent.
const (
	minRescueDelay = 250 * time.Millisecond
	maxRescueDelay = 750 * time.Millisecond
)

// rescueDelay is how long an upstream may stay silent on a read before the
// read goes elsewhere regardless of the hedge budget: ten times its median
// latency, within [minRescueDelay, maxRescueDelay]. The median, not the
// p90, and a ceiling, because a black-holed upstream's own window fills
// with the slow samples of the very requests it is failing, which would
// otherwise push the rescue out towards the attempt deadline.
func (r *race) rescueDelay(u *upstream) time.Duration {
	s := u.win.stats(time.Now())
	d := minRescueDelay
	if s.n >= 10 {
		d = min(max(d, 10*s.p50), maxRescueDelay)
	}
	return min(d, r.p.cfg.AttemptTimeout)
}

func (r *race) fail() error {
	if r.lastErr != nil && r.launched > 0 {
		return fmt.Errorf("%s: all upstreams failed: %w", r.method, r.lastErr)
	}
	return fmt.Errorf("%s: %w", r.method, ErrNoUpstream)
}
