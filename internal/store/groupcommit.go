package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// maxGroup bounds the write transactions that share one.
const maxGroup = 256

// gatherYields is how many times the writer yields without a new call
// before it commits what it has.
const gatherYields = 2

// groupTimeout bounds one group's transaction; it does not belong to any
// one caller, so no caller's context can cancel the others' writes.
const groupTimeout = 30 * time.Second

// errClosed is returned to calls made after Close.
var errClosed = errors.New("store: closed")

// groupCommitter gathers concurrent write transactions (every withTx on
// SQLite: API creates and the senders' transitions alike) into one SQLite
// transaction: one writer goroutine takes every call waiting when it is
// free, runs them one after the other and commits once. With a single write
// connection a commit costs about the same for one call or hundreds (the
// pages the calls share, such as the ends of the events table and of the
// status indexes, are written to the WAL once), so the commit rate is no
// longer the payout rate's ceiling. BenchmarkPayoutLifecycle/sqlite: 541-673
// → 430-486 µs of CPU per payout when the senders' transactions joined the
// creates' groups. Within a group, bulk calls (bulkTx) commit after the
// others, in a second transaction (see commitGroup).
type groupCommitter struct {
	db    *DB
	reqs  chan *groupReq
	quit  chan struct{}
	wg    sync.WaitGroup
	group []*groupReq // owned by the writer goroutine
}

// groupReq is one caller's transaction.
type groupReq struct {
	ctx  context.Context
	fn   txFunc
	bulk bool // commits after the group's other calls (see commitGroup)
	done chan error
}

func newGroupCommitter(db *DB) *groupCommitter {
	g := &groupCommitter{db: db, reqs: make(chan *groupReq), quit: make(chan struct{})}
	g.wg.Add(1)
	go g.run()
	return g
}

// stop ends the writer after its current group; later calls get errClosed.
func (g *groupCommitter) stop() {
	close(g.quit)
	g.wg.Wait()
}

// submit hands a transaction to the writer and waits for its outcome. Once
// taken, it is waited for even if ctx ends, so the caller never reports a
// failure for a change that was in fact committed.
func (g *groupCommitter) submit(ctx context.Context, fn txFunc, bulk bool) error {
	r := &groupReq{ctx: ctx, fn: fn, bulk: bulk, done: make(chan error, 1)}
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.quit:
		return errClosed
	}
	return <-r.done
}

func (g *groupCommitter) run() {
	defer g.wg.Done()
	for {
		select {
		case r := <-g.reqs:
			g.group = append(g.group[:0], r)
			g.gather()
			g.commitGroup()
		case <-g.quit:
			return
		}
	}
}

// gather takes every call already waiting, up to maxGroup. When none is
// waiting it yields to let callers that are about to send do so: a larger
// group costs one commit all the same.
func (g *groupCommitter) gather() {
	for idle := 0; len(g.group) < maxGroup && idle < gatherYields; {
		select {
		case r := <-g.reqs:
			g.group = append(g.group, r)
			idle = 0
		default:
			idle++
			runtime.Gosched()
		}
	}
}

// commitGroup commits the group's calls that a payout's way out waits on
// (API creates, submits) first, and then, in a transaction of their own,
// the bulk ones (the tracker's transitions of a block's payouts), so that
// the former never wait for the latter within a group.
func (g *groupCommitter) commitGroup() {
	all := g.group
	var first, bulk []*groupReq
	for _, r := range all {
		if r.bulk {
			bulk = append(bulk, r)
		} else {
			first = append(first, r)
		}
	}
	for _, part := range [][]*groupReq{first, bulk} {
		if len(part) > 0 {
			g.group = part
			g.commit()
		}
	}
	clear(all) // answered: let the collector have them
	g.group = all[:0]
}

