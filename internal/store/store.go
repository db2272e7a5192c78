// Package store persists Sluice's payouts, their attempts and nonces, the
// event outbox, idempotency records and sender leases in SQLite or
// PostgreSQL. It implements payout.Store; the conformance suite in
// package storetest checks both dialects against the same expectations.
//
// Every method runs in one database transaction and writes the events of
// the state changes it makes in that transaction. On SQLite all writes go
// through one connection (concurrent write transactions, the API's creates
// and the senders' transitions, are gathered into one by a group committer)
// and reads use a separate pool; on PostgreSQL one pool serves both.
package store

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/payout"
)

// Options configures a DB. The zero value is usable.
type Options struct {
	// Logger receives the store's few logs (migrations applied, group
	// commit failures). Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock, read once per transaction. Default: time.Now.
	Now func() time.Time
	// Registerer, when not nil, receives the store's metrics: transaction
	// durations and errors by operation.
	Registerer prometheus.Registerer
	// NoMigrate opens the database as it is, without applying pending
	// migrations, for diagnostics (see PendingMigrations): reads work,
	// writes are neither prepared nor group-committed. Default: false.
	NoMigrate bool
	// SecretsKey, when set (32 bytes), seals the webhook signing secrets
	// stored in the database (AES-256-GCM; see SealSecrets). Default: none
	// (secrets stored as given).
	SecretsKey []byte
}

// DB is a SQLite or PostgreSQL database holding Sluice's state.
type DB struct {
	d     *dialect
	write *sql.DB // SQLite: a single connection; PostgreSQL: the pool
	read  *sql.DB // SQLite: a pool of read-only connections; PostgreSQL: write
	// wal syncs SQLite's commits before write calls return; nil on
	// PostgreSQL.
	wal   *walSyncer
	stmts *stmtCache
	// readStmts: SQLite's hot reads, prepared at first use; nil on PostgreSQL.
	readStmts *readStmts
	log       *slog.Logger
	sealer    cipher.AEAD // seals stored secrets; nil: none (Options.SecretsKey)
	now       func() time.Time
	metrics   *metrics
	writer    *groupCommitter // SQLite: runs every withTx, grouped; nil: each runs its own transaction
	rows      *committedRows  // SQLite: the payouts as this process last committed them; nil on PostgreSQL
	// activePolicy is ActivePolicy's answer, kept on SQLite; nil on PostgreSQL.
	activePolicy *activePolicyCache

	committed commitSignal // closed on every commit; see Committed

	closeOnce sync.Once
	closeErr  error
}

var _ payout.Store = (*DB)(nil)

// groupCommit gathers concurrent write transactions into one on SQLite;
// benchmarks turn it off to compare.
var groupCommit = true

// Open connects to the database named by url, either "sqlite:PATH" or a
// "postgres://" (or "postgresql://") URL, and applies pending migrations.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	db := &DB{log: opts.Logger, now: opts.Now}
	var err error
	if db.sealer, err = newSealer(opts.SecretsKey); err != nil {
		return nil, err
	}
	if db.log == nil {
		db.log = slog.Default()
	}
	db.log = db.log.With("component", "store")
	if db.now == nil {
		db.now = time.Now
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("store: metrics: %w", err)
	}
	db.metrics = m
	switch {
	case strings.HasPrefix(url, "sqlite:"):
		err = db.openSQLite(ctx, strings.TrimPrefix(url, "sqlite:"))
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		err = db.openPostgres(ctx, url)
	default:
		return nil, errors.New("store: database url must start with sqlite: or postgres://")
	}
	if err != nil {
		return nil, err
	}
	if !opts.NoMigrate {
		if err := db.migrate(ctx); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	// Without migrations the tables may not exist yet, so nothing is
	// prepared and no group writer runs: such a store is for looking.
	if db.d.cacheStmts && !opts.NoMigrate {
		if err := db.startSQLiteWriter(ctx, groupCommit); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return db, nil
}

// Dialect names the database: "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.d.name }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.write.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Close stops the group committer and closes the pools. Calls after the
// first return the first's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() { db.closeErr = db.close() })
	return db.closeErr
}

