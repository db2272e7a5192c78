package payout

import "context"

type visibleKey struct{}

// WhenVisible returns ctx carrying f, which a Store write made with it
// calls once its change is committed and visible to other readers, which
// may be before the write returns: on SQLite a write returns only once its
// commit is synced to disk, and f lets the caller's next step start during
// the sync. What f starts must itself wait for a durable write before it
// acts outside the database (the sender stores an attempt, synced, before
// it broadcasts). f is not called when the write fails, and must not block.
func WhenVisible(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, visibleKey{}, f)
}

// Visible calls the function WhenVisible put in ctx, if any. Store
// adapters call it after a commit.
func Visible(ctx context.Context) {
	if f, ok := ctx.Value(visibleKey{}).(func()); ok {
		f()
	}
}
