package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrations holds one folder per dialect; files are NNNN_name.sql and
// carry the same numbers in both.
//
//go:embed migrations
var migrations embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the dialect's migrations in version order.
func loadMigrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		b, err := migrations.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies pending migrations in one transaction. On PostgreSQL an
// advisory lock makes concurrent migrators wait for each other; on SQLite
// the immediate transaction holds the write lock.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := loadMigrations(db.d.name)
	if err != nil {
		return fmt.Errorf("store: load migrations: %w", err)
	}
	var applied []string
	err = db.withTx(ctx, "migrate", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		if db.d.q.lockMigrations != "" {
			if _, err := tx.ExecContext(ctx, db.d.q.lockMigrations); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, db.d.q.createMigrations); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRowContext(ctx, db.d.q.migrationVersion).Scan(&current); err != nil {
			return fmt.Errorf("read version: %w", err)
		}
		for _, m := range ms {
			if m.version <= current {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, db.d.q.insertMigration, m.version, db.d.time(now)); err != nil {
				return fmt.Errorf("record %s: %w", m.name, err)
			}
			applied = append(applied, m.name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if len(applied) > 0 {
		db.log.InfoContext(ctx, "migrations applied", "dialect", db.d.name, "migrations", applied)
	}
	return nil
}

// MigrationVersion returns the highest migration applied.
func (db *DB) MigrationVersion(ctx context.Context) (int, error) {
	var v int
	if err := db.read.QueryRowContext(ctx, db.d.q.migrationVersion).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: migration version: %w", err)
	}
	return v, nil
}

// PendingMigrations lists the migrations this binary carries that the
// database has not applied yet (all of them on an empty database).
func (db *DB) PendingMigrations(ctx context.Context) ([]string, error) {
	ms, err := loadMigrations(db.d.name)
	if err != nil {
		return nil, fmt.Errorf("store: load migrations: %w", err)
	}
	current, err := db.MigrationVersion(ctx)
	if err != nil {
		if !missingTable(err) {
			return nil, err
		}
		current = 0
	}
	var pending []string
	for _, m := range ms {
		if m.version > current {
			pending = append(pending, m.name)
		}
	}
	return pending, nil
}

// missingTable reports whether err says schema_migrations does not exist.
func missingTable(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "no such table") || strings.Contains(msg, "does not exist")
}