func (db *DB) close() error {
	if db.writer != nil {
		db.writer.stop()
	}
	if db.stmts != nil {
		db.stmts.close()
	}
	if db.readStmts != nil {
		db.readStmts.close()
	}
	var errs []error
	if db.read != nil && db.read != db.write {
		errs = append(errs, db.read.Close())
	}
	if db.write != nil {
		errs = append(errs, db.write.Close(), db.wal.close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// clock reads the injected clock once, as UTC truncated to the microsecond
// that both databases keep.
func (db *DB) clock() time.Time { return db.now().UTC().Truncate(time.Microsecond) }

// withTx runs fn in a write transaction with one reading of the clock. The
// transaction is rolled back unless fn returns nil and the commit succeeds.
// PostgreSQL deadlocks and serialization failures are retried. On SQLite fn
// runs in the group writer's transaction, with the other writes waiting at
// the time (see groupCommitter).
func (db *DB) withTx(ctx context.Context, op string, fn txFunc) error {
	return db.writeTx(ctx, op, false, fn)
}

// bulkTx is withTx for a transaction that changes many payouts for the
// tracker (a block's receipts, its confirmations): on SQLite the other
// calls of its group commit before it, without waiting for it.
func (db *DB) bulkTx(ctx context.Context, op string, fn txFunc) error {
	return db.writeTx(ctx, op, true, fn)
}

func (db *DB) writeTx(ctx context.Context, op string, bulk bool, fn txFunc) (err error) {
	start := time.Now()
	defer func() { db.metrics.observe(op, start, err) }()
	if db.writer != nil {
		if err := db.writer.submit(ctx, fn, bulk); err != nil {
			return err
		}
		return db.committedCall(ctx)
	}
	return db.ownDurableTx(ctx, op, fn)
}

// ownDurableTx is ownTx for a write outside the group writer: it returns
// once the commit is on disk (walSyncer). The group writer itself uses
// ownTx, and its callers wait for the disk, not the writer.
func (db *DB) ownDurableTx(ctx context.Context, op string, fn txFunc) error {
	if err := db.ownTx(ctx, op, fn); err != nil {
		return err
	}
	return db.committedCall(ctx)
}

// committedCall ends a write call whose commit is made: the caller's
// payout.WhenVisible hook runs at once, then the call waits for the
// commit to be on disk.
func (db *DB) committedCall(ctx context.Context) error {
	payout.Visible(ctx)
	return db.wal.durable()
}

// txFunc is the work of one write transaction. It runs statements with the
// ctx it is given: on SQLite that is the group's, since interrupting one
// statement would roll back the whole shared transaction.
type txFunc func(ctx context.Context, tx *sql.Tx, now time.Time) error

// ownTx runs fn in a transaction of its own, retrying when the database
// says a retry may succeed.
func (db *DB) ownTx(ctx context.Context, op string, fn txFunc) (err error) {
	for try := 1; ; try++ {
		err = db.tryTx(ctx, fn)
		if err == nil || try == 3 || !(db.d.retryable(err) || errors.Is(err, errStaleRow)) {
			return err
		}
		db.log.DebugContext(ctx, "retrying transaction", "op", op, "try", try, "err", err)
	}
}

func (db *DB) tryTx(ctx context.Context, fn txFunc) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", db.d.interpret(err))
	}
	defer func() { _ = tx.Rollback() }()
	stmtCtx := ctx
	if db.d.detachStatements {
		stmtCtx = context.WithoutCancel(ctx)
	}
	var w rowWrites
	if err := fn(withRowWrites(stmtCtx, &w), tx, db.clock()); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		if ctx.Err() != nil { // rolled back for it, maybe before Commit ran
			return fmt.Errorf("store: commit: %w", ctx.Err())
		}
		return fmt.Errorf("store: commit: %w", db.d.interpret(err))
	}
	db.wal.commit()
	db.committedWrites(&w)
	if db.wal == nil {
		db.committed.signal() // on SQLite the WAL syncer signals once the commit is on disk
	}
	return nil
}

// track starts timing op; the returned function records its duration and
// outcome: defer db.track("op")(&err).
func (db *DB) track(op string) func(*error) {
	start := time.Now()
	return func(err *error) { db.metrics.observe(op, start, *err) }
}

// wrap gives a driver error short context; domain errors pass unchanged.
func (db *DB) wrap(what string, err error) error {
	if err == nil || isDomain(err) {
		return err
	}
	return fmt.Errorf("store: %s: %w", what, db.d.interpret(err))
}
