package httpapi

import (
	"bufio"
	"context"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

// BenchmarkEventStreamLatency measures, over a real HTTP connection, the
// time from a payout's commit (its payout.created event) to the moment a
// client of GET /v1/events/stream has read that event, one payout at a
// time, on SQLite; and the events per second one stream carries when
// payouts are committed as fast as the store takes them.
//
//	go test -run '^$' -bench EventStream -benchtime 2000x ./internal/httpapi
func BenchmarkEventStreamLatency(b *testing.B) {
	db, url, stop := benchStreamServer(b)
	defer stop()
	st := benchOpenStream(b, url)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		p := benchPayout(i)
		start := time.Now()
		if err := db.CreatePayout(context.Background(), p, nil); err != nil {
			b.Fatal(err)
		}
		st.waitFor(b, p.ID)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}

func BenchmarkEventStreamThroughput(b *testing.B) {
	db, url, stop := benchStreamServer(b)
	defer stop()
	st := benchOpenStream(b, url)
	ps := make([]*payout.Payout, b.N)
	for i := range ps {
		ps[i] = benchPayout(i)
	}
	b.ResetTimer()
	go func() {
		for _, p := range ps {
			if err := db.CreatePayout(context.Background(), p, nil); err != nil {
				panic(err)
			}
		}
	}()
	st.waitFor(b, ps[len(ps)-1].ID)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func benchPayout(i int) *payout.Payout {
	now := time.Now()
	return &payout.Payout{ID: payout.DefaultIDs.New("po_", now), Status: payout.StatusQueued, Chain: "sandbox", ChainID: 1337,
		Asset: "ETH", To: testWallet, Amount: big.NewInt(int64(i + 1)), Sender: testWallet, CreatedAt: now, UpdatedAt: now, Version: 1}
}

func benchStreamServer(b *testing.B) (*store.DB, string, func()) {
	b.Helper()
	reg := prometheus.NewRegistry()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "db"),
		store.Options{Logger: slog.New(slog.DiscardHandler), Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	api, err := New(Config{Store: db, Catalog: testCatalog(), Registry: reg, EventsChanged: db.Committed,
		APIKeys: []APIKey{{ID: "key_a", Hash: HashAPIKey(testKey)}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	return db, srv.URL, func() { api.CloseStreams(); srv.Close(); _ = db.Close() }
}

type benchStream struct {
	rd *bufio.Reader
}

func benchOpenStream(b *testing.B, url string) *benchStream {
	req, _ := http.NewRequest("GET", url+"/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("stream: %v %v", resp, err)
	}
	b.Cleanup(func() { _ = resp.Body.Close() })
	return &benchStream{rd: bufio.NewReaderSize(resp.Body, 1<<16)}
}

// waitFor reads events until one about object id arrives.
func (s *benchStream) waitFor(b *testing.B, id string) {
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") && strings.Contains(line, id) {
			return
		}
	}
}
