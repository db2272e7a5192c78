package httpapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

// benchClients is how many clients send payouts at once.
const benchClients = 16

// BenchmarkCreatePayoutHTTP measures accepted payouts per second through
// a real HTTP server on 127.0.0.1 and the real SQLite store, with 16
// concurrent keep-alive clients each sending distinct payouts.
//
//	go test -run '^$' -bench CreatePayoutHTTP -benchtime 20000x ./internal/httpapi
func BenchmarkCreatePayoutHTTP(b *testing.B) {
	reg := prometheus.NewRegistry()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "db"),
		store.Options{Logger: slog.New(slog.DiscardHandler), Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	api, err := New(Config{
		Store: db, Catalog: testCatalog(), Registry: reg,
		APIKeys: []APIKey{{ID: "key_a", Hash: HashAPIKey(testKey)}},
		Logger:  slog.New(slog.DiscardHandler), OnPayoutCreated: func(*payout.Payout) {},
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: benchClients, MaxIdleConnsPerHost: benchClients, IdleConnTimeout: time.Minute,
	}}
	var (
		next   atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for c := range benchClients {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				if err := postPayout(hc, srv.URL, fmt.Sprintf("bench-%d-%d", c, i), i); err != nil {
					failed.Add(1)
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu_µs/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payouts/s")
	b.ReportMetric(meanGroupSize(b, reg), "payouts/commit")
	if failed.Load() != 0 {
		b.Fatalf("%d requests failed", failed.Load())
	}
}

func postPayout(hc *http.Client, base, key string, i int64) error {
	body := `{"chain":"sandbox","asset":"SUSD","to":"` + validTo + `","amount":"` + fmt.Sprint(i) + `"}`
	req, err := http.NewRequest("POST", base+"/v1/payouts", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("status %d: %s", resp.StatusCode, got)
	}
	return nil
}

// meanGroupSize reads how many payouts the store's group commits held on
// average: fewer means more commits, the store's main cost.
func meanGroupSize(b *testing.B, reg *prometheus.Registry) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "sluice_store_group_commit_size" {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleSum() / float64(max(1, h.GetSampleCount()))
		}
	}
	return 0
}

// cpuTime is the process's user+system CPU time so far: steadier than
// wall time on a machine shared with other work.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkParseCreate measures decoding and validating one create body,
// the handler's own share of a create.
func BenchmarkParseCreate(b *testing.B) {
	cat, ids, body := testCatalog(), &payout.IDGenerator{}, []byte(validPayload)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseCreate(cat, ids, body, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
