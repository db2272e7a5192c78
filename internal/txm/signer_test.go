package txm_test

import (
	"context"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/signer"
	"github.com/sluicepay/sluice/internal/txm"
)

func TestSignerUnavailableWaitsAndResumes(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// The wallet signs through a real remote signer on loopback TLS.
		// While it is down, payouts wait queued with signer_unavailable and
		// use no nonce; once it is back they are paid with the next nonces.
		payees := []common.Address{common.HexToAddress("0x00000000000000000000000000000000000f0001"),
			common.HexToAddress("0x00000000000000000000000000000000000f0002")}
		srv, err := signer.NewServer(signer.ServerConfig{Signer: signer.FromKey(e.key), Token: "txm-test-token-0123456789",
			Limits: signer.Limits{ChainIDs: []uint64{e.dom.ChainID}, Allow: payees,
				Assets:      map[string]signer.AssetLimit{"native": {PerTx: "1000000000000000000", Daily: "10000000000000000000"}},
				MaxFeePerTx: "100000000000000000"}})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		start := func(ln net.Listener) *httptest.Server {
			hs := httptest.NewUnstartedServer(srv)
			hs.Listener.Close()
			hs.Listener = ln
			hs.StartTLS()
			t.Cleanup(hs.Close)
			return hs
		}
		hs := start(ln)
		remote, err := signer.DialRemote(ctx, signer.RemoteConfig{URL: hs.URL, Token: "txm-test-token-0123456789",
			TLS: hs.Client().Transport.(*http.Transport).TLSClientConfig, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		s := e.senderWith(txm.Config{Owner: "a", Signer: remote})
		s.Start(ctx)
		defer s.Stop()

		first := e.create("ETH", payees[0], big.NewInt(1000))
		e.mineUntil([]string{first.ID}, 30*time.Second)
		last, _, err := e.store.MaxNonce(ctx, e.dom.ChainID, e.dom.HotWallet)
		if err != nil {
			t.Fatal(err)
		}

		hs.Close() // the signer goes down
		waiting := []*payout.Payout{e.create("ETH", payees[0], big.NewInt(2000)), e.create("ETH", payees[1], big.NewInt(3000))}
		s.Wake()
		for _, p := range waiting {
			deadline := time.Now().Add(20 * time.Second)
			for {
				got, err := e.store.GetPayout(ctx, p.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Reason == payout.ReasonSignerUnavailable {
					if got.Status != payout.StatusQueued || got.ReasonDetail == "" {
						t.Errorf("payout %s: %s %q", p.ID, got.Status, got.ReasonDetail)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("payout %s is %s (%q), not waiting with %s", p.ID, got.Status, got.Reason, payout.ReasonSignerUnavailable)
				}
				e.mine(1)
			}
		}
		e.mine(3) // more rounds while the signer is down
		if max, _, err := e.store.MaxNonce(ctx, e.dom.ChainID, e.dom.HotWallet); err != nil || max != last {
			t.Fatalf("highest nonce while the signer is down = %d, %v; want %d (none allocated)", max, err, last)
		}
		for _, p := range waiting {
			if n := countOf(e.eventTypes(p.ID), payout.EventWaiting); n != 1 {
				t.Errorf("payout %s: %d payout.waiting events, want 1", p.ID, n)
			}
		}

		ln2, err := net.Listen("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		start(ln2) // the signer is back, at the same address
		got := e.mineUntil([]string{waiting[0].ID, waiting[1].ID}, 40*time.Second)
		var nonces []uint64
		for _, p := range got {
			if p.Status != payout.StatusCompleted || p.Reason != "" {
				t.Errorf("payout %s: %s %q after the signer came back", p.ID, p.Status, p.Reason)
			}
			as, err := e.store.ListAttempts(ctx, p.ID)
			if err != nil || len(as) != 1 {
				t.Fatalf("payout %s: %d attempts, %v; want 1", p.ID, len(as), err)
			}
			nonces = append(nonces, as[0].Nonce)
		}
		slices.Sort(nonces)
		if want := []uint64{last + 1, last + 2}; !slices.Equal(nonces, want) {
			t.Errorf("nonces after the signer came back = %v, want %v (none burned)", nonces, want)
		}
	})
}

// restartableSigner is a real remote signer on loopback TLS that can be
// stopped and started again at the same address.
type restartableSigner struct {
	t    *testing.T
	srv  *signer.Server
	addr string
	hs   *httptest.Server
}

func newRestartableSigner(t *testing.T, e *env, payees ...common.Address) (*restartableSigner, *signer.Remote) {
	t.Helper()
	srv, err := signer.NewServer(signer.ServerConfig{Signer: signer.FromKey(e.key), Token: "txm-test-token-0123456789",
		Limits: signer.Limits{ChainIDs: []uint64{e.dom.ChainID}, Allow: payees,
			Assets:      map[string]signer.AssetLimit{"native": {PerTx: "1000000000000000000", Daily: "10000000000000000000"}},
			MaxFeePerTx: "100000000000000000"}})
	if err != nil {
		t.Fatal(err)
	}
	rs := &restartableSigner{t: t, srv: srv, addr: "127.0.0.1:0"}
	rs.start()
	remote, err := signer.DialRemote(context.Background(), signer.RemoteConfig{URL: rs.hs.URL, Token: "txm-test-token-0123456789",
		TLS: rs.hs.Client().Transport.(*http.Transport).TLSClientConfig, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return rs, remote
}

func (rs *restartableSigner) start() {
	ln, err := net.Listen("tcp", rs.addr)
	if err != nil {
		rs.t.Fatal(err)
	}
	rs.addr = ln.Addr().String()
	rs.hs = httptest.NewUnstartedServer(rs.srv)
	rs.hs.Listener.Close()
	rs.hs.Listener = ln
	rs.hs.StartTLS()
	rs.t.Cleanup(rs.hs.Close)
}

func (rs *restartableSigner) stop() { rs.hs.Close() }

func TestFeeBumpWaitsForSigner(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// The node drops the first transaction at each nonce, so a fee bump
		// falls due; the signer is down by then. The bump waits (the sender
		// loop does not fail and restart) and is signed once it is back.
		to := common.HexToAddress("0x00000000000000000000000000000000000f0003")
		rs, remote := newRestartableSigner(t, e, to)
		node := e.droppingNode(firstAtEachNonce())
		reg := prometheus.NewRegistry()
		s := e.senderWith(txm.Config{Owner: "a", Client: node, Signer: remote, Metrics: txm.NewMetrics(reg)})
		p := e.create("ETH", to, big.NewInt(1e15))
		s.Start(ctx)
		defer s.Stop()
		e.waitStatus(p.ID, payout.StatusSubmitted, 20*time.Second)
		rs.stop()
		e.mine(8) // past the standard wait of 3 blocks, twice over
		if as := e.attemptsOf(p.ID); len(as) != 1 {
			t.Fatalf("%d attempts with the signer down, want the first only", len(as))
		}
		if n := senderErrors(t, reg); n != 0 {
			t.Errorf("%v sender loop errors while the signer was down, want 0", n)
		}
		rs.start()
		got := e.mineUntil([]string{p.ID}, 30*time.Second)[p.ID]
		as := e.attemptsOf(p.ID)
		if got.Status != payout.StatusCompleted || len(as) != 2 || as[1].Nonce != as[0].Nonce {
			t.Fatalf("payout %s with %d attempts, want completed by a replacement at the same nonce", got.Status, len(as))
		}
	})
}

func senderErrors(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	return gathered(t, reg, "sluice_sender_errors_total", nil)
}
