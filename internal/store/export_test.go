package store

// SetGroupCommit turns SQLite's group commit on or off for DBs opened
// afterwards, and returns the previous setting.
func SetGroupCommit(on bool) bool {
	prev := groupCommit
	groupCommit = on
	return prev
}
