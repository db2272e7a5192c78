package store

import (
	"context"
	"errors"
	"maps"
	"math/big"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// committedRows keeps, on SQLite, each unfinished payout as this process's
// last commit left it, so that a transition (submit, mined, final) starts
// from it instead of reading the row again: those reads were 15% of the
// store's CPU per payout (BenchmarkPayoutLifecycle/sqlite). Only commits
// put rows in; a transaction rolled back leaves nothing.
//
// A copy is trusted only as far as its version: every write of a payout
// is conditional on the version it read (updatePayout, moveQueued), so a
// row changed by anything else (another process on the same file) fails
// that write, the copy is forgotten and the transaction runs again from
// the row (errStaleRow). A transition that decides from a stale copy to
// write nothing does not find out. On SQLite only the engine's process
// changes payouts (the CLI goes through its API), so a copy goes stale
// only through a foreign write to the file.
type committedRows struct {
	mu sync.Mutex
	m  map[string]*payout.Payout // canonical copies; never handed out
}

// maxCommittedRows bounds the copies held (about 1 KiB each): four wallets
// at 1,500 payouts a second hold about 6,000 unfinished ones.
const maxCommittedRows = 32768

// get returns a copy of id's last committed state, if held.
func (c *committedRows) get(id string) (*payout.Payout, bool) {
	c.mu.Lock()
	p, ok := c.m[id]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	return clonePayout(p), true
}

// put records committed states (canonical copies); finished payouts are
// dropped, since nothing moves them again.
func (c *committedRows) put(ps []*payout.Payout) {
	if len(ps) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*payout.Payout{}
	}
	for _, p := range ps {
		if p.Status.Terminal() {
			delete(c.m, p.ID)
			continue
		}
		if len(c.m) >= maxCommittedRows {
			c.evictLocked()
		}
		c.m[p.ID] = p
	}
}

// evictLocked drops about an eighth of the copies, at random (map order):
// a dropped payout is read from the database when it next moves.
func (c *committedRows) evictLocked() {
	n := len(c.m) / 8
	for id := range c.m {
		if n--; n < 0 {
			return
		}
		delete(c.m, id)
	}
}

// forget drops ids' copies.
func (c *committedRows) forget(ids ...string) {
	c.mu.Lock()
	for _, id := range ids {
		delete(c.m, id)
	}
	c.mu.Unlock()
}

// clear drops every copy.
func (c *committedRows) clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

// rowWrites collects the payout states one transaction (or one call of a
// group) wrote, to be put in committedRows once it commits.
type rowWrites struct{ ps []*payout.Payout }

type rowWritesKey struct{}

// withRowWrites gives ctx's transaction function a fresh collector.
func withRowWrites(ctx context.Context, w *rowWrites) context.Context {
	return context.WithValue(ctx, rowWritesKey{}, w)
}

// wrote records that p's state was just written in the transaction ctx
// belongs to (a no-op without committedRows).
func (db *DB) wrote(ctx context.Context, p *payout.Payout) {
	if db.rows == nil {
		return
	}
	if w, ok := ctx.Value(rowWritesKey{}).(*rowWrites); ok {
		w.ps = append(w.ps, canonicalPayout(p))
	}
}

// committed puts what w collected in committedRows; call it only after
// the transaction that wrote it committed.
func (db *DB) committedWrites(w *rowWrites) {
	if db.rows != nil && w != nil {
		db.rows.put(w.ps)
	}
}

// errStaleRow says a payout's held copy was older than its row: the copy is
// forgotten and the transaction is run again, reading the row.
var errStaleRow = errors.New("store: payout changed since this process last wrote it")

// verifyCommittedRows makes every use of a held copy compare it with the
// row read afresh and panic when they differ: this package's tests turn it
// on, and SLUICE_STORE_VERIFY_HELD_ROWS=1 does for any process (CI runs
// the engine's tests so).
var verifyCommittedRows = os.Getenv("SLUICE_STORE_VERIFY_HELD_ROWS") == "1"

// heldPayouts splits ids (sorted, unique) into the copies held and the ids
// to read.
func (db *DB) heldPayouts(ids []string) (map[string]*payout.Payout, []string) {
	held := make(map[string]*payout.Payout, len(ids))
	if db.rows == nil {
		return held, ids
	}
	var missing []string
	for _, id := range ids {
		if p, ok := db.rows.get(id); ok {
			held[id] = p
		} else {
			missing = append(missing, id)
		}
	}
	db.metrics.heldRows.WithLabelValues("held").Add(float64(len(held)))
	db.metrics.heldRows.WithLabelValues("read").Add(float64(len(missing)))
	return held, missing
}

// checkHeld panics when a held copy differs from its row at the same
// version (verifyCommittedRows). A copy of an older version is stale,
// which the conditional write finds.
func checkHeld(held map[string]*payout.Payout, fresh []*payout.Payout) {
	for _, f := range fresh {
		if h, ok := held[f.ID]; ok && h.Version == f.Version && !reflect.DeepEqual(h, canonicalPayout(f)) {
			panic("store: held copy of payout " + f.ID + " differs from its row")
		}
	}
}

// canonicalPayout is a deep copy of p in the form a read of its row gives,
// so that a held copy and a fresh read are interchangeable (and comparable
// with reflect.DeepEqual).
func canonicalPayout(p *payout.Payout) *payout.Payout {
	c := clonePayout(p)
	if len(c.Metadata) == 0 {
		c.Metadata = nil
	}
	c.CreatedAt, c.UpdatedAt = canonicalTime(c.CreatedAt), canonicalTime(c.UpdatedAt)
	return c
}

func canonicalTime(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }

// clonePayout copies p and everything it points to.
func clonePayout(p *payout.Payout) *payout.Payout {
	c := *p
	c.Amount, c.FeeCap, c.Fee, c.ChunkAmount = cloneBig(p.Amount), cloneBig(p.FeeCap), cloneBig(p.Fee), cloneBig(p.ChunkAmount)
	c.Metadata = maps.Clone(p.Metadata)
	c.TxHash, c.BlockHash = clonePtr(p.TxHash), clonePtr(p.BlockHash)
	c.Nonce, c.LogIndex = clonePtr(p.Nonce), clonePtr(p.LogIndex)
	return &c
}

// cloneBig copies x in its normal form (a zero has no words).
func cloneBig(x *big.Int) *big.Int {
	if x == nil {
		return nil
	}
	return new(big.Int).Set(x)
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
