package signer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/signer"
	"github.com/sluicepay/sluice/internal/signer/signertest"
)

// The shares in testdata/mpc are one 2-of-3 group made by MPCKeygen and
// encrypted with mpcTestPassphrase (light scrypt): a keygen finds three
// pairs of 1024-bit safe primes, minutes on 2 cores, too slow for every
// test run. Regenerate with
//
//	SLUICE_MPC_FIXTURES=1 go test -count=1 -run TestMPCWriteFixtures ./internal/signer
const mpcTestPassphrase = "mpc-test-passphrase"

const mpcPreParamsPool = "testdata/mpc-preparams"

func mpcSharePaths() []string {
	return []string{"testdata/mpc/share-1.json", "testdata/mpc/share-2.json", "testdata/mpc/share-3.json"}
}

// TestMPCWriteFixtures regenerates testdata/mpc and the pool of its
// pre-parameters, testdata/mpc-preparams (only when asked).
func TestMPCWriteFixtures(t *testing.T) {
	if os.Getenv("SLUICE_MPC_FIXTURES") == "" {
		t.Skip("set SLUICE_MPC_FIXTURES=1 to regenerate testdata/mpc")
	}
	start := time.Now()
	parties, err := signer.MPCKeygen(context.Background(), signer.MPCKeygenOptions{Parties: 3, Threshold: 2, PreParamsTimeout: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keygen 2-of-3 took %s; address %s", time.Since(start), parties[0].Group().Address.Hex())
	for i, p := range parties {
		path := mpcSharePaths()[i]
		_ = os.Remove(path)
		if err := signer.WriteMPCShare(path, p, mpcTestPassphrase, keystore.LightScryptN); err != nil {
			t.Fatal(err)
		}
	}
	writePreParamsFixtures(t, parties)
}

// writePreParamsFixtures rewrites testdata/mpc-preparams, a pool of the
// fixture shares' pre-parameters.
func writePreParamsFixtures(t *testing.T, parties []*signer.MPCLocalParty) {
	old, _ := signer.MPCPreParamsPool(mpcPreParamsPool)
	for _, path := range old {
		_ = os.Remove(path)
	}
	for _, p := range parties {
		if _, err := signer.WriteMPCPreParams(mpcPreParamsPool, signer.MPCPreParamsOf(p), mpcTestPassphrase, keystore.LightScryptN); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // the names order the pool by time
	}
}

// mpcParties opens the three fixture shares once per test binary.
var mpcParties = sync.OnceValues(func() ([]signer.MPCParty, error) {
	var ps []signer.MPCParty
	for _, path := range mpcSharePaths() {
		p, err := signer.OpenMPCShare(path, mpcTestPassphrase)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
})

func openMPC(t testing.TB, indexes ...int) *signer.MPC {
	t.Helper()
	all, err := mpcParties()
	if err != nil {
		t.Fatal(err)
	}
	var ps []signer.MPCParty
	for _, i := range indexes {
		ps = append(ps, all[i-1])
	}
	m, err := signer.NewMPC(ps)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestConformanceMPC(t *testing.T) {
	if testing.Short() {
		t.Skip("an MPC signing session takes about a second of CPU")
	}
	o := suiteOptions
	o.Signatures = 8 // each is a nine-round session with range proofs
	signertest.Run(t, o, func(t *testing.T) payout.Signer { return openMPC(t, 1, 2, 3) })
}

// TestMPCAnyTwoSign: each pair of shares signs for the one group address,
// and the signature recovers with go-ethereum's SigToPub.
func TestMPCAnyTwoSign(t *testing.T) {
	want := openMPC(t, 1, 2, 3).Address()
	for _, pair := range [][]int{{1, 2}, {1, 3}, {2, 3}} {
		t.Run(fmt.Sprint(pair), func(t *testing.T) {
			m := openMPC(t, pair...)
			if m.Address() != want {
				t.Fatalf("address = %s, want %s", m.Address().Hex(), want.Hex())
			}
			digest := crypto.Keccak256Hash([]byte(fmt.Sprint("pair", pair)))
			sig, err := m.SignDigest(context.Background(), digest)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := crypto.SigToPub(digest[:], sig)
			if err != nil {
				t.Fatal(err)
			}
			if got := crypto.PubkeyToAddress(*pub); got != want {
				t.Fatalf("signature recovers to %s, want %s", got.Hex(), want.Hex())
			}
		})
	}
}

func TestMPCOneShareRefuses(t *testing.T) {
	_, err := signer.OpenMPC(mpcSharePaths()[:1], mpcTestPassphrase)
	if !errors.Is(err, signer.ErrMPCQuorum) || !strings.Contains(err.Error(), "needs 2 of 3") {
		t.Fatalf("OpenMPC(1 share) = %v, want ErrMPCQuorum naming 2 of 3", err)
	}
	all, err := mpcParties()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.NewMPC([]signer.MPCParty{all[0], all[0]}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("NewMPC(share 1 twice) = %v, want an error", err)
	}
}

func TestMPCWrongPassphrase(t *testing.T) {
	_, err := signer.OpenMPCShare(mpcSharePaths()[0], "not-the-passphrase")
	if !errors.Is(err, signer.ErrMPCPassphrase) {
		t.Fatalf("OpenMPCShare(wrong passphrase) = %v, want ErrMPCPassphrase", err)
	}
	if strings.Contains(err.Error(), "not-the-passphrase") {
		t.Fatal("the error shows the passphrase")
	}
}

// TestMPCShareRoundTrip: a share written and read back signs the same.
func TestMPCShareRoundTrip(t *testing.T) {
	all, err := mpcParties()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "share-2.json")
	if err := signer.WriteMPCShare(path, all[1].(*signer.MPCLocalParty), "other", keystore.LightScryptN); err != nil {
		t.Fatal(err)
	}
	if err := signer.WriteMPCShare(path, all[1].(*signer.MPCLocalParty), "other", keystore.LightScryptN); err == nil {
		t.Fatal("WriteMPCShare overwrote an existing share")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("share file mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	m, err := signer.OpenMPC([]string{mpcSharePaths()[0], path}, mpcTestPassphrase)
	if err == nil {
		t.Fatal("opened a share with another share's passphrase")
	}
	p2, err := signer.OpenMPCShare(path, "other")
	if err != nil {
		t.Fatal(err)
	}
	if m, err = signer.NewMPC([]signer.MPCParty{all[0], p2}); err != nil {
		t.Fatal(err)
	}
	digest := crypto.Keccak256Hash([]byte("round trip"))
	sig, err := m.SignDigest(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := crypto.Ecrecover(digest[:], sig)
	if !bytes.Equal(crypto.Keccak256(pub[1:])[12:], m.Address().Bytes()) {
		t.Fatal("signature does not recover to the group address")
	}
}

// flakyParty is a party that is down.
type downParty struct{ signer.MPCParty }

func (downParty) Health(context.Context) error { return errors.New("connection refused") }

// TestMPCOnePartyDown: with one of three down it signs; with two down it
// is unavailable with a clear reason.
func TestMPCOnePartyDown(t *testing.T) {
	all, err := mpcParties()
	if err != nil {
		t.Fatal(err)
	}
	m, err := signer.NewMPC([]signer.MPCParty{downParty{all[0]}, all[1], all[2]})
	if err != nil {
		t.Fatal(err)
	}
	digest := crypto.Keccak256Hash([]byte("one down"))
	if _, err := m.SignDigest(context.Background(), digest); err != nil {
		t.Fatalf("one party down: %v", err)
	}
	m, err = signer.NewMPC([]signer.MPCParty{downParty{all[0]}, downParty{all[1]}, all[2]})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.SignDigest(context.Background(), digest)
	if !errors.Is(err, payout.ErrSignerUnavailable) || !errors.Is(err, signer.ErrMPCQuorum) || !strings.Contains(err.Error(), "1 of 3 healthy, 2 needed") {
		t.Fatalf("two parties down: %v, want unavailable, 1 of 3 healthy", err)
	}
}

// hungParty is a party whose health check never answers (a host that
// drops packets).
type hungParty struct{ signer.MPCParty }

func (hungParty) Health(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestMPCHungPartyDelaysNothing: the quorum asks every party at once, so
// a party that never answers does not hold a session up while two others
// do (asked one after the other, the first would use up the deadline).
func TestMPCHungPartyDelaysNothing(t *testing.T) {
	all, err := mpcParties()
	if err != nil {
		t.Fatal(err)
	}
	m, err := signer.NewMPC([]signer.MPCParty{hungParty{all[0]}, all[1], all[2]})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := m.SignDigest(ctx, crypto.Keccak256Hash([]byte("hung"))); err != nil {
		t.Fatalf("party 1 hung: %v", err)
	}
}

// BenchmarkMPCSign measures one 2-of-3 signing session (two parties in
// this process, messages routed in memory, pre-parameters from the
// shares); it reports the median.
func BenchmarkMPCSign(b *testing.B) {
	benchSigner(b, openMPC(b, 1, 2, 3))
}

// TestMPCKeygen runs the key generation protocol with pre-parameters
// from a pool (testdata/mpc-preparams, the fixtures'): a new group, whose
// shares sign for its address.
func TestMPCKeygen(t *testing.T) {
	if testing.Short() {
		t.Skip("a keygen takes about 30 s even without the safe-prime search")
	}
	all, err := mpcParties()
	if err != nil {
		t.Fatal(err)
	}
	paths, err := signer.MPCPreParamsPool(mpcPreParamsPool)
	if err != nil {
		t.Fatal(err)
	}
	var pool []*signer.MPCPreParams
	for _, path := range paths {
		pp, err := signer.OpenMPCPreParams(path, mpcTestPassphrase)
		if err != nil {
			t.Fatal(err)
		}
		pool = append(pool, pp)
	}
	start := time.Now()
	parties, err := signer.MPCKeygen(context.Background(), signer.MPCKeygenOptions{Parties: 3, Threshold: 2, PreParams: pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keygen without the safe-prime search: %s", time.Since(start))
	g := parties[0].Group()
	if g.Address == all[0].Group().Address || g.Parties != 3 || g.Threshold != 2 {
		t.Fatalf("group = %+v, want a new 2-of-3 group", g)
	}
	for i, p := range parties {
		if p.Index() != i+1 || p.Group().Address != g.Address {
			t.Fatalf("party %d: index %d, address %s", i+1, p.Index(), p.Group().Address.Hex())
		}
	}
	m, err := signer.NewMPC([]signer.MPCParty{parties[2], parties[0]})
	if err != nil {
		t.Fatal(err)
	}
	digest := crypto.Keccak256Hash([]byte("new group"))
	sig, err := m.SignDigest(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	if pub, err := crypto.SigToPub(digest[:], sig); err != nil || crypto.PubkeyToAddress(*pub) != g.Address {
		t.Fatalf("signature does not recover to the new group's address (%v)", err)
	}
}

// TestMPCPreParamsPool: pre-parameters written to a pool read back (mode
// 0600, never with another passphrase), and a keygen needs one per party.
func TestMPCPreParamsPool(t *testing.T) {
	paths, err := signer.MPCPreParamsPool(mpcPreParamsPool)
	if err != nil || len(paths) != 3 {
		t.Fatalf("fixture pool: %v %v", paths, err)
	}
	pp, err := signer.OpenMPCPreParams(paths[0], mpcTestPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.OpenMPCPreParams(paths[0], "not-the-passphrase"); !errors.Is(err, signer.ErrMPCPassphrase) || strings.Contains(err.Error(), "not-the") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	dir := t.TempDir()
	path, err := signer.WriteMPCPreParams(dir, pp, "other", keystore.LightScryptN)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pre-parameters file mode = %v (%v), want 0600", fi, err)
	}
	if got, _ := signer.MPCPreParamsPool(dir); len(got) != 1 || got[0] != path {
		t.Fatalf("pool %s = %v, want [%s]", dir, got, path)
	}
	if _, err := signer.OpenMPCPreParams(path, "other"); err != nil {
		t.Fatal(err)
	}
	_, err = signer.MPCKeygen(context.Background(), signer.MPCKeygenOptions{Parties: 3, Threshold: 2, PreParams: []*signer.MPCPreParams{pp}})
	if err == nil || !strings.Contains(err.Error(), "1 pre-parameters given for 3 parties") {
		t.Fatalf("keygen with one pre-parameters for three parties: %v", err)
	}
}
