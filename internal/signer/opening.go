package signer

import (
	"context"
	"errors"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// Opening is the signer of a hot wallet whose key is still being opened
// (a keystore takes about a CPU second of scrypt). The engine builds its
// senders and serves its API at once with it: signing waits until the key
// is open, and Ready says when it is, so that new payouts go to wallets
// that can sign now. Its address is the configured one; Set checks that
// the opened key signs for it.
//
// A signer that cannot be reached when it is opened (a remote signer, an
// HSM or MPC parties that are down: payout.ErrSignerUnavailable) is
// Retrying: the engine starts anyway, signing fails at once as
// unavailable (payouts wait with signer_unavailable, offline signing
// works), and the engine tries to open it again until it can.
type Opening struct {
	addr    common.Address
	once    sync.Once
	done    chan struct{}
	sg      payout.Signer
	err     error
	started sync.Once
	first   chan struct{} // closed at the first outcome: open, failed or retrying

	mu       sync.Mutex
	retrying error // why it is retrying; nil: not retrying
}

// NewOpening returns the signer of addr, not yet open.
func NewOpening(addr common.Address) *Opening {
	return &Opening{addr: addr, done: make(chan struct{}), first: make(chan struct{})}
}

// Retrying records that the signer could not be reached now (err, a
// payout.ErrSignerUnavailable) and is tried again; until Set, signing
// fails at once with err.
func (o *Opening) Retrying(err error) {
	o.mu.Lock()
	o.retrying = err
	o.mu.Unlock()
	o.started.Do(func() { close(o.first) })
}

// Unreachable is why the signer could not be reached at its last try
// (the opening is retrying), or nil.
func (o *Opening) Unreachable() error { return o.retryErr() }

// retryErr is why the opening is retrying, or nil.
func (o *Opening) retryErr() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.retrying
}

// Started blocks until the first attempt to open has an outcome (or ctx
// ends): it returns the opening's error when that attempt failed for
// good, nil when it opened or is retrying.
func (o *Opening) Started(ctx context.Context) error {
	select {
	case <-o.first:
	case <-o.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-o.done:
		return o.err
	default:
		return nil
	}
}

// errStillOpening is the health of a signer whose key is not open yet.
var errStillOpening = errors.New("the key is still being opened")

// Set gives the opened signer, or why it could not be opened. A signer for
// another address is an error. Only the first call counts.
func (o *Opening) Set(sg payout.Signer, err error) {
	o.once.Do(func() {
		if err == nil && sg.Address() != o.addr {
			err = errors.New("the key opened is of " + sg.Address().Hex() + ", not of " + o.addr.Hex())
		}
		o.sg, o.err = sg, err
		o.mu.Lock()
		o.retrying = nil
		o.mu.Unlock()
		close(o.done)
		o.started.Do(func() { close(o.first) })
	})
}

// Wait blocks until the key is open (or failed) or ctx ends, and returns
// the opening's error.
func (o *Opening) Wait(ctx context.Context) error {
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed once the key has opened or failed for good.
func (o *Opening) Done() <-chan struct{} { return o.done }

// Ready reports whether the key is open and usable.
func (o *Opening) Ready() bool {
	select {
	case <-o.done:
		return o.err == nil
	default:
		return false
	}
}

// Address is the hot wallet's configured address.
func (o *Opening) Address() common.Address { return o.addr }

// signer waits for the opened signer; while retrying it fails at once.
func (o *Opening) signer(ctx context.Context) (payout.Signer, error) {
	if !o.Ready() {
		if err := o.retryErr(); err != nil {
			return nil, unavailable("opening", err)
		}
	}
	if err := o.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, unavailable("opening", err)
	}
	return o.sg, nil
}

// SignDigest signs once the key is open.
func (o *Opening) SignDigest(ctx context.Context, digest [32]byte) ([]byte, error) {
	sg, err := o.signer(ctx)
	if err != nil {
		return nil, err
	}
	return sg.SignDigest(ctx, digest)
}

// SignTransaction signs once the key is open, through the opened signer's
// SignTransaction when it has one.
func (o *Opening) SignTransaction(ctx context.Context, chainID *big.Int, unsigned []byte, digest [32]byte) ([]byte, error) {
	sg, err := o.signer(ctx)
	if err != nil {
		return nil, err
	}
	return SignTransaction(ctx, sg, chainID, unsigned, digest)
}

// InProcessKey is the opened signer's answer; false until it is open.
func (o *Opening) InProcessKey() bool {
	select {
	case <-o.done:
		return o.err == nil && o.sg != nil && signsInProcess(o.sg)
	default:
		return false
	}
}

// Health is unavailable until the key is open, then the opened signer's.
func (o *Opening) Health(ctx context.Context) error {
	select {
	case <-o.done:
	default:
		if err := o.retryErr(); err != nil {
			return unavailable("opening", err)
		}
		return unavailable("opening", errStillOpening)
	}
	if o.err != nil {
		return unavailable("opening", o.err)
	}
	return Health(ctx, o.sg)
}
