package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
	"github.com/sluicepay/sluice/internal/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) payout.Store { return openSQLite(t) })
}

// TestSQLiteWithoutGroupCommit runs the suite with every SQLite write in a
// transaction of its own, the path group commit replaces.
func TestSQLiteWithoutGroupCommit(t *testing.T) {
	prev := store.SetGroupCommit(false) // read by Open in the parallel subtests, restored after them
	t.Cleanup(func() { store.SetGroupCommit(prev) })
	storetest.Run(t, func(t *testing.T) payout.Store { return openSQLite(t) })
}

func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) payout.Store { return openPostgres(t) })
}

// openSQLite opens a store on a new file in a temporary directory.
func openSQLite(t testing.TB) *store.DB {
	t.Helper()
	return openURL(t, "sqlite:"+filepath.Join(t.TempDir(), "sluice.db"))
}

// openPostgres opens a store on a new schema, dropped at cleanup. It skips
// the test when SLUICE_TEST_DATABASE_URL is not set.
func openPostgres(t testing.TB) *store.DB {
	t.Helper()
	return openURL(t, storetest.PostgresURL(t))
}

func openURL(t testing.TB, u string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), u, store.Options{Logger: quiet})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		url     string
		wantErr string
	}{
		{"unknown scheme", "mysql://x", "must start with"},
		{"no path", "sqlite:", "needs a path"},
		{"memory", "sqlite::memory:", "not supported"},
		{"bad postgres", "postgres://u:secret@127.0.0.1:1/x?connect_timeout=1", "connect postgres"},
		{"triple slash", "sqlite://" + filepath.Join(dir, "a.db"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := store.Open(context.Background(), tc.url, store.Options{})
			if err == nil {
				defer db.Close()
			}
			if got := errString(err); tc.wantErr == "" && err != nil || !strings.Contains(got, tc.wantErr) {
				t.Fatalf("Open(%q) err = %v, want containing %q", tc.url, err, tc.wantErr)
			}
			if strings.Contains(errString(err), "secret") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestMigrations checks that migrations apply once, survive a reopen and
// are recorded, on every dialect available.
func TestMigrations(t *testing.T) {
	for _, d := range dialects(t) {
		t.Run(d.name, func(t *testing.T) {
			u := d.url(t)
			// Concurrent migrators wait for each other and apply everything once.
			var wg sync.WaitGroup
			dbs := make([]*store.DB, 4)
			errs := make([]error, len(dbs))
			for i := range dbs {
				wg.Go(func() { dbs[i], errs[i] = store.Open(context.Background(), u, store.Options{}) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("Open %d: %v", i, err)
				}
				defer dbs[i].Close()
			}
			for _, db := range dbs {
				v, err := db.MigrationVersion(context.Background())
				if want := store.LatestMigration(d.name); err != nil || v != want || want < 2 {
					t.Errorf("MigrationVersion = %d, %v; want %d (at least 2)", v, err, want)
				}
				if db.Dialect() != d.name {
					t.Errorf("Dialect = %q, want %q", db.Dialect(), d.name)
				}
			}
		})
	}
}

type dialectCase struct {
	name string
	url  func(t testing.TB) string
}

func dialects(t testing.TB) []dialectCase {
	out := []dialectCase{{"sqlite", func(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "m.db") }}}
	if os.Getenv(storetest.PostgresEnv) != "" {
		out = append(out, dialectCase{"postgres", storetest.PostgresURL})
	}
	return out
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	u := "sqlite:" + filepath.Join(t.TempDir(), "m.db")
	var dbs []*store.DB
	for range 2 { // a second DB on the same registry reuses the collectors
		db, err := store.Open(context.Background(), u, store.Options{Registerer: reg, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs = append(dbs, db)
	}
	ctx := context.Background()
	p := &payout.Payout{ID: "po_metrics", Chain: "sandbox", ChainID: 1, Asset: "ETH", Amount: big.NewInt(1),
		To: common.HexToAddress("0x01"), Sender: common.HexToAddress("0x02"), CreatedAt: time.Now()}
	if err := dbs[0].CreatePayout(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs[1].GetPayout(ctx, "po_missing"); err == nil {
		t.Fatal("GetPayout(missing) succeeded")
	}
	if err := dbs[0].Close(); err != nil {
		t.Fatal(err)
	}
	_, _ = dbs[0].GetPayout(ctx, p.ID) // fails: closed
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "/" + l.GetValue()
			}
			got[key] = m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	want := map[string]float64{
		"sluice_store_operation_duration_seconds/create_payout": 1,
		"sluice_store_operation_duration_seconds/get_payout":    2,
		"sluice_store_errors_total/get_payout":                  1, // not found is no error; closed is
		"sluice_store_group_commit_size":                        1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

// quiet drops the store's logs in tests.
var quiet = slog.New(slog.DiscardHandler)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestInjectedClock checks that every time the store writes comes from
// Options.Now: event times, updated_at and lease expiry.
func TestInjectedClock(t *testing.T) {
	for _, d := range dialects(t) {
		t.Run(d.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.FixedZone("X", 3600))}
			db, err := store.Open(context.Background(), d.url(t), store.Options{Now: clock.now, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			p := &payout.Payout{ID: "po_clock", Chain: "sandbox", ChainID: 1, Asset: "ETH", Amount: big.NewInt(1),
				To: common.HexToAddress("0x01"), Sender: common.HexToAddress("0x02"), CreatedAt: clock.now()}
			if err := db.CreatePayout(ctx, p, nil); err != nil {
				t.Fatal(err)
			}
			clock.advance(time.Minute)
			cancelled, err := db.CancelPayout(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := db.ListEvents(ctx, 0, 10)
			if err != nil || len(evs) != 2 {
				t.Fatalf("ListEvents = %d events, %v; want 2", len(evs), err)
			}
			start := time.Date(2030, 1, 2, 2, 4, 5, 123456000, time.UTC)
			got := []time.Time{evs[0].CreatedAt, evs[1].CreatedAt, cancelled.UpdatedAt, cancelled.CreatedAt}
			want := []time.Time{start, start.Add(time.Minute), start.Add(time.Minute), start}
			for i := range want {
				if !got[i].Equal(want[i]) || got[i].Location() != time.UTC {
					t.Errorf("time %d = %v, want %v in UTC", i, got[i], want[i])
				}
			}
			if err := db.AcquireLease(ctx, 1, p.Sender, "a", time.Hour); err != nil {
				t.Fatal(err)
			}
			clock.advance(59 * time.Minute)
			if err := db.AcquireLease(ctx, 1, p.Sender, "b", time.Hour); !errors.Is(err, payout.ErrLeaseHeld) {
				t.Fatalf("b before expiry: err = %v, want ErrLeaseHeld", err)
			}
			clock.advance(time.Minute)
			if err := db.AcquireLease(ctx, 1, p.Sender, "b", time.Hour); err != nil {
				t.Errorf("b at expiry: %v", err)
			}
		})
	}
}

func TestPendingMigrationsWithoutMigrating(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fresh.db")
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+path, store.Options{NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	pending, err := db.PendingMigrations(ctx)
	if err != nil || len(pending) == 0 || pending[0] != "0001_init.sql" {
		t.Fatalf("pending on an empty database = %v, %v; want every migration", pending, err)
	}
	db.Close()
	db, err = store.Open(ctx, "sqlite:"+path, store.Options{}) // migrates
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = store.Open(ctx, "sqlite:"+path, store.Options{NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if pending, err := db.PendingMigrations(ctx); err != nil || len(pending) != 0 {
		t.Errorf("pending after migrating = %v, %v; want none", pending, err)
	}
}

func TestCommittedWakesOnEveryCommit(t *testing.T) {
	db := openSQLite(t)
	ctx := context.Background()
	woken := db.Committed()
	select {
	case <-woken:
		t.Fatal("woken before any commit")
	default:
	}
	if err := db.AppendEvent(ctx, "wallet_x", "wallet.low_balance", map[string]string{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	case <-time.After(5 * time.Second):
		t.Fatal("not woken by a commit")
	}
	if next := db.Committed(); next == woken {
		t.Fatal("the channel of a past commit was handed out again")
	}
}

// A write whose context ends is reported as it ended. On PostgreSQL the
// transaction is bound to the context and commits nothing. On SQLite the
// group writer, once it has taken a call, commits it with the rest of its
// group (one caller's cancellation must not undo the others' writes) and
// answers nil, its statements running detached from the caller's context.
// On both, a call whose context ended before it started writes nothing.
func TestCancelledWriteIsReportedAsItEnded(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *store.DB{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			insert := `INSERT INTO leases (chain_id, sender, owner, expires_at) VALUES (?, ?, ?, ?)`
			errProbe := errors.New("roll back the probe")
			stored := func(sender string) bool {
				t.Helper()
				// A second insert of the same lease fails when the first is there.
				return !errors.Is(db.WriteTx(context.Background(), func(_ context.Context, exec func(string, ...any) error) error {
					if err := exec(insert, 1, sender, "probe", time.Unix(1, 0)); err != nil {
						return err
					}
					return errProbe
				}), errProbe)
			}

			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := db.WriteTx(ctx, func(_ context.Context, exec func(string, ...any) error) error {
				return exec(insert, 1, "0xbefore", "test", time.Unix(1, 0))
			})
			if !errors.Is(err, context.Canceled) || stored("0xbefore") {
				t.Fatalf("write cancelled before it started: err %v, stored %v; want context.Canceled and nothing stored", err, stored("0xbefore"))
			}

			ctx, cancel = context.WithCancel(context.Background())
			defer cancel()
			err = db.WriteTx(ctx, func(_ context.Context, exec func(string, ...any) error) error {
				if err := exec(insert, 1, "0xa", "test", time.Unix(1, 0)); err != nil {
					return err
				}
				cancel()
				_ = exec(insert, 1, "0xb", "test", time.Unix(1, 0)) // may run or see the transaction gone
				return nil
			})
			a, b := stored("0xa"), stored("0xb")
			switch name {
			case "postgres":
				if !errors.Is(err, context.Canceled) || a || b {
					t.Fatalf("cancelled mid-transaction: err %v, stored %v %v; want context.Canceled and nothing stored", err, a, b)
				}
			case "sqlite":
				if err != nil || !a || !b {
					t.Fatalf("cancelled once taken by the writer: err %v, stored %v %v; want nil and both rows", err, a, b)
				}
			}
		})
	}
}

// In a group of SQLite writes, the calls a payout's way out waits on (here
// a create) commit before the tracker's bulk transitions, whatever their
// order of arrival: a bulk call that arrived first already sees the create
// committed, from another connection.
func TestGroupCommitsUrgentCallsBeforeBulk(t *testing.T) {
	db := openSQLite(t)
	ctx := context.Background()
	held, release := make(chan struct{}), make(chan struct{})
	go func() {
		_ = db.WriteTx(ctx, func(context.Context, func(string, ...any) error) error {
			close(held)
			<-release // the writer is busy: the next calls wait together
			return nil
		})
	}()
	<-held
	ids := &payout.IDGenerator{}
	p, idem := acceptable(ids, 1)
	bulkSaw := make(chan error, 1)
	go func() {
		bulkSaw <- db.BulkWriteTx(ctx, func(ctx context.Context) error {
			_, err := db.GetPayout(ctx, p.ID) // a read connection: committed rows only
			return err
		})
	}()
	time.Sleep(100 * time.Millisecond) // the bulk call waits first
	created := make(chan error, 1)
	go func() { created <- db.CreatePayout(ctx, p, idem) }()
	time.Sleep(100 * time.Millisecond) // and the create after it, in the same group
	close(release)
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if err := <-bulkSaw; err != nil {
		t.Fatalf("the bulk call ran before the create of its group was committed: %v", err)
	}
}

// A group whose calls run without savepoints is run again, each call in a
// savepoint, when one of them fails: the failed call writes nothing and
// every other call of the group is committed once.
func TestGroupWithAFailureIsRunAgainIsolated(t *testing.T) {
	reg := prometheus.NewRegistry()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "g.db"), store.Options{Registerer: reg, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	isolated := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "sluice_store_group_commit_isolated_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return 0
	}
	// Rounds of 64 concurrent creates, one in eight reusing an external_id
	// of its round, until some group held a failing call beside others.
	created := 0
	for round := 0; round < 50 && isolated() == 0; round++ {
		const n = 64
		var wg sync.WaitGroup
		errs := make([]error, n)
		ps := make([]*payout.Payout, n)
		for i := range n {
			ext := fmt.Sprintf("r%d-%d", round, i)
			if i%8 == 7 {
				ext = fmt.Sprintf("r%d-%d", round, i-1)
			}
			ps[i] = &payout.Payout{ID: fmt.Sprintf("po_g%03d_%02d", round, i), Chain: "sandbox", ChainID: 1, Asset: "ETH",
				Amount: big.NewInt(1), To: common.HexToAddress("0x01"), Sender: common.HexToAddress("0x02"),
				ExternalID: ext, CreatedAt: time.Now()}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = db.CreatePayout(ctx, ps[i], nil)
			}()
		}
		wg.Wait()
		for i := 0; i < n; i += 8 {
			pair := errs[i+6 : i+8]
			var dup *payout.DuplicateExternalIDError
			won := 0
			for _, err := range pair {
				switch {
				case err == nil:
					won++
				case !errors.As(err, &dup):
					t.Fatalf("round %d: %v", round, err)
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d of two creates with one external_id succeeded", round, won)
			}
			for _, err := range errs[i : i+6] {
				if err != nil {
					t.Fatalf("round %d: a create with its own external_id failed: %v", round, err)
				}
			}
		}
		created += n - n/8
	}
	if isolated() == 0 {
		t.Fatal("no group held a failing call beside others in 50 rounds")
	}
	counts, err := db.CountByStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := db.ListEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if counts[payout.StatusQueued] != int64(created) || len(evs) != min(created, 1000) {
		t.Fatalf("%d queued payouts and %d events, want %d of each", counts[payout.StatusQueued], len(evs), created)
	}
}

// TestAnotherProcessesWriteIsSeen: two stores on one SQLite file, as two
// processes would be. The first holds a copy of a payout it submitted; the
// second asks to cancel it (a new version). The first's next transition
// starts from its stale copy, finds the row changed, and runs again from
// the row: the cancel request is kept and the versions stay in sequence.
func TestAnotherProcessesWriteIsSeen(t *testing.T) {
	path := "sqlite:" + filepath.Join(t.TempDir(), "two.db")
	first, second := openURL(t, path), openURL(t, path)
	ctx := context.Background()
	p := &payout.Payout{ID: payout.DefaultIDs.New("po_", time.Now()), Chain: "sandbox", ChainID: 1, Asset: "ETH",
		Amount: big.NewInt(7), To: common.HexToAddress("0x01"), Sender: common.HexToAddress("0x02"), CreatedAt: time.Now()}
	if err := first.CreatePayout(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	hash := common.HexToHash("0xaa")
	a := &payout.Attempt{PayoutID: p.ID, ChainID: 1, Sender: p.Sender, Nonce: 0, TxHash: hash, RawTx: []byte("raw"),
		GasLimit: 21_000, MaxFeePerGas: big.NewInt(2), MaxPriorityFeePerGas: big.NewInt(1)}
	if err := first.SubmitAttempts(ctx, []*payout.Attempt{a}); err != nil {
		t.Fatal(err)
	}
	if _, err := second.CancelPayout(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	err := first.MarkMined(ctx, []payout.Receipt{{PayoutID: p.ID, TxHash: hash, BlockNumber: 5,
		BlockHash: common.HexToHash("0xbb"), GasUsed: 21_000, EffectiveGasPrice: big.NewInt(2), Success: true}})
	if err != nil {
		t.Fatalf("MarkMined after another process's write: %v", err)
	}
	got, err := second.GetPayout(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != payout.StatusConfirming || !got.CancelRequested || got.Version != 4 || got.BlockNumber != 5 {
		t.Fatalf("payout after both writes: status %s, cancel requested %v, version %d, block %d; want confirming, true, 4, 5",
			got.Status, got.CancelRequested, got.Version, got.BlockNumber)
	}
	evs, err := first.ListEvents(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		if e.ObjectID == p.ID {
			if e.ObjectSeq != int64(len(types)+1) {
				t.Fatalf("event %s has sequence %d, want %d", e.Type, e.ObjectSeq, len(types)+1)
			}
			types = append(types, e.Type)
		}
	}
	if want := []string{payout.EventCreated, payout.StatusSubmitted.EventType(), payout.EventCancelRequested, payout.StatusConfirming.EventType()}; !slices.Equal(types, want) {
		t.Fatalf("events %v, want %v", types, want)
	}
}

func TestBooksSQLite(t *testing.T) {
	t.Parallel()
	storetest.RunBooks(t, func(t *testing.T) storetest.BooksStore { return openSQLite(t) })
}

func TestBooksPostgres(t *testing.T) {
	t.Parallel()
	storetest.RunBooks(t, func(t *testing.T) storetest.BooksStore { return openPostgres(t) })
}
