package signer_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/signer"
	"github.com/sluicepay/sluice/internal/signer/signertest"
)

// testCA issues certificates for one test's engine and parties.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue makes a certificate for cn, valid on 127.0.0.1, for both ends of
// mutual TLS.
func (ca *testCA) issue(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// clientTLS is a client config presenting cert and trusting the CA.
func (ca *testCA) clientTLS(cert *tls.Certificate) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: ca.pool}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// mpcNet is three party servers on loopback mTLS holding the fixture
// shares.
type mpcNet struct {
	ca    *testCA
	urls  []string
	stops []func()
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startMPCNet starts the three parties; limits, when set, apply to every
// party.
func startMPCNet(t testing.TB, limits *signer.Limits) *mpcNet {
	t.Helper()
	return startMPCNetWith(t, func(c *signer.MPCPartyConfig) { c.Limits = limits }, nil)
}

// startMPCNetWith starts the parties with their configuration changed by
// edit and wrap (when set) around each party's handler.
func startMPCNetWith(t testing.TB, edit func(*signer.MPCPartyConfig), wrap func(index int, h http.Handler) http.Handler) *mpcNet {
	t.Helper()
	all, err := mpcParties()
	if err != nil {
		t.Fatal(err)
	}
	n := &mpcNet{ca: newTestCA(t), logs: &syncBuffer{}}
	for i, p := range all {
		cfg := signer.MPCPartyConfig{Party: p.(*signer.MPCLocalParty), Cert: n.ca.issue(t, signer.MPCPartyCommonName(i+1)),
			ClientCAs: n.ca.pool, Logger: slog.New(slog.NewTextHandler(n.logs, nil))}
		if edit != nil {
			edit(&cfg)
		}
		srv, err := signer.NewMPCPartyServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var h http.Handler = srv
		if wrap != nil {
			h = wrap(i+1, srv)
		}
		hs := &http.Server{Handler: h, TLSConfig: srv.TLSConfig(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.ServeTLS(ln, "", "") }()
		var once sync.Once
		stop := func() { once.Do(func() { _ = hs.Close(); srv.Close() }) }
		t.Cleanup(stop)
		n.urls = append(n.urls, "https://"+ln.Addr().String())
		n.stops = append(n.stops, stop)
	}
	return n
}

// dial opens the engine's signer on the parties.
func (n *mpcNet) dial(t testing.TB) *signer.MPC {
	t.Helper()
	cert := n.ca.issue(t, "sluice-engine")
	cfg := signer.MPCRemoteConfig{TLS: n.ca.clientTLS(&cert)}
	for i, u := range n.urls {
		cfg.Parties = append(cfg.Parties, signer.MPCRemotePartyConfig{URL: u, Index: i + 1})
	}
	m, err := signer.DialMPC(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// client is an HTTP client presenting a certificate of cn.
func (n *mpcNet) client(t testing.TB, cn string) *http.Client {
	cert := n.ca.issue(t, cn)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: n.ca.clientTLS(&cert)}, Timeout: 10 * time.Second}
}

func signTx(ctx context.Context, m *signer.MPC, tx *types.Transaction) ([]byte, error) {
	unsigned, _ := tx.MarshalBinary()
	return m.SignTransaction(ctx, chain, unsigned, types.LatestSignerForChainID(chain).Hash(tx))
}

// TestMPCNetworkSigns: three party servers sign a transaction whose sender
// recovers to the group address; the group is the fixtures'; a bare
// digest is refused; the parties log the session, never a secret.
func TestMPCNetworkSigns(t *testing.T) {
	n := startMPCNet(t, nil)
	m := n.dial(t)
	if want := openMPC(t, 1, 2, 3).Address(); m.Address() != want {
		t.Fatalf("address = %s, want the group's %s", m.Address().Hex(), want.Hex())
	}
	if err := m.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	tx := nativeTx(7, payee, 1000)
	sig, err := signTx(context.Background(), m, tx)
	if err != nil {
		t.Fatal(err)
	}
	signertest.Check(t, m.Address(), chain, tx, sig)
	if _, err := m.SignDigest(context.Background(), [32]byte{1}); !errors.Is(err, signer.ErrNeedsTransaction) {
		t.Fatalf("SignDigest = %v, want ErrNeedsTransaction", err)
	}
	signed := 0 // the quorum is the first two parties to answer
	for _, u := range n.urls {
		code, metrics := get(t, n.client(t, "prometheus"), u+"/metrics")
		if code != http.StatusOK || !strings.Contains(metrics, `sluice_mpc_party_sessions_total{outcome="refused"} 0`) {
			t.Fatalf("%s/metrics: %d\n%s", u, code, metrics)
		}
		if strings.Contains(metrics, `sluice_mpc_party_sessions_total{outcome="signed"} 1`) &&
			strings.Contains(metrics, "sluice_mpc_party_session_duration_seconds_count 1") {
			signed++
		}
	}
	if signed != 2 {
		t.Fatalf("%d parties count a signed session, want 2", signed)
	}
	if code, body := get(t, n.client(t, "probe"), n.urls[2]+"/healthz"); code != http.StatusOK || !strings.Contains(body, `"index":3`) {
		t.Fatalf("party 3's /healthz: %d %s", code, body)
	}
	logs := n.logs.String()
	if !strings.Contains(logs, "session signed") || strings.Contains(logs, mpcTestPassphrase) || strings.Contains(logs, "payload") {
		t.Fatalf("party logs:\n%s", logs)
	}
}

// TestMPCNetworkPartiesDown: with one party down (before the engine
// starts) it still signs; with two down Health and signing fail with
// ErrMPCQuorum as a signer outage, naming the parties that are down.
func TestMPCNetworkPartiesDown(t *testing.T) {
	n := startMPCNet(t, nil)
	n.stops[0]()
	m := n.dial(t)
	tx := nativeTx(8, payee, 1000)
	sig, err := signTx(context.Background(), m, tx)
	if err != nil {
		t.Fatalf("one party down: %v", err)
	}
	signertest.Check(t, m.Address(), chain, tx, sig)
	n.stops[2]()
	for name, err := range map[string]error{"Health": m.Health(context.Background()), "SignTransaction": func() error {
		_, err := signTx(context.Background(), m, tx)
		return err
	}()} {
		if !errors.Is(err, signer.ErrMPCQuorum) || !errors.Is(err, payout.ErrSignerUnavailable) ||
			!strings.Contains(err.Error(), "1 of 3 healthy, 2 needed") || !strings.Contains(err.Error(), "party 1: ") ||
			!strings.Contains(err.Error(), "party 3: ") || strings.Contains(err.Error(), "party 2: ") {
			t.Errorf("%s with parties 1 and 3 down: %v", name, err)
		}
	}
}

// TestMPCNetworkRetriesSession: a party that drops the connection of a
// session it was found healthy for (a crash after its health check) costs one
// retry under a new session id, not the signature.
func TestMPCNetworkRetriesSession(t *testing.T) {
	var mu sync.Mutex
	sessions := map[string]bool{}
	dropped := false
	n := startMPCNetWith(t, nil, func(_ int, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/sign") {
				mu.Lock()
				sessions[r.URL.Path] = true
				first := !dropped
				dropped = true
				mu.Unlock()
				if first {
					conn, _, err := http.NewResponseController(w).Hijack()
					if err == nil {
						conn.Close()
					}
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	m := n.dial(t)
	tx := nativeTx(12, payee, 1000)
	sig, err := signTx(context.Background(), m, tx)
	if err != nil {
		t.Fatal(err)
	}
	signertest.Check(t, m.Address(), chain, tx, sig)
	mu.Lock()
	defer mu.Unlock()
	if len(sessions) != 2 {
		t.Fatalf("sign requests for %v, want two sessions", sessions)
	}
}

// TestMPCNetworkRefusesTransaction: a party refuses a session whose digest
// is not the transaction's signing hash, and a transaction over its own
// limits (the engine gets ErrRefused).
func TestMPCNetworkRefusesTransaction(t *testing.T) {
	limits := testLimits()
	n := startMPCNet(t, &limits)
	engine := n.client(t, "sluice-engine")
	tx := nativeTx(9, payee, 1000)
	unsigned, _ := tx.MarshalBinary()
	other := types.LatestSignerForChainID(chain).Hash(nativeTx(9, payee, 999_999))
	code, body := post(t, engine, n.urls[0]+"/v1/sessions", map[string]any{"session_id": "abc", "chain_id": hexutil.EncodeBig(chain),
		"tx": hexutil.Encode(unsigned), "digest": other, "signers": []map[string]any{{"index": 1, "url": n.urls[0]}, {"index": 2, "url": n.urls[1]}}})
	if code != http.StatusForbidden || !strings.Contains(body, `"refused"`) || !strings.Contains(body, "not the transaction's signing hash") {
		t.Fatalf("open with another digest: %d %s", code, body)
	}
	m := n.dial(t)
	_, err := signTx(context.Background(), m, nativeTx(10, payee, 2_000_000))
	if !errors.Is(err, signer.ErrRefused) || !strings.Contains(err.Error(), "over the per-transaction cap") {
		t.Fatalf("over the parties' cap: %v, want ErrRefused", err)
	}
	sig, err := signTx(context.Background(), m, tx)
	if err != nil {
		t.Fatal(err)
	}
	signertest.Check(t, m.Address(), chain, tx, sig)
}

// TestMPCNetworkSessionBinding: a message is accepted only under the
// session id it carries, of a session the party holds, from the party
// whose certificate sent it; the engine cannot send protocol messages,
// and only the engine (not a party, not another certificate of the CA)
// opens sessions.
func TestMPCNetworkSessionBinding(t *testing.T) {
	n := startMPCNetWith(t, func(c *signer.MPCPartyConfig) { c.Engines = []string{"sluice-engine"} }, nil)
	engine := n.client(t, "sluice-engine")
	tx := nativeTx(11, payee, 1000)
	unsigned, _ := tx.MarshalBinary()
	open := map[string]any{"session_id": "5e55", "chain_id": hexutil.EncodeBig(chain), "tx": hexutil.Encode(unsigned),
		"digest": types.LatestSignerForChainID(chain).Hash(tx), "signers": []map[string]any{{"index": 1, "url": n.urls[0]}, {"index": 2, "url": n.urls[1]}}}
	if code, body := post(t, engine, n.urls[0]+"/v1/sessions", open); code != http.StatusOK {
		t.Fatalf("open: %d %s", code, body)
	}
	for _, cn := range []string{signer.MPCPartyCommonName(2), "prometheus"} {
		if code, body := post(t, n.client(t, cn), n.urls[0]+"/v1/sessions", open); code != http.StatusForbidden {
			t.Fatalf("%s opening a session: %d %s", cn, code, body)
		}
	}
	msg := func(session string, from int) map[string]any {
		return map[string]any{"session_id": session, "from": from, "broadcast": true, "payload": "0x01"}
	}
	party2, party3 := n.client(t, signer.MPCPartyCommonName(2)), n.client(t, signer.MPCPartyCommonName(3))
	for _, tc := range []struct {
		name   string
		client *http.Client
		path   string
		msg    map[string]any
		code   int
		want   string
	}{
		{"another session's id", party2, "/v1/sessions/5e55/messages", msg("5e56", 2), http.StatusBadRequest, "wrong_session"},
		{"another session", party2, "/v1/sessions/5e56/messages", msg("5e56", 2), http.StatusNotFound, "unknown_session"},
		{"as another party", party2, "/v1/sessions/5e55/messages", msg("5e55", 3), http.StatusForbidden, "from party 3"},
		{"not a signer", party3, "/v1/sessions/5e55/messages", msg("5e55", 3), http.StatusForbidden, "not a peer"},
		{"from the engine", engine, "/v1/sessions/5e55/messages", msg("5e55", 2), http.StatusForbidden, "only a party"},
		{"its own", party2, "/v1/sessions/5e55/messages", msg("5e55", 2), http.StatusOK, "{}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, tc.client, n.urls[0]+tc.path, tc.msg)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("got %d %s, want %d %q", code, body, tc.code, tc.want)
			}
		})
	}
}

// TestMPCNetworkRefusesClients: a client with no certificate, or one from
// another CA, does not get past the TLS handshake; a party's certificate
// must name its share.
func TestMPCNetworkRefusesClients(t *testing.T) {
	n := startMPCNet(t, nil)
	rogue := newTestCA(t)
	rogueCert := rogue.issue(t, "sluice-engine")
	rogueTLS := n.ca.clientTLS(&rogueCert)
	for name, c := range map[string]*tls.Config{"no certificate": n.ca.clientTLS(nil), "another CA": rogueTLS} {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: c}, Timeout: 5 * time.Second}
		resp, err := hc.Get(n.urls[0] + "/v1/party")
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: HTTP %d, want a TLS failure", name, resp.StatusCode)
		}
	}
	all, _ := mpcParties()
	_, err := signer.NewMPCPartyServer(signer.MPCPartyConfig{Party: all[0].(*signer.MPCLocalParty),
		Cert: n.ca.issue(t, signer.MPCPartyCommonName(2)), ClientCAs: n.ca.pool})
	if err == nil || !strings.Contains(err.Error(), `want "sluice-mpc-party-1"`) {
		t.Fatalf("share 1 with party 2's certificate: %v", err)
	}
	// The engine refuses a server whose certificate is another party's.
	cert := n.ca.issue(t, "sluice-engine")
	_, err = signer.DialMPC(context.Background(), signer.MPCRemoteConfig{TLS: n.ca.clientTLS(&cert),
		Parties: []signer.MPCRemotePartyConfig{{URL: n.urls[1], Index: 1}, {URL: n.urls[0], Index: 2}}})
	if !errors.Is(err, signer.ErrMPCQuorum) || !strings.Contains(err.Error(), "is not party 1's") {
		t.Fatalf("parties swapped: %v", err)
	}
}

