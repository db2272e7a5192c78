package breaker_test

import (
	"context"
	"log/slog"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/breaker"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
	"github.com/sluicepay/sluice/internal/store/storetest"
)

var (
	wallet = common.HexToAddress("0x00000000000000000000000000000000000000bb")
	to     = common.HexToAddress("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
	quiet  = slog.New(slog.DiscardHandler)
)

func bothStores(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "db"), store.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		fn(t, db)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		db, err := store.Open(context.Background(), storetest.PostgresURL(t), store.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		fn(t, db)
	})
}

// pay stores n payouts of amount of asset and submits them (nonces from
// first on).
func pay(t *testing.T, db *store.DB, asset string, amount int64, n int, first uint64) []*payout.Payout {
	t.Helper()
	return payN(t, db, asset, amount, n, first)
}

func payN(t testing.TB, db *store.DB, asset string, amount int64, n int, first uint64) []*payout.Payout {
	t.Helper()
	ctx := context.Background()
	ps := make([]*payout.Payout, n)
	as := make([]*payout.Attempt, n)
	for i := range ps {
		now := time.Now().UTC()
		ps[i] = &payout.Payout{ID: payout.DefaultIDs.New("po_", now), Chain: "sandbox", ChainID: 1337, Asset: asset, To: to,
			Amount: big.NewInt(amount), Sender: wallet, CreatedAt: now}
		if err := db.CreatePayout(ctx, ps[i], nil); err != nil {
			t.Fatal(err)
		}
		as[i] = &payout.Attempt{PayoutID: ps[i].ID, ChainID: 1337, Sender: wallet, Nonce: first + uint64(i),
			TxHash: common.BigToHash(new(big.Int).SetBytes([]byte(ps[i].ID))), RawTx: []byte("raw"), GasLimit: 21_000,
			MaxFeePerGas: big.NewInt(30_000_000_000), MaxPriorityFeePerGas: big.NewInt(1_500_000_000)}
	}
	if err := db.SubmitAttempts(ctx, as); err != nil {
		t.Fatal(err)
	}
	return ps
}

// fail stores n payouts of ETH and fails them before signing.
func fail(t *testing.T, db *store.DB, n int) {
	t.Helper()
	var fs []payout.Failure
	for range n {
		now := time.Now().UTC()
		p := &payout.Payout{ID: payout.DefaultIDs.New("po_", now), Chain: "sandbox", ChainID: 1337, Asset: "ETH", To: to,
			Amount: big.NewInt(1), Sender: wallet, CreatedAt: now}
		if err := db.CreatePayout(t.Context(), p, nil); err != nil {
			t.Fatal(err)
		}
		fs = append(fs, payout.Failure{PayoutID: p.ID, Code: payout.Code("insufficient_funds"), Message: "test"})
	}
	if err := db.FailQueued(t.Context(), fs); err != nil {
		t.Fatal(err)
	}
}

