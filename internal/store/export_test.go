package store

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
func (db *DB) ExecRaw(query string, args ...any) error {
	_, err := db.write.Exec(db.q(query), args...)
	return err
}
