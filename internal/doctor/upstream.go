package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/rpcpool"
)

// chainProbe is what the probes of one chain's upstreams found.
type chainProbe struct {
	results []Result
	usable  []*rpcClient // on the right chain and answering, best first
}

// upstreamProbe is what a short series of calls to one upstream found.
type upstreamProbe struct {
	client      *rpcClient
	err         error // the call that failed, if any
	rateLimited bool
	chainID     uint64
	head        uint64
	syncing     bool
	latency     time.Duration // median of the calls
}

// finding is one problem of a check; the worst one gives the advice.
type finding struct {
	status Status
	detail string
	advice string
}

// probeChain probes every upstream of ch at once and judges each against
// the best head of the chain's right-chain upstreams.
func probeChain(ctx context.Context, ch config.Chain, client *http.Client, opts Options) *chainProbe {
	probes := make([]*upstreamProbe, len(ch.Upstreams))
	tlsResults := make([]*Result, len(ch.Upstreams))
	var wg sync.WaitGroup
	for i, u := range ch.Upstreams {
		c := &rpcClient{http: client, url: u.URL, shown: rpcpool.RedactURL(u.URL), headers: u.Headers}
		wg.Go(func() {
			probes[i] = probeUpstream(ctx, c, opts)
			if strings.HasPrefix(u.URL, "https://") {
				r := checkTLS(ctx, ch.Name, u.URL, opts)
				tlsResults[i] = &r
			}
		})
	}
	wg.Wait()
	var best uint64
	for _, p := range probes {
		if p.err == nil && p.chainID == ch.ChainID {
			best = max(best, p.head)
		}
	}
	cp := &chainProbe{}
	for i, p := range probes {
		r := judgeUpstream(ch, p, best)
		cp.results = append(cp.results, r)
		if tlsResults[i] != nil {
			cp.results = append(cp.results, *tlsResults[i])
		}
		if p.err == nil && p.chainID == ch.ChainID && r.Status != Fail {
			cp.usable = append(cp.usable, p.client)
		}
	}
	if len(cp.usable) == 0 {
		cp.results = append(cp.results, Result{Check: "chain " + ch.Name, Status: Fail,
			Detail: "no usable upstream", Advice: fmt.Sprintf("chain %s cannot pay: fix or add an upstream on chain %d", ch.Name, ch.ChainID)})
	}
	return cp
}

// probeUpstream asks one upstream for its chain id, sync state and head
// (the head several times, for latency).
func probeUpstream(ctx context.Context, c *rpcClient, opts Options) *upstreamProbe {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	p := &upstreamProbe{client: c}
	var id hexutil.Uint64
	took, err := c.call(ctx, &id, "eth_chainId")
	if p.fail(err) {
		return p
	}
	p.chainID = uint64(id)
	lat := []time.Duration{took}
	var sync json.RawMessage
	if _, err := c.call(ctx, &sync, "eth_syncing"); p.fail(err) {
		return p
	}
	p.syncing = string(sync) != "false"
	for range opts.Probes {
		var head hexutil.Uint64
		took, err := c.call(ctx, &head, "eth_blockNumber")
		if p.fail(err) {
			return p
		}
		p.head = max(p.head, uint64(head))
		lat = append(lat, took)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p.latency = lat[len(lat)/2]
	return p
}

// fail records err, if any, and says whether the probe must stop.
func (p *upstreamProbe) fail(err error) bool {
	if err == nil {
		return false
	}
	p.err, p.rateLimited = err, rateLimited(err)
	return true
}

// judgeUpstream turns a probe into a result line.
func judgeUpstream(ch config.Chain, p *upstreamProbe, best uint64) Result {
	name := p.client.shown
	r := Result{Check: fmt.Sprintf("upstream %s %s", ch.Name, name), Status: OK}
	var fs []finding
	switch {
	case p.rateLimited:
		fs = append(fs, finding{Warn, "rate limited: " + p.err.Error(),
			fmt.Sprintf("upstream %s is rate limiting: raise the provider plan or lower requests_per_second", name)})
	case p.err != nil:
		fs = append(fs, finding{Fail, "unreachable: " + p.err.Error(),
			fmt.Sprintf("upstream %s does not answer: check its URL, the network and the node", name)})
	case p.chainID != ch.ChainID:
		fs = append(fs, finding{Fail, fmt.Sprintf("on chain %d, the config says %d", p.chainID, ch.ChainID),
			fmt.Sprintf("upstream %s is on chain %d, not %d: fix its URL", name, p.chainID, ch.ChainID)})
	default:
		fs = append(fs, healthFindings(name, p, best)...)
	}
	r.Detail = upstreamDetail(ch, p, best)
	for _, f := range fs {
		r.Detail += "; " + f.detail
		if f.status.rank() > r.Status.rank() {
			r.Status, r.Advice = f.status, f.advice
		}
	}
	return r
}

// healthFindings judges an answering upstream on the right chain.
func healthFindings(name string, p *upstreamProbe, best uint64) []finding {
	var fs []finding
	if p.syncing {
		fs = append(fs, finding{Warn, "syncing",
			fmt.Sprintf("upstream %s is still syncing: wait for it or use another node", name)})
	}
	lag := best - p.head
	advice := fmt.Sprintf("upstream %s is %d blocks behind the best head: check the node's peers and sync", name, lag)
	switch {
	case lag > MaxLagFail:
		fs = append(fs, finding{Fail, fmt.Sprintf("stale head: %d blocks behind", lag), advice})
	case lag > MaxLagWarn:
		fs = append(fs, finding{Warn, fmt.Sprintf("lagging: %d blocks behind", lag), advice})
	}
	if p.latency > SlowUpstream {
		fs = append(fs, finding{Warn, "slow",
			fmt.Sprintf("upstream %s takes %s a call: use a closer or less loaded node", name, p.latency.Round(time.Millisecond))})
	}
	return fs
}

// upstreamDetail says what the upstream answered.
func upstreamDetail(ch config.Chain, p *upstreamProbe, best uint64) string {
	switch {
	case p.err != nil && p.chainID == 0:
		return "no answer"
	case p.err != nil:
		return fmt.Sprintf("chain %d", p.chainID)
	case p.chainID != ch.ChainID:
		return fmt.Sprintf("chain %d, head %d", p.chainID, p.head)
	}
	return fmt.Sprintf("chain %d, head %d (lag %d), %s median", p.chainID, p.head, best-p.head, p.latency.Round(time.Microsecond))
}
