package store

import (
	"context"
	"database/sql"
	"flag"
	"os"
	"testing"
	"time"
)

// SetGroupCommit turns SQLite's group commit on or off for DBs opened
// afterwards, and returns the previous setting.
func SetGroupCommit(on bool) bool {
	prev := groupCommit
	groupCommit = on
	return prev
}

// LatestMigration is the version the embedded migrations end at.
func LatestMigration(dialect string) int {
	ms, err := loadMigrations(dialect)
	if err != nil || len(ms) == 0 {
		return -1
	}
	return ms[len(ms)-1].version
}

// ExecRaw runs a statement on the write pool, so tests can tamper with
// rows as an intruder with database access would.
// The copies of payouts and the active policy the store holds are
// dropped: a test's tampering is seen.
func (db *DB) ExecRaw(query string, args ...any) error {
	_, err := db.write.Exec(db.q(query), args...)
	if db.rows != nil {
		db.rows.clear()
	}
	db.activePolicy.changed()
	return err
}

// RawEndpointSecret reads an endpoint's secret column as stored.
func (db *DB) RawEndpointSecret(id string) (string, error) {
	var s string
	err := db.read.QueryRow(db.q(`SELECT secret FROM webhook_endpoints WHERE id = ?`), id).Scan(&s)
	return s, err
}

// SetRawEndpointSecret writes an endpoint's secret column as given.
func (db *DB) SetRawEndpointSecret(id, stored string) error {
	_, err := db.write.Exec(db.q(`UPDATE webhook_endpoints SET secret = ? WHERE id = ?`), stored, id)
	return err
}

// RawSigningKey reads an API key's signing_key column as stored.
func (db *DB) RawSigningKey(id string) ([]byte, error) {
	var b []byte
	err := db.read.QueryRow(db.q(`SELECT signing_key FROM api_keys WHERE id = ?`), id).Scan(&b)
	return b, err
}

// BulkWriteTx runs fn as a bulk write, as the tracker's transitions run
// (bulkTx).
func (db *DB) BulkWriteTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return db.bulkTx(ctx, "test_bulk", func(ctx context.Context, _ *sql.Tx, _ time.Time) error { return fn(ctx) })
}

// WriteTx runs fn in a write transaction of its own; exec runs a statement
// in it as the store's methods do (prepared where the dialect wants it).
func (db *DB) WriteTx(ctx context.Context, fn func(ctx context.Context, exec func(query string, args ...any) error) error) error {
	return db.withTx(ctx, "test", func(ctx context.Context, tx *sql.Tx, _ time.Time) error {
		return fn(ctx, func(query string, args ...any) error {
			_, err := db.execTx(ctx, tx, db.q(query), args...)
			return err
		})
	})
}

// TestMain makes every store test check each held copy of a payout against
// its row; benchmarks measure the store as it runs, without the check.
func TestMain(m *testing.M) {
	flag.Parse()
	verifyCommittedRows = flag.Lookup("test.bench").Value.String() == ""
	os.Exit(m.Run())
}

// SetSyncFile replaces how the WAL syncer reaches the disk, until the
// returned function restores it.
func SetSyncFile(f func(*os.File) error) (restore func()) {
	prev := syncFile
	syncFile = f
	return func() { syncFile = prev }
}
