package store_test

import (
	"context"
	"errors"
	"math/big"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

func walTestPayout(i int) *payout.Payout {
	return &payout.Payout{ID: payout.DefaultIDs.New("po_", time.Now()), Chain: "sandbox", ChainID: 1, Asset: "ETH",
		Amount: big.NewInt(int64(i + 1)), To: common.BigToAddress(big.NewInt(int64(0x100 + i))), Sender: common.HexToAddress("0x02"),
		CreatedAt: time.Now()}
}

// holdSyncs makes every WAL sync wait until the returned function is
// called (at the latest when the test ends).
func holdSyncs(t *testing.T) (open func()) {
	release := make(chan struct{})
	var once sync.Once
	open = func() { once.Do(func() { close(release) }) }
	restore := store.SetSyncFile(func(f *os.File) error {
		<-release
		return f.Sync()
	})
	t.Cleanup(func() { open(); restore() })
	return open
}

// TestWriteReturnsOnceItsCommitIsOnDisk: on SQLite a write call returns
// only after the WAL holding its commit was synced (a power loss must not
// take an accepted payout, or a broadcast transaction's attempt, with it),
// while the commit itself is already made and readable.
func TestWriteReturnsOnceItsCommitIsOnDisk(t *testing.T) {
	db := openSQLite(t)
	ctx := context.Background()
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	defer open()
	var synced atomic.Value
	defer store.SetSyncFile(func(f *os.File) error {
		synced.Store(f.Name())
		<-release
		return f.Sync()
	})()

	p := walTestPayout(0)
	done := make(chan error, 1)
	go func() { done <- db.CreatePayout(ctx, p, nil) }()
	select {
	case err := <-done:
		t.Fatalf("CreatePayout returned (%v) while its commit was not yet synced", err)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := db.GetPayout(ctx, p.ID); err != nil {
		t.Fatalf("the payout is not readable while its sync waits: %v", err)
	}
	open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if name, _ := synced.Load().(string); !strings.HasSuffix(name, "sluice.db-wal") {
		t.Fatalf("synced %q, want the database's WAL", name)
	}
}

// TestVisibleIsCalledBeforeTheSync: a write's payout.WhenVisible hook runs
// once its commit is made, while the commit's sync is still under way (the
// API wakes the payout's sender there), and not for a write that failed.
func TestVisibleIsCalledBeforeTheSync(t *testing.T) {
	db := openSQLite(t)
	open := holdSyncs(t)

	visible := make(chan struct{}, 2)
	ctx := payout.WhenVisible(context.Background(), func() { visible <- struct{}{} })
	p := walTestPayout(0)
	idem := &payout.IdempotencyRecord{Scope: "key_1", Key: "k", Fingerprint: "f", ResponseStatus: 201, ResponseBody: []byte("{}"), CreatedAt: time.Now()}
	done := make(chan error, 1)
	go func() { done <- db.CreatePayout(ctx, p, idem) }()
	select {
	case <-visible:
	case err := <-done:
		t.Fatalf("CreatePayout returned (%v) before its hook ran", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the hook did not run while the commit's sync waited")
	}
	select {
	case err := <-done:
		t.Fatalf("CreatePayout returned (%v) while its commit was not yet synced", err)
	default:
	}
	open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// The same key again: the write fails, nothing is committed, no hook.
	var conflict *payout.IdempotencyConflictError
	if err := db.CreatePayout(ctx, walTestPayout(1), idem); !errors.As(err, &conflict) {
		t.Fatalf("second create with the key: %v, want an idempotency conflict", err)
	}
	select {
	case <-visible:
		t.Fatal("the hook ran for a write that failed")
	default:
	}
}

// TestConcurrentWritesShareASync: writes that commit while a sync is under
// way wait for the next one together, rather than one fsync each.
func TestConcurrentWritesShareASync(t *testing.T) {
	db := openSQLite(t)
	ctx := context.Background()
	var syncs atomic.Int32
	defer store.SetSyncFile(func(f *os.File) error {
		syncs.Add(1)
		time.Sleep(20 * time.Millisecond) // a slow disk
		return f.Sync()
	})()
	const writes = 50
	var wg sync.WaitGroup
	errs := make(chan error, writes)
	for i := range writes {
		wg.Go(func() { errs <- db.CreatePayout(ctx, walTestPayout(i), nil) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := syncs.Load(); n == 0 || n >= writes/2 {
		t.Fatalf("%d syncs for %d concurrent writes: want at least one, and far fewer than the writes", n, writes)
	}
}

// TestFailedSyncIsReported: when the disk refuses the sync, the write call
// says so instead of reporting a durable commit.
func TestFailedSyncIsReported(t *testing.T) {
	db := openSQLite(t)
	disk := errors.New("input/output error")
	defer store.SetSyncFile(func(*os.File) error { return disk })()
	err := db.CreatePayout(context.Background(), walTestPayout(0), nil)
	if !errors.Is(err, disk) || !strings.Contains(err.Error(), "could not be synced") {
		t.Fatalf("CreatePayout with a failing disk: %v, want the sync's error", err)
	}
}

// TestCommitIsAnnouncedOnceOnDisk: Committed (what wakes the webhook
// dispatcher and event streams) fires only once the commit is synced, so
// no event goes out that a power loss could take back.
func TestCommitIsAnnouncedOnceOnDisk(t *testing.T) {
	db := openSQLite(t)
	open := holdSyncs(t)
	committed := db.Committed()
	done := make(chan error, 1)
	go func() { done <- db.CreatePayout(context.Background(), walTestPayout(0), nil) }()
	select {
	case <-committed:
		t.Fatal("Committed fired while the commit was not yet on disk")
	case <-time.After(300 * time.Millisecond):
	}
	open()
	select {
	case <-committed:
	case <-time.After(5 * time.Second):
		t.Fatal("Committed did not fire once the commit was synced")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCloseWaitsForASyncUnderWay: closing the store while a write waits for
// its sync lets that sync finish on an open file, so the write is reported
// durable rather than failed by the close.
func TestCloseWaitsForASyncUnderWay(t *testing.T) {
	db, err := store.Open(context.Background(), "sqlite:"+t.TempDir()+"/sluice.db", store.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	release, syncing := make(chan struct{}), make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	defer open()
	defer store.SetSyncFile(func(f *os.File) error {
		close(syncing)
		<-release
		return f.Sync()
	})()
	done := make(chan error, 1)
	go func() { done <- db.CreatePayout(context.Background(), walTestPayout(0), nil) }()
	<-syncing
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a sync was under way", err)
	case <-time.After(300 * time.Millisecond):
	}
	open()
	if err := <-done; err != nil {
		t.Fatalf("the write whose sync the close waited for: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