// commit runs the group in one transaction and answers every call.
//
// It first runs the calls one after the other with no savepoints: they
// cost a statement journal copy of every page each call changes, and
// calls seldom fail. When one does fail, that transaction is rolled back
// whole and the group runs again with each call in a savepoint, so that
// the failure undoes only its own writes. A call must therefore be safe to
// run twice, as any transaction ownTx may retry is.
func (g *groupCommitter) commit() {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	defer g.recoverGroup()
	results := make([]error, len(g.group))
	writes := make([]rowWrites, len(g.group)) // each call's, kept once it commits
	g.db.metrics.groupSize.Observe(float64(len(g.group)))
	err := g.db.ownTx(ctx, "write_group", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		for i, r := range g.group {
			writes[i] = rowWrites{}
			if results[i] = r.ctx.Err(); results[i] != nil {
				continue // the caller gave up before its turn: write nothing
			}
			if results[i] = r.fn(withRowWrites(ctx, &writes[i]), tx, now); results[i] != nil {
				return errIsolate
			}
		}
		return nil
	})
	if errors.Is(err, errIsolate) {
		err = nil
		if len(g.group) > 1 || errors.Is(results[0], errStaleRow) {
			g.db.metrics.groupIsolated.Inc()
			err = g.db.ownTx(ctx, "write_group", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
				for i, r := range g.group {
					results[i] = g.one(ctx, tx, now, r, &writes[i])
					if errors.Is(results[i], errAbort) {
						return results[i]
					}
				}
				return nil
			})
		}
	}
	if err != nil {
		g.db.log.Error("group commit failed", "transactions", len(g.group), "err", err)
	}
	for i, r := range g.group {
		if err != nil {
			results[i] = err // nothing was committed
		} else if results[i] == nil {
			g.db.committedWrites(&writes[i])
		}
		r.done <- results[i]
		g.group[i] = nil
	}
}

// errIsolate ends a group's first run when one of its calls failed.
var errIsolate = errors.New("a call of the group failed: run each in a savepoint")

// recoverGroup answers the calls of a group whose transaction panicked
// (rolled back by then), so that a bug fails those calls instead of
// leaving every later caller waiting for a writer that is gone.
func (g *groupCommitter) recoverGroup() {
	v := recover()
	if v == nil {
		return
	}
	err := fmt.Errorf("store: write: panic: %v", v)
	g.db.log.Error("group commit panicked", "transactions", len(g.group), "err", err, "stack", string(debug.Stack()))
	for i, r := range g.group {
		if r != nil {
			r.done <- err
			g.group[i] = nil
		}
	}
}

// The savepoint that isolates one transaction within a group.
const (
	savepoint           = "SAVEPOINT one"
	rollbackToSavepoint = "ROLLBACK TO one"
	releaseSavepoint    = "RELEASE one"
)

// errAbort marks a failure that leaves the group's transaction unusable.
var errAbort = errors.New("group transaction aborted")

// one runs one transaction inside a savepoint, undoing only its own writes
// when it fails, and collecting them in w. Its statements run with the
// group's ctx (see txFunc). A call that started from a stale copy of a
// payout (errStaleRow, now forgotten) runs once more, reading the row.
func (g *groupCommitter) one(ctx context.Context, tx *sql.Tx, now time.Time, r *groupReq, w *rowWrites) error {
	err := g.oneTry(ctx, tx, now, r, w)
	if errors.Is(err, errStaleRow) {
		err = g.oneTry(ctx, tx, now, r, w)
	}
	return err
}

func (g *groupCommitter) oneTry(ctx context.Context, tx *sql.Tx, now time.Time, r *groupReq, w *rowWrites) error {
	*w = rowWrites{}
	if err := r.ctx.Err(); err != nil {
		return err // the caller gave up before its turn: write nothing
	}
	if _, err := g.db.execTx(ctx, tx, savepoint); err != nil {
		return fmt.Errorf("%w: savepoint: %w", errAbort, err)
	}
	err := r.fn(withRowWrites(ctx, w), tx, now)
	if err != nil {
		if _, rbErr := g.db.execTx(ctx, tx, rollbackToSavepoint); rbErr != nil {
			return fmt.Errorf("%w: rollback to savepoint: %w", errAbort, rbErr)
		}
	}
	if _, relErr := g.db.execTx(ctx, tx, releaseSavepoint); relErr != nil {
		return fmt.Errorf("%w: release savepoint: %w", errAbort, relErr)
	}
	return err
}
