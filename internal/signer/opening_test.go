package signer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
)

func TestOpeningWaitsForTheKey(t *testing.T) {
	key, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(key.PublicKey)
	o := NewOpening(addr)
	if o.Ready() || o.Address() != addr {
		t.Fatalf("a new Opening: ready %v, address %s", o.Ready(), o.Address().Hex())
	}
	if err := o.Health(context.Background()); !errors.Is(err, payout.ErrSignerUnavailable) {
		t.Fatalf("health while opening = %v, want signer unavailable", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := o.SignDigest(ctx, [32]byte{1}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("signing before the key is open, with a deadline = %v, want the deadline", err)
	}

	signed := make(chan error, 1)
	digest := crypto.Keccak256Hash([]byte("opening"))
	go func() {
		sig, err := o.SignDigest(context.Background(), digest)
		if err == nil {
			pub, perr := crypto.SigToPub(digest[:], sig)
			if perr != nil || crypto.PubkeyToAddress(*pub) != addr {
				err = errors.New("the signature does not recover to the wallet")
			}
		}
		signed <- err
	}()
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-signed:
		t.Fatalf("signed before the key was open: %v", err)
	default:
	}
	o.Set(evm.KeySigner{Key: key}, nil)
	if err := <-signed; err != nil {
		t.Fatal(err)
	}
	if !o.Ready() || o.Health(context.Background()) != nil {
		t.Fatal("not ready after the key opened")
	}
}

func TestOpeningFailures(t *testing.T) {
	key, _ := crypto.GenerateKey()
	other, _ := crypto.GenerateKey()
	wrong := NewOpening(crypto.PubkeyToAddress(key.PublicKey))
	wrong.Set(evm.KeySigner{Key: other}, nil)
	if err := wrong.Wait(context.Background()); err == nil || wrong.Ready() {
		t.Fatalf("a key of another address: %v, ready %v", err, wrong.Ready())
	}
	if _, err := wrong.SignDigest(context.Background(), [32]byte{}); !errors.Is(err, payout.ErrSignerUnavailable) {
		t.Fatalf("signing with the wrong key = %v, want signer unavailable", err)
	}
	failed := NewOpening(crypto.PubkeyToAddress(key.PublicKey))
	failed.Set(nil, errors.New("could not decrypt key with given password"))
	failed.Set(evm.KeySigner{Key: key}, nil) // too late: the first outcome stands
	if err := failed.Health(context.Background()); !errors.Is(err, payout.ErrSignerUnavailable) || failed.Ready() {
		t.Fatalf("a key that failed to open: health %v, ready %v", err, failed.Ready())
	}
}

// TestOpeningRetrying: a signer that could not be reached is Retrying: the
// start goes on (Started), signing fails at once as unavailable with the
// reason, and once it is opened it signs.
func TestOpeningRetrying(t *testing.T) {
	key, _ := crypto.GenerateKey()
	o := NewOpening(crypto.PubkeyToAddress(key.PublicKey))
	down := unavailable("remote", errors.New("dial tcp 127.0.0.1:1: connection refused"))
	o.Retrying(down)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := o.Started(ctx); err != nil {
		t.Fatalf("Started while retrying = %v, want nil (the engine starts)", err)
	}
	began := time.Now()
	if _, err := o.SignDigest(ctx, [32]byte{1}); !errors.Is(err, payout.ErrSignerUnavailable) || !errors.Is(err, down) || time.Since(began) > 100*time.Millisecond {
		t.Fatalf("signing while retrying = %v after %s, want the unavailability at once", err, time.Since(began))
	}
	if err := o.Health(ctx); !errors.Is(err, down) || o.Ready() || !errors.Is(o.Unreachable(), down) {
		t.Fatalf("health while retrying = %v (ready %v)", err, o.Ready())
	}
	o.Set(evm.KeySigner{Key: key}, nil)
	if _, err := o.SignDigest(ctx, [32]byte{1}); err != nil || o.Unreachable() != nil || !o.Ready() {
		t.Fatalf("after it opened: %v, unreachable %v", err, o.Unreachable())
	}
}

// TestInProcessKeyPassesThroughWrappers: only a key held in this process
// spares the sender its recovery check, and the wrappers say so only once
// such a key is open.
func TestInProcessKeyPassesThroughWrappers(t *testing.T) {
	key, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(key.PublicKey)
	o := NewOpening(addr)
	wrapped := Instrumented{Signer: o, Backend: "keystore", Metrics: NewMetrics(nil)}
	if o.InProcessKey() || wrapped.InProcessKey() {
		t.Fatal("a key still opening counts as in process")
	}
	o.Set(evm.KeySigner{Key: key}, nil)
	if !o.InProcessKey() || !wrapped.InProcessKey() {
		t.Fatal("an open in-process key does not count as in process")
	}
	other := NewOpening(addr)
	other.Set(digestSigner{evm.KeySigner{Key: key}}, nil)
	if other.InProcessKey() || (Instrumented{Signer: other}).InProcessKey() {
		t.Fatal("a signer that does not say it signs in process counts as in process")
	}
}

// digestSigner is a signer that does not say how it signs (a remote one).
type digestSigner struct{ k evm.KeySigner }

func (d digestSigner) SignDigest(ctx context.Context, digest [32]byte) ([]byte, error) {
	return d.k.SignDigest(ctx, digest)
}

func (d digestSigner) Address() common.Address { return d.k.Address() }
