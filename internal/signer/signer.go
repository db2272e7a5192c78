// Package signer holds the backends that sign payout transactions for a hot
// wallet. Each implements payout.Signer: it signs a 32-byte digest and
// returns [R || S || V] with a low S; the engine recovers the sender from
// every signature before anything is stored.
package signer

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/payout"
)

// Keystore signs with a key decrypted from a go-ethereum keystore v3 file.
// The key lives encrypted at rest and only in memory once opened.
type Keystore struct {
	key  *ecdsa.PrivateKey
	addr common.Address
}

var _ payout.Signer = (*Keystore)(nil)

// OpenKeystore decrypts a keystore v3 file. The error never contains the
// passphrase.
func OpenKeystore(path, passphrase string) (*Keystore, error) {
	blob, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keystore: %w", err)
	}
	k, err := keystore.DecryptKey(blob, passphrase)
	if err != nil {
		if errors.Is(err, keystore.ErrDecrypt) {
			return nil, fmt.Errorf("keystore %s: wrong passphrase", path)
		}
		return nil, fmt.Errorf("keystore %s: %w", path, err)
	}
	return &Keystore{key: k.PrivateKey, addr: k.Address}, nil
}

// FromKey signs with a key already in memory (tests, and the remote
// signer server once it has decrypted its keystore).
func FromKey(key *ecdsa.PrivateKey) *Keystore {
	return &Keystore{key: key, addr: crypto.PubkeyToAddress(key.PublicKey)}
}

// Passphrase says what kind of secret encrypts a keystore, and so how hard
// scrypt stretches it.
type Passphrase int

const (
	// ChosenPassphrase is one a person chose: scrypt with go-ethereum's
	// standard parameters (N=2^18, 256 MiB, about a CPU second to open),
	// so that each guess costs an attacker as much.
	ChosenPassphrase Passphrase = iota
	// RandomPassphrase is itself a random secret of at least 128 bits, such
	// as the sandbox's, generated and kept in a file beside the keys: no
	// attacker can enumerate it, so stretching adds nothing, and scrypt
	// runs with go-ethereum's light parameters (N=2^12, P=6, 4 MiB,
	// milliseconds to open). A restarted engine then sends within its
	// first second instead of after a CPU second of scrypt per key.
	RandomPassphrase
)

// scrypt is the scrypt cost (N, P) for this kind of passphrase.
func (p Passphrase) scrypt() (n, par int) {
	if p == RandomPassphrase {
		return keystore.LightScryptN, keystore.LightScryptP
	}
	return keystore.StandardScryptN, keystore.StandardScryptP
}

// CreateKeystore generates a new key and writes it encrypted (scrypt with
// the cost kind calls for) to a new file in dir with mode 0600.
func CreateKeystore(dir, passphrase string, kind Passphrase) (string, *Keystore, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return "", nil, fmt.Errorf("generate key: %w", err)
	}
	return WriteKeystore(dir, key, passphrase, kind)
}

// WriteKeystore encrypts an existing key into a new keystore file in dir.
func WriteKeystore(dir string, key *ecdsa.PrivateKey, passphrase string, kind Passphrase) (string, *Keystore, error) {
	addr := crypto.PubkeyToAddress(key.PublicKey)
	k := &keystore.Key{Address: addr, PrivateKey: key}
	var id [16]byte
	_, _ = rand.Read(id[:])
	copy(k.Id[:], id[:])
	n, par := kind.scrypt()
	blob, err := keystore.EncryptKey(k, passphrase, n, par)
	if err != nil {
		return "", nil, fmt.Errorf("encrypt key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("create keystore dir: %w", err)
	}
	name := fmt.Sprintf("UTC--%s--%s", time.Now().UTC().Format("2006-01-02T15-04-05.000000000Z"), hex.EncodeToString(addr[:]))
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, blob, 0o600); err != nil {
		return "", nil, fmt.Errorf("write keystore: %w", err)
	}
	return path, &Keystore{key: key, addr: addr}, nil
}

// Address is the wallet's account.
func (k *Keystore) Address() common.Address { return k.addr }

// SignDigest signs with secp256k1 (low S, V in {0, 1}).
func (k *Keystore) SignDigest(ctx context.Context, digest [32]byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return crypto.Sign(digest[:], k.key)
}

// InProcessKey reports true: the key is in memory and its address derived
// from it, so the sender need not recover each signature to check it.
func (k *Keystore) InProcessKey() bool { return true }

// inProcessKey is a signer that signs in this process with its own key
// (evm.InProcessKey); wrappers pass the answer on.
type inProcessKey interface{ InProcessKey() bool }

// signsInProcess asks sg whether it signs in this process with its key.
func signsInProcess(sg payout.Signer) bool {
	k, ok := sg.(inProcessKey)
	return ok && k.InProcessKey()
}

// Health reports nil: the key is in memory.
func (k *Keystore) Health(ctx context.Context) error { return ctx.Err() }

// PrivateKey exposes the key to the sandbox, which deploys its test token
// with it. Nothing else should need it.
func (k *Keystore) PrivateKey() *ecdsa.PrivateKey { return k.key }

// Metrics counts signatures by backend and outcome.
type Metrics struct {
	signatures *prometheus.CounterVec
	latency    *prometheus.HistogramVec
}

// NewMetrics registers signer metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		signatures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_signer_signatures_total", Help: "Signatures by signer backend and outcome.",
		}, []string{"backend", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_signer_duration_seconds", Help: "Signing latency by backend.",
			Buckets: prometheus.ExponentialBuckets(0.00002, 2, 16),
		}, []string{"backend"}),
	}
	if reg != nil {
		reg.MustRegister(m.signatures, m.latency)
	}
	return m
}

// Instrumented wraps a signer so that every signature is counted and timed.
type Instrumented struct {
	payout.Signer
	Backend string
	Metrics *Metrics
}

// SignDigest signs through the wrapped signer and records the outcome.
func (s Instrumented) SignDigest(ctx context.Context, digest [32]byte) ([]byte, error) {
	start := time.Now()
	sig, err := s.Signer.SignDigest(ctx, digest)
	s.record(start, err)
	return sig, err
}

// SignTransaction signs through the wrapped signer (with the transaction
// when it takes one) and records the outcome.
func (s Instrumented) SignTransaction(ctx context.Context, chainID *big.Int, unsigned []byte, digest [32]byte) ([]byte, error) {
	start := time.Now()
	sig, err := SignTransaction(ctx, s.Signer, chainID, unsigned, digest)
	s.record(start, err)
	return sig, err
}

// InProcessKey passes the wrapped signer's answer on.
func (s Instrumented) InProcessKey() bool { return signsInProcess(s.Signer) }

// Health asks the wrapped signer.
func (s Instrumented) Health(ctx context.Context) error { return Health(ctx, s.Signer) }

// record counts a signature by outcome: ok, refused (the signer said no),
// unavailable (it could not sign), canceled, or error.
func (s Instrumented) record(start time.Time, err error) {
	s.Metrics.latency.WithLabelValues(s.Backend).Observe(time.Since(start).Seconds())
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, ErrRefused):
		outcome = "refused"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		outcome = "canceled"
	case errors.Is(err, payout.ErrSignerUnavailable):
		outcome = "unavailable"
	default:
		outcome = "error"
	}
	s.Metrics.signatures.WithLabelValues(s.Backend, outcome).Inc()
}
