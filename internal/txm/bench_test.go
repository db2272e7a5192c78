package txm_test

import (
	"context"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// BenchmarkSenderDrain measures how fast one sender takes 5,000 queued
// payouts (half ETH, half SUSD, to new addresses) to completed on the dev
// chain with 1 s blocks and 2 confirmations, in one process.
func BenchmarkSenderDrain(b *testing.B) {
	const n = 5000
	for b.Loop() {
		e := newBenchEnv(b)
		ids := make([]string, n)
		for i := range n {
			to := common.BigToAddress(big.NewInt(int64(0x900000 + i)))
			if i%2 == 0 {
				ids[i] = e.create("ETH", to, big.NewInt(1e12)).ID
			} else {
				ids[i] = e.create("SUSD", to, big.NewInt(1_000_000)).ID
			}
		}
		s := e.sender("bench")
		start := time.Now()
		s.Start(context.Background())
		for {
			c, err := e.store.CountByStatus(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if c[payout.StatusCompleted] == n {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "completed/s")
		s.Stop()
	}
}

func newBenchEnv(b *testing.B) *env {
	key, _ := crypto.GenerateKey()
	return newEnvWith(b, key, "sqlite:"+filepath.Join(b.TempDir(), "sluice.db"), sandbox.Config{DataDir: b.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key, BlockTime: time.Second})
}
