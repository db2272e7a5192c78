// Package signertest is the conformance suite every signer backend passes:
// signatures recover to the signer's address, S is always low, V is 0 or
// 1, a canceled context is honoured, concurrent use is safe and the health
// check answers.
package signertest

import (
	"context"
	"errors"
	"math/big"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/payout"
)

// Options describe the transactions the suite signs: a remote signer only
// signs what its limits allow.
type Options struct {
	ChainID *big.Int
	// To is the destination of every transaction (on the allow-list).
	To common.Address
	// MaxValue bounds each transaction's value in wei (under the cap).
	MaxValue int64
	// Signatures is how many transactions the low-S check signs
	// (default 64).
	Signatures int
}

type txSigner interface {
	SignTransaction(ctx context.Context, chainID *big.Int, unsigned []byte, digest [32]byte) ([]byte, error)
}

type checker interface {
	Health(ctx context.Context) error
}

// Run runs the suite against the signer open returns (one per subtest).
func Run(t *testing.T, o Options, open func(t *testing.T) payout.Signer) {
	t.Helper()
	if o.Signatures == 0 {
		o.Signatures = 64
	}
	if o.MaxValue == 0 {
		o.MaxValue = 1_000_000
	}
	t.Run("SignsForItsAddress", func(t *testing.T) {
		s := open(t)
		if s.Address() == (common.Address{}) {
			t.Fatal("Address() is zero")
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range o.Signatures {
			tx := o.tx(rng, uint64(i), i%7 == 0)
			sig := Sign(t, context.Background(), s, o.ChainID, tx)
			Check(t, s.Address(), o.ChainID, tx, sig) // low S for every one of them
		}
	})
	t.Run("HonoursCanceledContext", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		tx := o.tx(rand.New(rand.NewPCG(3, 4)), 20_000, false)
		_, err := sign(ctx, s, o.ChainID, tx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("sign with a canceled context: err = %v, want context.Canceled", err)
		}
	})
	t.Run("ConcurrentUse", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 9))
				for i := range 8 {
					tx := o.tx(rng, uint64(10_000+g*100+i), false) // nonces no other subtest uses
					sig, err := sign(context.Background(), s, o.ChainID, tx)
					if err == nil {
						err = verify(s.Address(), o.ChainID, tx, sig)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	t.Run("Health", func(t *testing.T) {
		s := open(t)
		c, ok := s.(checker)
		if !ok {
			t.Fatalf("%T has no Health method", s)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Health(ctx); err != nil {
			t.Fatalf("Health() = %v", err)
		}
	})
}

// tx builds a random transfer; legacy picks a legacy (EIP-155) one.
func (o Options) tx(rng *rand.Rand, nonce uint64, legacy bool) *types.Transaction {
	to := o.To
	value := big.NewInt(rng.Int64N(o.MaxValue) + 1)
	if legacy {
		return types.NewTx(&types.LegacyTx{Nonce: nonce, GasPrice: big.NewInt(rng.Int64N(1e10) + 1), Gas: 21000, To: &to, Value: value})
	}
	return types.NewTx(&types.DynamicFeeTx{ChainID: o.ChainID, Nonce: nonce, GasTipCap: big.NewInt(rng.Int64N(1e9) + 1),
		GasFeeCap: big.NewInt(rng.Int64N(1e10) + 1e9), Gas: 21000, To: &to, Value: value})
}

// Sign signs tx with s (through SignTransaction when s has it) and fails
// the test on error.
func Sign(t testing.TB, ctx context.Context, s payout.Signer, chainID *big.Int, tx *types.Transaction) []byte {
	t.Helper()
	sig, err := sign(ctx, s, chainID, tx)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return sig
}

func sign(ctx context.Context, s payout.Signer, chainID *big.Int, tx *types.Transaction) ([]byte, error) {
	digest := types.LatestSignerForChainID(chainID).Hash(tx)
	if ts, ok := s.(txSigner); ok {
		unsigned, err := tx.MarshalBinary()
		if err != nil {
			return nil, err
		}
		return ts.SignTransaction(ctx, chainID, unsigned, digest)
	}
	return s.SignDigest(ctx, digest)
}

// Check fails the test unless sig is a 65-byte low-S signature of tx with
// V in {0, 1} that recovers to addr.
func Check(t testing.TB, addr common.Address, chainID *big.Int, tx *types.Transaction, sig []byte) {
	t.Helper()
	if err := verify(addr, chainID, tx, sig); err != nil {
		t.Fatal(err)
	}
}

func verify(addr common.Address, chainID *big.Int, tx *types.Transaction, sig []byte) error {
	if len(sig) != 65 {
		return errors.New("signature is not 65 bytes")
	}
	if sig[64] > 1 {
		return errors.New("V is not 0 or 1")
	}
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64])
	if !crypto.ValidateSignatureValues(sig[64], r, s, true) {
		return errors.New("signature values invalid or S is high")
	}
	signer := types.LatestSignerForChainID(chainID)
	digest := signer.Hash(tx)
	pub, err := crypto.SigToPub(digest[:], sig)
	if err != nil {
		return err
	}
	if got := crypto.PubkeyToAddress(*pub); got != addr {
		return errors.New("signature recovers to " + got.Hex() + ", not " + addr.Hex())
	}
	signed, err := tx.WithSignature(signer, sig)
	if err != nil {
		return err
	}
	if from, err := types.Sender(signer, signed); err != nil || from != addr {
		return errors.New("signed transaction's sender is not the signer")
	}
	return nil
}