func TestOutflowTripsAndStaysUntilResumed(t *testing.T) {
	bothStores(t, func(t *testing.T, db *store.DB) {
		reg := prometheus.NewRegistry()
		m, err := breaker.New(breaker.Config{Store: db, Logger: quiet, Registerer: reg, Rules: []breaker.Rule{
			{Name: "susd-outflow", Scope: payout.PauseAsset, Chain: "sandbox", Asset: "SUSD", Window: time.Hour,
				MaxOutflow: big.NewInt(2500)},
		}})
		if err != nil {
			t.Fatal(err)
		}
		pay(t, db, "SUSD", 1000, 2, 0)
		pay(t, db, "ETH", 1_000_000, 3, 2) // another asset does not count
		if trips, err := m.Check(t.Context()); err != nil || len(trips) != 0 {
			t.Fatalf("Check under the threshold = %+v, %v; want no trip", trips, err)
		}
		pay(t, db, "SUSD", 1000, 1, 5)
		trips, err := m.Check(t.Context())
		if err != nil || len(trips) != 1 || trips[0].Outflow != "3000" {
			t.Fatalf("Check over the threshold = %+v, %v; want one trip at 3000", trips, err)
		}
		pauses, err := db.ActivePauses(t.Context())
		if err != nil || len(pauses) != 1 || pauses[0].Scope != payout.PauseAsset || pauses[0].Asset != "SUSD" ||
			pauses[0].CreatedBy != "breaker:susd-outflow" || !strings.Contains(pauses[0].Reason, "outflow 3000 SUSD") {
			t.Fatalf("pauses = %+v, %v", pauses, err)
		}
		evs, _, err := db.ListEventPage(t.Context(), payout.EventFilter{Types: []string{payout.EventBreakerTripped}})
		if err != nil || len(evs) != 1 || evs[0].ObjectID != pauses[0].ID || !strings.Contains(string(evs[0].Data), `"max_outflow":"2500"`) {
			t.Fatalf("breaker.tripped events = %+v, %v", evs, err)
		}
		if got := tripsTotal(t, reg); got != 1 {
			t.Errorf("sluice_breaker_trips_total = %v, want 1", got)
		}
		// Tripped: it does not pause again while its pause holds.
		if trips, err := m.Check(t.Context()); err != nil || len(trips) != 0 {
			t.Fatalf("Check while paused = %+v, %v", trips, err)
		}
		// The operator resumes: the outflow before that does not trip it
		// again, new outflow does.
		if _, err := db.ResumePause(t.Context(), pauses[0].ID, "cli"); err != nil {
			t.Fatal(err)
		}
		if trips, err := m.Check(t.Context()); err != nil || len(trips) != 0 {
			t.Fatalf("Check after resume = %+v, %v; want no trip", trips, err)
		}
		pay(t, db, "SUSD", 3000, 1, 6)
		if trips, err := m.Check(t.Context()); err != nil || len(trips) != 1 {
			t.Fatalf("Check after new outflow = %+v, %v; want a trip", trips, err)
		}
	})
}