// TestConformanceMPCNetwork runs the signer suite against three party
// servers on loopback mutual TLS.
func TestConformanceMPCNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("an MPC signing session takes about a second of CPU")
	}
	n := startMPCNet(t, nil)
	o := suiteOptions
	o.Signatures = 4
	signertest.Run(t, o, func(t *testing.T) payout.Signer { return n.dial(t) })
}

func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func post(t testing.TB, c *http.Client, url string, body any) (int, string) {
	t.Helper()
	blob, _ := json.Marshal(body)
	resp, err := c.Post(url, "application/json", bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// BenchmarkMPCNetworkSign measures one 2-of-3 signing session among party
// servers on loopback mTLS (the engine opens the session on two parties,
// which exchange the protocol's messages directly); it reports the median.
func BenchmarkMPCNetworkSign(b *testing.B) {
	benchSigner(b, startMPCNet(b, nil).dial(b))
}

// TestMPCNetworkChecksThePayout: told the payout a transaction is for, each
// party refuses a transaction that pays another amount or payee, and a
// cancel that is not a zero-value transfer to the wallet; what matches is
// signed. Refusals use no nonce of the session: the next one signs.
func TestMPCNetworkChecksThePayout(t *testing.T) {
	n := startMPCNet(t, nil)
	m := n.dial(t)
	intent := func(kind payout.IntentKind, to common.Address, amount int64) context.Context {
		return payout.WithSigningIntent(context.Background(), payout.SigningIntent{PayoutID: "po_check", Kind: kind, To: to, Amount: big.NewInt(amount)})
	}
	tx := nativeTx(11, payee, 1000)
	for name, c := range map[string]struct {
		ctx  context.Context
		tx   *types.Transaction
		want string
	}{
		"another amount":  {intent(payout.IntentTransfer, payee, 999), tx, "but payout po_check (transfer) is 999 of native"},
		"another payee":   {intent(payout.IntentTransfer, common.HexToAddress("0x00000000000000000000000000000000000000e7"), 1000), tx, "but payout po_check"},
		"a token payout":  {payout.WithSigningIntent(context.Background(), payout.SigningIntent{PayoutID: "po_check", Kind: payout.IntentTransfer, To: payee, Token: &common.Address{0x70}, Amount: big.NewInt(1000)}), tx, "of native"},
		"a paying cancel": {intent(payout.IntentCancel, m.Address(), 0), tx, "(cancel) is 0 of native to " + m.Address().Hex()},
	} {
		if _, err := signTx(c.ctx, m, c.tx); !errors.Is(err, signer.ErrRefused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrRefused with %q", name, err, c.want)
		}
	}
	sig, err := signTx(intent(payout.IntentTransfer, payee, 1000), m, tx)
	if err != nil {
		t.Fatalf("the transaction of its payout: %v", err)
	}
	signertest.Check(t, m.Address(), chain, tx, sig)
	cancel := nativeTx(12, m.Address(), 0)
	if sig, err = signTx(intent(payout.IntentCancel, m.Address(), 0), m, cancel); err != nil {
		t.Fatalf("a cancel: %v", err)
	}
	signertest.Check(t, m.Address(), chain, cancel, sig)
}
