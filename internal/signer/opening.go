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
type Opening struct {
	addr common.Address
	once sync.Once
	done chan struct{}
	sg   payout.Signer
	err  error
}

// NewOpening returns the signer of addr, not yet open.
func NewOpening(addr common.Address) *Opening {
	return &Opening{addr: addr, done: make(chan struct{})}
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
		close(o.done)
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

// signer waits for the opened signer.
func (o *Opening) signer(ctx context.Context) (payout.Signer, error) {
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

// Health is unavailable until the key is open, then the opened signer's.
func (o *Opening) Health(ctx context.Context) error {
	select {
	case <-o.done:
	default:
		return unavailable("opening", errStillOpening)
	}
	if o.err != nil {
		return unavailable("opening", o.err)
	}
	return Health(ctx, o.sg)
}