// tripsTotal reads sluice_breaker_trips_total from reg, summed.
func tripsTotal(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == "sluice_breaker_trips_total" {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestFailureRateTrips(t *testing.T) {
	bothStores(t, func(t *testing.T, db *store.DB) {
		m, err := breaker.New(breaker.Config{Store: db, Logger: quiet, Rules: []breaker.Rule{
			{Name: "wallet-failing", Scope: payout.PauseWallet, Chain: "sandbox", Wallet: wallet, Window: 10 * time.Minute,
				MaxFailureRate: 0.5, MinCount: 4},
		}})
		if err != nil {
			t.Fatal(err)
		}
		fail(t, db, 3)
		if trips, err := m.Check(t.Context()); err != nil || len(trips) != 0 {
			t.Fatalf("Check below min_count = %+v, %v; want no trip", trips, err)
		}
		fail(t, db, 1)
		trips, err := m.Check(t.Context())
		if err != nil || len(trips) != 1 || trips[0].Failed != 4 || trips[0].Ended != 4 {
			t.Fatalf("Check = %+v, %v; want a trip with 4 of 4 failed", trips, err)
		}
		pauses, _ := db.ActivePauses(t.Context())
		if len(pauses) != 1 || pauses[0].Scope != payout.PauseWallet || pauses[0].Wallet != wallet ||
			!strings.Contains(pauses[0].Reason, "4 of 4 payouts failed") {
			t.Fatalf("pauses = %+v", pauses)
		}
	})
}

func TestStartStop(t *testing.T) {
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "db"), store.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m, err := breaker.New(breaker.Config{Store: db, Logger: quiet, Every: 10 * time.Millisecond, Rules: []breaker.Rule{
		{Name: "failing", Scope: payout.PauseChain, Chain: "sandbox", Window: time.Minute, MaxFailureRate: 0.1, MinCount: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	fail(t, db, 1)
	m.Start(t.Context())
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ps, _ := db.ActivePauses(t.Context()); len(ps) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the running monitor did not pause the chain")
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.Stop()
	m.Stop() // twice is harmless
}

// A tripped breaker survives a restart: a new monitor (a restarted
// engine) finds the pause stored and does not pause again; once an
// operator resumed it, the outflow counted before the resume does not trip
// the next monitor either, however soon after a restart.
func TestTrippedBreakerSurvivesRestart(t *testing.T) {
	bothStores(t, func(t *testing.T, db *store.DB) {
		rules := []breaker.Rule{{Name: "eth-outflow", Scope: payout.PauseChain, Chain: "sandbox", Asset: "ETH",
			Window: time.Hour, MaxOutflow: big.NewInt(100)}}
		start := func() *breaker.Monitor {
			m, err := breaker.New(breaker.Config{Store: db, Logger: quiet, Rules: rules})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		pay(t, db, "ETH", 150, 1, 0)
		if trips, err := start().Check(t.Context()); err != nil || len(trips) != 1 {
			t.Fatalf("first engine: %+v, %v; want a trip", trips, err)
		}
		// Restarted while paused: the pause holds, nothing new is paused.
		if trips, err := start().Check(t.Context()); err != nil || len(trips) != 0 {
			t.Fatalf("restarted engine while paused: %+v, %v; want no second trip", trips, err)
		}
		pauses, err := db.ActivePauses(t.Context())
		if err != nil || len(pauses) != 1 || pauses[0].CreatedBy != "breaker:eth-outflow" {
			t.Fatalf("pauses after restart = %+v, %v; want the one pause", pauses, err)
		}
		if _, err := db.ResumePause(t.Context(), pauses[0].ID, "operator"); err != nil {
			t.Fatal(err)
		}
		// Restarted after the resume: the outflow before it is forgiven...
		m := start()
		if trips, err := m.Check(t.Context()); err != nil || len(trips) != 0 {
			t.Fatalf("restarted engine after resume: %+v, %v; want no trip on outflow before the resume", trips, err)
		}
		// ...new outflow is not.
		pay(t, db, "ETH", 150, 1, 1)
		if trips, err := m.Check(t.Context()); err != nil || len(trips) != 1 || trips[0].Outflow != "150" {
			t.Fatalf("new outflow after resume: %+v, %v; want a trip at 150", trips, err)
		}
	})
}

// The pause, its audit entry and its alert event are written together or
// not at all.
func TestTripIsOneTransaction(t *testing.T) {
	bothStores(t, func(t *testing.T, db *store.DB) {
		now := time.Now()
		p := &payout.Pause{ID: payout.DefaultIDs.New("pse_", now), Scope: payout.PauseChain, Chain: "sandbox",
			Reason: "test", CreatedBy: "breaker:x"}
		// An alert that cannot be written (not JSON) leaves no pause.
		if err := db.TripBreaker(t.Context(), p, payout.EventBreakerTripped, map[string]any{"bad": make(chan int)}); err == nil {
			t.Fatal("TripBreaker with an alert that cannot be encoded succeeded")
		}
		if ps, err := db.ActivePauses(t.Context()); err != nil || len(ps) != 0 {
			t.Fatalf("pauses after a failed trip = %+v, %v; want none", ps, err)
		}
		if es, _, _ := db.ListAudit(t.Context(), 0, 100); len(es) != 0 {
			t.Fatalf("audit entries after a failed trip: %d, want none", len(es))
		}
		if err := db.TripBreaker(t.Context(), p, payout.EventBreakerTripped, map[string]string{"breaker": "x"}); err != nil {
			t.Fatal(err)
		}
		evs, _, err := db.ListEventPage(t.Context(), payout.EventFilter{})
		var types []string
		for _, e := range evs {
			if e.ObjectID == p.ID {
				types = append(types, e.Type)
			}
		}
		slices.Sort(types)
		if want := []string{payout.EventBreakerTripped, payout.EventPauseCreated}; err != nil || !slices.Equal(types, want) {
			t.Fatalf("events of the pause = %v, %v; want %v", types, err, want)
		}
		es, _, err := db.ListAudit(t.Context(), 0, 100)
		if err != nil || len(es) != 1 || es[0].Actor != "breaker:x" || es[0].Action != payout.AuditPauseCreate {
			t.Fatalf("audit = %+v, %v; want one pause.create by breaker:x", es, err)
		}
	})
}
