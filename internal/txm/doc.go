// Package txm sends payouts: one loop per (chain, sender) that, while it
// holds the sender's lease, claims queued payouts, simulates them, allocates
// nonces and stores signed attempts in one database transaction, broadcasts
// them, finds their receipts and confirms them, re-checking that their
// blocks stay canonical.
//
// The database is the source of truth: the loop keeps only a cache of what
// is in flight, rebuilt from the store at every start, so a process killed at
// any moment resumes without paying anything twice.
package txm
