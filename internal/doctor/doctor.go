// Package doctor owns `sluice doctor`: it checks, without starting the
// engine, everything a configuration names — every upstream of every chain
// probed on its own (not through failover, so a sick upstream shows as
// sick), its TLS certificate, the database and its migrations, each hot
// wallet's signer and balances (the native coin and each token, against
// what pending payouts need), and the oldest unfinished payout — and
// reports each as OK, WARN or FAIL with one line of advice.
package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"time"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/payout"
)

// Status is the verdict of one check.
type Status string

// The verdicts, from best to worst.
const (
	OK   Status = "OK"
	Warn Status = "WARN"
	Fail Status = "FAIL"
)

func (s Status) rank() int {
	switch s {
	case Warn:
		return 1
	case Fail:
		return 2
	}
	return 0
}

// worse returns the worse of two verdicts.
func worse(a, b Status) Status {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// Result is one line of the report. Advice is set for WARN and FAIL.
type Result struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Advice string `json:"advice,omitempty"`
}

// Report is the outcome of a run: every check in order and the worst verdict.
type Report struct {
	Status  Status   `json:"status"`
	Results []Result `json:"results"`
}

// ExitCode is 0 when every check is OK, 1 with warnings, 2 with failures.
func (r Report) ExitCode() int { return r.Status.rank() }

func (r *Report) add(res ...Result) {
	for _, x := range res {
		r.Results = append(r.Results, x)
		r.Status = worse(r.Status, x.Status)
	}
}

// Thresholds of the checks.
const (
	// MaxLagWarn and MaxLagFail are blocks behind the best head of the chain.
	MaxLagWarn = 3
	MaxLagFail = 64
	// SlowUpstream is the median latency above which an upstream is slow.
	SlowUpstream = time.Second
	// CertWarnDays is how close to expiry a TLS certificate gets a warning.
	CertWarnDays = 14
	// OldestWarn and OldestFail are ages of the oldest unfinished payout.
	OldestWarn = 10 * time.Minute
	OldestFail = time.Hour
)

// Options tune a run. The zero value is usable.
type Options struct {
	// Now is the clock (certificate expiry, payout age). Default time.Now.
	Now func() time.Time
	// RootCAs verify upstream certificates. Default: the system's.
	RootCAs *x509.CertPool
	// Timeout bounds each upstream probe and each wallet check. Default 5s.
	Timeout time.Duration
	// Probes is how many eth_blockNumber calls measure latency. Default 3.
	Probes int
	// OpenSigner opens a signer of a type other than keystore (pkcs11,
	// remote, failover); field names it in errors. Without it such
	// signers are reported as not checked.
	OpenSigner func(ctx context.Context, s config.Signer, field string) (payout.Signer, error)
}

func (o *Options) setDefaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Probes <= 0 {
		o.Probes = 3
	}
}

// Run checks everything cfg names and reports. It never starts the engine;
// opening the database applies pending migrations, as `sluice serve` would.
func Run(ctx context.Context, cfg *config.Config, opts Options) Report {
	opts.setDefaults()
	var rep Report
	rep.Status = OK
	client := httpClient(opts)
	heads := map[string]*chainProbe{}
	for _, ch := range cfg.Chains {
		cp := probeChain(ctx, ch, client, opts)
		heads[ch.Name] = cp
		rep.add(cp.results...)
	}
	db, res := checkDatabase(ctx, cfg)
	rep.add(res...)
	for _, ch := range cfg.Chains {
		rep.add(checkWallets(ctx, ch, heads[ch.Name], db, opts)...)
	}
	if db != nil {
		rep.add(checkOldest(ctx, db, opts.Now()))
		rep.add(checkAttention(ctx, db))
		rep.add(checkWebhooks(ctx, db, opts.Now()))
		rep.add(checkPauses(ctx, db, opts.Now()))
		rep.add(checkHandovers(ctx, db, opts.Now()))
		rep.add(checkBooks(ctx, db, cfg, opts.Now())...)
		_ = db.Close()
	}
	return rep
}

// httpClient is the client of the probes: no keep-alive reuse between
// upstreams matters here, only the roots and the timeout.
func httpClient(opts Options) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if opts.RootCAs != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: opts.Timeout}
}
