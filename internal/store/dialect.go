package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"

	"github.com/sluicepay/sluice/internal/payout"
)

// dialect holds what differs between SQLite and PostgreSQL: the queries,
// placeholders, how times are stored and how driver errors read.
type dialect struct {
	name string
	q    queries
	// bind returns the n-th placeholder (1-based).
	bind func(n int) string
	// time converts a time to the value the driver stores.
	time func(t time.Time) any
	// forUpdate locks selected rows until commit ("" on SQLite, where the
	// single writer connection already serialises writes).
	forUpdate string
	// cacheStmts prepares hot statements once (SQLite); pgx caches its
	// prepared statements by itself.
	cacheStmts bool
	// detachStatements runs the statements of a write transaction without
	// the caller's cancellation (SQLite): modernc starts a goroutine per
	// statement to interrupt it otherwise, and every statement there is
	// short. The transaction itself still ends with ctx: database/sql
	// rolls it back between statements and Commit refuses.
	detachStatements bool
}

// errUnique marks a unique constraint violation the adapter did not expect.
var errUnique = errors.New("unique constraint violated")

// interpret turns driver errors that callers may branch on into store or
// domain errors, keeping the driver error in the chain.
func (d *dialect) interpret(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w (%s): %w", errUnique, pgErr.ConstraintName, err)
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() {
		case 1555, 2067: // SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE
			return fmt.Errorf("%w: %w", errUnique, err)
		}
	}
	return err
}

// retryable reports whether a failed transaction may simply be run again:
// PostgreSQL serialization failures and deadlocks.
func (d *dialect) retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// placeholders returns n placeholders starting at the first-th, comma separated.
func (d *dialect) placeholders(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d.bind(first + i))
	}
	return b.String()
}

// isDomain reports whether err is an outcome the Store contract names,
// rather than a failure of the database.
func isDomain(err error) bool {
	var (
		idem  *payout.IdempotencyConflictError
		dup   *payout.DuplicateExternalIDError
		stale *payout.StaleError
	)
	var field *payout.FieldError
	return errors.Is(err, payout.ErrNotFound) || errors.Is(err, payout.ErrNotCancellable) ||
		errors.Is(err, payout.ErrPauseResumed) || errors.As(err, &field) ||
		errors.Is(err, payout.ErrLeaseHeld) || errors.Is(err, payout.ErrNonceConflict) ||
		errors.As(err, &idem) || errors.As(err, &dup) || errors.As(err, &stale)
}

// dbTime scans a time stored as unix microseconds (SQLite) or as a
// timestamptz (PostgreSQL), and gives it back in UTC.
type dbTime struct{ t time.Time }

func (d *dbTime) Scan(v any) error {
	switch v := v.(type) {
	case int64:
		d.t = time.UnixMicro(v).UTC()
	case time.Time:
		d.t = v.UTC()
	default:
		return fmt.Errorf("cannot scan %T into a time", v)
	}
	return nil
}

// stmtCache holds the hot write statements, prepared once on SQLite's
// single write connection. They are prepared at Open, before any
// transaction: preparing later would wait for the connection a transaction
// holds. Statements not in the cache run unprepared.
type stmtCache struct {
	m map[string]*sql.Stmt // read-only after prepare

	// The statements bound to the open write transaction: SQLite has one
	// write connection, so at most one such transaction at a time, and
	// binding a statement to it (tx.StmtContext) costs an allocation and
	// a lookup each call otherwise. Holding tx keeps its pointer from
	// being reused by a later transaction while it is cached here.
	mu    sync.Mutex
	tx    *sql.Tx
	bound map[string]*sql.Stmt
}

// prepareStmts prepares queries on the write pool.
func prepareStmts(ctx context.Context, db *sql.DB, queries ...string) (*stmtCache, error) {
	c := &stmtCache{m: make(map[string]*sql.Stmt, len(queries))}
	for _, q := range queries {
		s, err := db.PrepareContext(ctx, q)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("prepare %.40q: %w", q, err)
		}
		c.m[q] = s
	}
	return c, nil
}

func (c *stmtCache) close() {
	for _, s := range c.m {
		_ = s.Close()
	}
}

// readStmts holds the hot read statements of SQLite's read pool, each
// prepared at its first use (on SQLite preparing a statement can cost
// more than running it). Only fixed query strings go here, so it stays
// small. PostgreSQL's driver caches its statements itself.
type readStmts struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func (c *readStmts) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.m {
		_ = s.Close()
	}
	c.m = nil
}

// readStmt returns query prepared on the read pool, or nil (PostgreSQL,
// or the prepare failed: the query then runs unprepared and says why).
func (db *DB) readStmt(ctx context.Context, query string) *sql.Stmt {
	c := db.readStmts
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[query]; ok || c.m == nil {
		return s
	}
	s, err := db.read.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.m[query] = s
	return s
}

// queryRead runs a fixed read query on the read pool, prepared once.
func (db *DB) queryRead(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := db.readStmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return db.read.QueryContext(ctx, query, args...)
}

// queryRowRead runs a fixed single-row read query on the read pool,
// prepared once.
func (db *DB) queryRowRead(ctx context.Context, query string, args ...any) *sql.Row {
	if s := db.readStmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return db.read.QueryRowContext(ctx, query, args...)
}

// preparedReads is the read pool as a querier whose fixed queries are
// prepared once (queryRead, queryRowRead).
type preparedReads struct{ db *DB }

func (p preparedReads) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return p.db.queryRead(ctx, query, args...)
}

func (p preparedReads) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return p.db.queryRowRead(ctx, query, args...)
}

// stmt returns the statement prepared for query in tx, or nil.
func (db *DB) stmt(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	if db.stmts == nil {
		return nil
	}
	c := db.stmts
	s, ok := c.m[query]
	if !ok {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tx != tx {
		c.tx, c.bound = tx, make(map[string]*sql.Stmt, len(c.m))
	}
	b, ok := c.bound[query]
	if !ok {
		b = tx.StmtContext(ctx, s) // closed with tx
		c.bound[query] = b
	}
	return b
}

// execTx runs a statement in tx, prepared once where the dialect wants it.
func (db *DB) execTx(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if s := db.stmt(ctx, tx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// queryRowTx runs a single-row query in tx.
func (db *DB) queryRowTx(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if s := db.stmt(ctx, tx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}
