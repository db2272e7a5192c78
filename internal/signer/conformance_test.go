package signer_test

import (
	"math/big"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/signer"
	"github.com/sluicepay/sluice/internal/signer/signertest"
)

var suiteOptions = signertest.Options{ChainID: big.NewInt(1337), To: payee, MaxValue: 1000}

func TestConformanceKeystore(t *testing.T) {
	key := newKey(t)
	signertest.Run(t, suiteOptions, func(t *testing.T) payout.Signer { return signer.FromKey(key) })
}

func TestConformanceRemote(t *testing.T) {
	rs := startRemote(t, newKey(t), testLimits(), nil)
	signertest.Run(t, suiteOptions, func(t *testing.T) payout.Signer { return dialRemote(t, rs, testToken) })
}

func TestConformancePKCS11(t *testing.T) {
	cfg := softHSM(t)
	p, err := signer.OpenPKCS11(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	// One module instance per process: the subtests share it.
	signertest.Run(t, suiteOptions, func(t *testing.T) payout.Signer { return p })
}

func TestConformanceFailover(t *testing.T) {
	key := newKey(t)
	rs := startRemote(t, key, testLimits(), nil)
	signertest.Run(t, suiteOptions, func(t *testing.T) payout.Signer {
		f, err := signer.NewFailover([]payout.Signer{dialRemote(t, rs, testToken), signer.FromKey(key)}, nil, time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
}

func TestConformanceInstrumented(t *testing.T) {
	rs := startRemote(t, newKey(t), testLimits(), nil)
	m := signer.NewMetrics(prometheus.NewRegistry())
	signertest.Run(t, suiteOptions, func(t *testing.T) payout.Signer {
		return signer.Instrumented{Signer: dialRemote(t, rs, testToken), Backend: "remote", Metrics: m}
	})
}

// TestConformanceOpening: a remote signer reached through an Opening, as
// the engine holds every signer (waiting for a key to open is tested in
// opening_test.go).
func TestConformanceOpening(t *testing.T) {
	key := newKey(t)
	rs := startRemote(t, key, testLimits(), nil)
	signertest.Run(t, suiteOptions, func(t *testing.T) payout.Signer {
		remote := dialRemote(t, rs, testToken)
		o := signer.NewOpening(remote.Address())
		o.Set(remote, nil)
		return o
	})
}
