package signer_test

import (
	"context"
	"math/big"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/signer"
)

// BenchmarkKeystoreSign measures keystore signatures per second on every
// core (b.RunParallel).
func BenchmarkKeystoreSign(b *testing.B) {
	ks := signer.FromKey(newKey(b))
	var n atomic.Uint64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		digest := crypto.Keccak256Hash(big.NewInt(int64(n.Add(1))).Bytes())
		for pb.Next() {
			digest[0]++
			if _, err := ks.SignDigest(context.Background(), digest); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sigs/s")
}

// BenchmarkRemoteRoundTrip measures one sluice_signTransaction round trip
// to a remote signer on loopback TLS (keep-alive), with the server's
// checks; it reports the median.
func BenchmarkRemoteRoundTrip(b *testing.B) {
	limits := testLimits()
	limits.Assets["native"] = signer.AssetLimit{PerTx: "1000000", Daily: "1000000000000000"}
	rs := startRemote(b, newKey(b), limits, nil)
	r := dialRemote(b, rs, testToken)
	benchSigner(b, r)
}

// BenchmarkRemoteRoundTripWithState is BenchmarkRemoteRoundTrip with the
// limits' state file (`sluice signer serve`'s default): each signature
// first appends and syncs one line.
func BenchmarkRemoteRoundTripWithState(b *testing.B) {
	limits := testLimits()
	limits.Assets["native"] = signer.AssetLimit{PerTx: "1000000", Daily: "1000000000000000"}
	rs := startRemoteServer(b, signer.ServerConfig{Signer: signer.FromKey(newKey(b)), Token: testToken, Limits: limits,
		StateFile: filepath.Join(b.TempDir(), "key.json.limits-state")}, nil)
	r := dialRemote(b, rs, testToken)
	benchSigner(b, r)
}

// BenchmarkPKCS11Sign measures one signature by a secp256k1 key in
// SoftHSM2 (CKM_ECDSA, then low-S and the recovery id); it reports the
// median.
func BenchmarkPKCS11Sign(b *testing.B) {
	p, err := signer.OpenPKCS11(softHSM(b))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	benchSigner(b, p)
}

func benchSigner(b *testing.B, s payout.Signer) {
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		tx := nativeTx(uint64(i), payee, 1)
		unsigned, _ := tx.MarshalBinary()
		digest := types.LatestSignerForChainID(chain).Hash(tx)
		start := time.Now()
		if _, err := signer.SignTransaction(context.Background(), s, chain, unsigned, digest); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(durations[len(durations)*99/100].Microseconds())/1000, "p99-ms")
}
