package main

import (
	"cmp"
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/payout"
)

// statusCollector reports payouts by status. A count reads the whole
// status index (23 ms at 20,000 payouts, and it grows with the table), so
// a scrape reuses the last count while it is younger than recountAfter
// times what that count took, and at least a second: however often
// scrapers ask and however large the store grows, counting costs at most
// about 5% of a core.
type statusCollector struct {
	store  payout.Store
	minAge time.Duration // the least a count is reused; a second when zero

	mu     sync.Mutex
	counts map[payout.Status]int64
	at     time.Time     // when counts were read
	took   time.Duration // how long reading them took
}

// recountAfter is how many times its own duration a count is reused.
const recountAfter = 20

var payoutsDesc = prometheus.NewDesc("sluice_payouts", "Payouts stored, by status (recounted at most every second, less often when counting is slow).", []string{"status"}, nil)

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) { ch <- payoutsDesc }

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.read()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(payoutsDesc, err)
		return
	}
	for _, s := range payout.Statuses {
		ch <- prometheus.MustNewConstMetric(payoutsDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}

// read returns the counts, recounting when the last are too old. Scrapes
// that arrive during a count wait for it rather than count again.
func (c *statusCollector) read() (map[payout.Status]int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts != nil && time.Since(c.at) < max(cmp.Or(c.minAge, time.Second), recountAfter*c.took) {
		return c.counts, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	counts, err := c.store.CountByStatus(ctx)
	if err != nil {
		return nil, err
	}
	c.counts, c.at, c.took = counts, time.Now(), time.Since(start)
	return counts, nil
}
