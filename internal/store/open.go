package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// sqlitePragmas come in the order SQLite needs them: busy_timeout first so
// that the others wait for a lock instead of failing, then WAL, foreign keys
// and the durability level: NORMAL writes each commit to the WAL without
// syncing it (never corrupt, but a power loss could take the last commits),
// and walSyncer syncs the WAL before any write call returns, off the
// writer's path. temp_store=MEMORY keeps the savepoint journals of group
// commit off the disk. Each connection caches up to 16 MiB of pages
// (SQLite's default is 2 MiB, which a busy engine's indexes outgrow: every
// miss is a read system call). No memory map: it measured no faster, and
// an I/O error in a mapped page is a crash rather than an error.
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
	"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)" +
	"&_pragma=cache_size(-16384)"

// openSQLite opens a single-connection pool for writes, whose transactions
// take the write lock at BEGIN, and a separate pool of read-only connections.
func (db *DB) openSQLite(ctx context.Context, path string) error {
	db.d = sqliteDialect
	path = strings.TrimPrefix(path, "//")
	if path == "" {
		return errors.New("store: sqlite url needs a path: sqlite:PATH")
	}
	if path == ":memory:" {
		return errors.New("store: sqlite in memory is not supported: use a file in a temporary directory")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("store: open sqlite: %w", err)
	}
	base := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + sqlitePragmas
	w, err := sql.Open("sqlite", base+"&_txlock=immediate")
	if err != nil {
		return fmt.Errorf("store: open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	db.write = w
	db.wal = newWALSyncer(path, db.committed.signal)
	if err := pingSQLite(ctx, w); err != nil {
		_ = w.Close()
		return fmt.Errorf("store: open sqlite: %w", err)
	}
	r, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		_ = w.Close()
		return fmt.Errorf("store: open sqlite readers: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	db.read = r
	return nil
}

// pingSQLite opens the first connection. Several processes opening the same
// new database at once can meet SQLITE_BUSY while one of them switches it
// to WAL (the busy timeout does not cover that switch): try again for a
// few seconds.
func pingSQLite(ctx context.Context, w *sql.DB) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := w.PingContext(ctx)
		if err == nil || !sqliteBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sqliteBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED
// (primary codes 5 and 6, whatever the extended code).
func sqliteBusy(err error) bool {
	var coded interface{ Code() int }
	if !errors.As(err, &coded) {
		return false
	}
	primary := coded.Code() & 0xff
	return primary == 5 || primary == 6
}

// hotStatements are the write statements worth preparing once.
func (q *queries) hotStatements() []string {
	return []string{q.insertPayout, q.payoutByExtID, q.updatePayout, q.lockPayout, q.insertEvent,
		q.insertIdem, q.selectIdem, q.acquireLease, q.releaseLease, q.insertNonce, q.insertAttempt,
		savepoint, rollbackToSavepoint, releaseSavepoint}
}

// startSQLiteWriter prepares the hot statements and starts the group
// committer, once the schema exists.
func (db *DB) startSQLiteWriter(ctx context.Context, group bool) error {
	stmts, err := prepareStmts(ctx, db.write, db.d.q.hotStatements()...)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	db.stmts = stmts
	db.readStmts = &readStmts{m: map[string]*sql.Stmt{}}
	db.rows, db.activePolicy = &committedRows{}, &activePolicyCache{}
	if group {
		db.writer = newGroupCommitter(db)
	}
	return nil
}

// openPostgres opens one pool through pgx's database/sql driver. The URL is
// never logged: it may hold a password.
func (db *DB) openPostgres(ctx context.Context, dsn string) error {
	db.d = postgresDialect
	p, err := sql.Open("pgx", dsn)
	if err != nil {
		return errors.New("store: open postgres: invalid url") // the error may quote the password
	}
	p.SetMaxOpenConns(max(8, 4*runtime.GOMAXPROCS(0)))
	p.SetMaxIdleConns(max(8, 4*runtime.GOMAXPROCS(0)))
	if err := p.PingContext(ctx); err != nil {
		_ = p.Close()
		return fmt.Errorf("store: connect postgres: %w", err)
	}
	db.write, db.read = p, p
	return nil
}
