package events_test

import (
	"context"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/events"
	"github.com/sluicepay/sluice/internal/payout"
)

// BenchmarkDeliveryThroughput: b.N events already in the outbox (SQLite),
// one endpoint on a local receiver answering 204; timed from the
// dispatcher's start until every delivery arrived and was recorded.
//
//	go test -run '^$' -bench DeliveryThroughput -benchtime 20000x ./internal/events
func BenchmarkDeliveryThroughput(b *testing.B) {
	db := openSQLite(b, nil)
	var got atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got.Add(1) == n {
			close(done)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	ep := addEndpoint(b, db, srv.URL)
	appendEvents(b, db, payout.StatusCompleted.EventType(), b.N)
	d, err := events.New(events.Config{Store: db, Committed: db.Committed, Owner: "bench", Logger: quiet, AllowPrivateTargets: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	d.Start(context.Background())
	<-done
	d.Stop() // waits for the last results to be recorded
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	ds, _, err := db.ListWebhookDeliveries(context.Background(), ep.ID, payout.Page{Limit: 1})
	if err != nil || len(ds) != 1 || ds[0].Status != payout.DeliverySucceeded {
		b.Fatalf("newest delivery %+v, %v: want succeeded", ds, err)
	}
}

// BenchmarkCommitToFirstAttempt: payouts created one every 5 ms (SQLite,
// real CreatePayout, so the payout.created event commits with the
// payout); the latency is from CreatePayout's return (the commit) to the
// receiver getting the delivery. Reports p50 and p99.
//
//	go test -run '^$' -bench CommitToFirstAttempt -benchtime 2000x ./internal/events
func BenchmarkCommitToFirstAttempt(b *testing.B) {
	db := openSQLite(b, nil)
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		mu.Lock()
		arrived[r.Header.Get("webhook-id")] = now
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	addEndpoint(b, db, srv.URL, payout.EventCreated)
	start(b, events.Config{Store: db, Committed: db.Committed})
	ids := &payout.IDGenerator{}
	committed := make(map[string]time.Time, b.N) // payout id → commit
	b.ResetTimer()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i := range b.N {
		<-tick.C
		now := time.Now().UTC()
		p := &payout.Payout{ID: ids.New("po_", now), Status: payout.StatusQueued, Chain: "sandbox", ChainID: 1337,
			Asset: "ETH", To: common.HexToAddress("0xAbC0000000000000000000000000000000000123"), Amount: big.NewInt(int64(1 + i)),
			Sender: common.HexToAddress("0x5A1cE0000000000000000000000000000000bEEF"), Priority: payout.PriorityStandard,
			Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := db.CreatePayout(context.Background(), p, nil); err != nil {
			b.Fatal(err)
		}
		committed[p.ID] = time.Now()
	}
	eventually(b, "every delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(arrived) == b.N
	})
	b.StopTimer()
	lat := make([]time.Duration, 0, b.N)
	for _, e := range allEvents(b, db) {
		lat = append(lat, arrived[e.ID].Sub(committed[e.ObjectID]))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
