package signer_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/signer"
	"github.com/sluicepay/sluice/internal/signer/signertest"
)

func TestFailoverStopsAndResumes(t *testing.T) {
	key := newKey(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addrA := ln.Addr().String()
	a, b := startRemote(t, key, testLimits(), ln), startRemote(t, key, testLimits(), nil)
	remoteA := dialRemote(t, a, testToken)
	retry := 400 * time.Millisecond
	f, err := signer.NewFailover([]payout.Signer{remoteA, dialRemote(t, b, testToken)}, []string{"signers[0]", "signers[1]"}, retry, nil)
	if err != nil {
		t.Fatal(err)
	}
	nonce := uint64(0)
	sign := func() error {
		nonce++
		tx := nativeTx(nonce, payee, 7)
		sig, err := signWithSigner(f, tx)
		if err == nil {
			signertest.Check(t, key2addr(f), chain, tx, sig)
		}
		return err
	}
	counts := func(wantA, wantB int64) {
		t.Helper()
		if a.signed.Load() != wantA || b.signed.Load() != wantB {
			t.Fatalf("signatures by A, B = %d, %d; want %d, %d", a.signed.Load(), b.signed.Load(), wantA, wantB)
		}
	}
	if err := sign(); err != nil {
		t.Fatal(err)
	}
	counts(1, 0) // the primary first

	a.Close() // the primary dies mid-test
	for range 3 {
		if err := sign(); err != nil {
			t.Fatalf("with the primary down: %v", err)
		}
	}
	counts(1, 3)
	if err := f.Health(context.Background()); err != nil {
		t.Errorf("Health with one member up = %v", err)
	}

	// The primary comes back on the same address: it is asked again once
	// its retry time has passed, not before.
	ln2, err := net.Listen("tcp", addrA)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addrA, err)
	}
	a2 := startRemote(t, key, testLimits(), ln2)
	// httptest serves one fixed certificate: the client trusts a2 as it trusted a.
	if err := sign(); err != nil { // the Health probe above marked A down again just now
		t.Fatal(err)
	}
	if a2.signed.Load() != 0 {
		t.Errorf("the primary was asked before its retry time")
	}
	time.Sleep(retry)
	if err := sign(); err != nil {
		t.Fatal(err)
	}
	if a2.signed.Load() != 1 {
		t.Errorf("the primary was not used again after its retry time (signed %d)", a2.signed.Load())
	}

	// A refusal is final: the backup, with its own counters, is not asked.
	before := b.signed.Load()
	_, err = signWithSigner(f, nativeTx(99, common.HexToAddress("0x00000000000000000000000000000000000000bb"), 1))
	if !errors.Is(err, signer.ErrRefused) || b.signed.Load() != before {
		t.Errorf("refusal: err = %v, backup signed %d more", err, b.signed.Load()-before)
	}

	// Every member down: unavailable, naming each.
	a2.Close()
	b.Close()
	err = sign()
	if !errors.Is(err, payout.ErrSignerUnavailable) || !strings.Contains(err.Error(), "signers[0]") || !strings.Contains(err.Error(), "signers[1]") {
		t.Errorf("all down: err = %v", err)
	}
	if err := f.Health(context.Background()); !errors.Is(err, payout.ErrSignerUnavailable) {
		t.Errorf("Health with all down = %v", err)
	}
}

func TestFailoverRefusesMixedKeys(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	_, err := signer.NewFailover([]payout.Signer{signer.FromKey(k1), signer.FromKey(k1), signer.FromKey(k2)},
		[]string{"hot_wallets[0].signer.signers[0]", "hot_wallets[0].signer.signers[1]", "hot_wallets[0].signer.signers[2]"}, 0, nil)
	if err == nil || !strings.Contains(err.Error(), "hot_wallets[0].signer.signers[2]: holds the key of") {
		t.Errorf("err = %v, want the third member named", err)
	}
	if _, err := signer.NewFailover(nil, nil, 0, nil); err == nil {
		t.Error("an empty group was accepted")
	}
}

func key2addr(s payout.Signer) common.Address { return s.Address() }

func signWithSigner(s payout.Signer, tx *types.Transaction) ([]byte, error) {
	unsigned, _ := tx.MarshalBinary()
	return signer.SignTransaction(context.Background(), s, chain, unsigned, types.LatestSignerForChainID(chain).Hash(tx))
}
