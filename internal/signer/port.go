package signer

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/payout"
)

// TxSigner is a signer that must see the transaction it signs: a remote
// signer decodes it, checks it against its own limits and that digest is
// its signing hash, so it never signs blind. unsigned is the transaction's
// canonical encoding (types.Transaction.MarshalBinary, no signature) and
// digest its signing hash for chainID. internal/evm prefers this method
// over SignDigest whenever a signer has it.
type TxSigner interface {
	SignTransaction(ctx context.Context, chainID *big.Int, unsigned []byte, digest [32]byte) ([]byte, error)
}

// Checker is a signer that can say whether it can sign now, without
// signing anything (the engine's readiness check and the failover group
// probe it).
type Checker interface {
	Health(ctx context.Context) error
}

// ErrRefused means the signer answered and refused this transaction (a
// remote signer's limits). It is not a fault of the signer: a failover
// group does not ask the next member, which would hold other counters.
var ErrRefused = errors.New("signer refused the transaction")

// ErrNeedsTransaction is returned by signers that never sign a bare digest.
var ErrNeedsTransaction = errors.New("this signer signs transactions only, never a bare digest")

// SignTransaction signs through s's SignTransaction when it has one, else
// signs the digest.
func SignTransaction(ctx context.Context, s payout.Signer, chainID *big.Int, unsigned []byte, digest [32]byte) ([]byte, error) {
	if ts, ok := s.(TxSigner); ok {
		return ts.SignTransaction(ctx, chainID, unsigned, digest)
	}
	return s.SignDigest(ctx, digest)
}

// Health asks s whether it can sign; a signer with no check is healthy.
func Health(ctx context.Context, s payout.Signer) error {
	if c, ok := s.(Checker); ok {
		return c.Health(ctx)
	}
	return ctx.Err()
}

// unavailable wraps a backend's failure so that the sender holds the
// payout (payout.ErrSignerUnavailable) instead of failing its loop.
func unavailable(backend string, err error) error {
	if err == nil || errors.Is(err, payout.ErrSignerUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", payout.ErrSignerUnavailable, backend, err)
}

// secpN and secpHalfN are the order of secp256k1 and its half: a
// signature's S above half is replaced by N-S (both verify; Ethereum
// accepts only the low one).
var (
	secpN     = crypto.S256().Params().N
	secpHalfN = new(big.Int).Rsh(secpN, 1)
)
