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
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/signer"
	"github.com/sluicepay/sluice/internal/signer/signertest"
)

var chain = big.NewInt(1337)

func nativeTx(nonce uint64, to common.Address, value int64) *types.Transaction {
	return types.NewTx(&types.DynamicFeeTx{ChainID: chain, Nonce: nonce, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9),
		Gas: 21000, To: &to, Value: big.NewInt(value)})
}

func tokenTx(nonce uint64, token, to common.Address, amount int64) *types.Transaction {
	data := append([]byte{0xa9, 0x05, 0x9c, 0xbb}, common.LeftPadBytes(to[:], 32)...)
	data = append(data, common.LeftPadBytes(big.NewInt(amount).Bytes(), 32)...)
	return types.NewTx(&types.DynamicFeeTx{ChainID: chain, Nonce: nonce, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9),
		Gas: 60000, To: &token, Data: data})
}

func signWith(r *signer.Remote, tx *types.Transaction) ([]byte, error) {
	unsigned, _ := tx.MarshalBinary()
	return r.SignTransaction(context.Background(), chain, unsigned, types.LatestSignerForChainID(chain).Hash(tx))
}

func TestRemoteLimits(t *testing.T) {
	key := newKey(t)
	token := common.HexToAddress("0x00000000000000000000000000000000000000cc")
	limits := testLimits()
	limits.Assets[token.Hex()] = signer.AssetLimit{PerTx: "500", Daily: "800"}
	var logs bytes.Buffer
	srv, err := signer.NewServer(signer.ServerConfig{Signer: signer.FromKey(key), Token: testToken, Limits: limits,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(srv)
	defer hs.Close()
	r, err := signer.DialRemote(context.Background(), signer.RemoteConfig{URL: hs.URL, Token: testToken,
		TLS: hs.Client().Transport.(*http.Transport).TLSClientConfig})
	if err != nil {
		t.Fatal(err)
	}
	self := r.Address()
	stranger := common.HexToAddress("0x00000000000000000000000000000000000000bb")
	legacy := types.NewTx(&types.LegacyTx{Nonce: 40, GasPrice: big.NewInt(1), Gas: 21000, To: &payee, Value: big.NewInt(5)})
	contractCall := types.NewTx(&types.DynamicFeeTx{ChainID: chain, Nonce: 41, GasFeeCap: big.NewInt(1), Gas: 50000, To: &payee,
		Data: []byte{1, 2, 3, 4}})
	otherChain := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), Nonce: 42, GasFeeCap: big.NewInt(1), Gas: 21000, To: &payee, Value: big.NewInt(1)})
	steps := []struct {
		name    string
		tx      *types.Transaction
		refused string // "" = signed
	}{
		{"native to the allow-list", nativeTx(1, payee, 1000), ""},
		{"destination not allowed", nativeTx(2, stranger, 1), "not on the signer's allow-list"},
		{"over the per-transaction cap", nativeTx(3, payee, 1_000_001), "over the per-transaction cap"},
		{"fee bump of nonce 1 is counted once", nativeTx(1, payee, 1000), ""},
		{"another transfer at nonce 1", nativeTx(1, payee, 999), "nonce 1 was already signed for another transfer"},
		{"cancel of nonce 1 (zero-value self-transfer)", nativeTx(1, self, 0), ""},
		{"a self-transfer with value is a payment", nativeTx(4, self, 1), "not on the signer's allow-list"},
		{"token within caps", tokenTx(5, token, payee, 500), ""},
		{"token over the per-transaction cap", tokenTx(6, token, payee, 501), "over the per-transaction cap"},
		{"token passes the daily cap", tokenTx(7, token, payee, 301), "would pass the daily cap 800 (500 signed today)"},
		{"token up to the daily cap", tokenTx(8, token, payee, 300), ""},
		{"token not configured", tokenTx(9, stranger, payee, 1), "has no limits on this signer"},
		{"legacy transaction", legacy, ""},
		{"contract call", contractCall, "only native transfers and ERC-20 transfer calls"},
		{"transaction of another chain", otherChain, "is for chain 1, not 1337"},
		{"fee over the cap", types.NewTx(&types.DynamicFeeTx{ChainID: chain, Nonce: 43, GasFeeCap: big.NewInt(1e15), Gas: 21000, To: &payee,
			Value: big.NewInt(1)}), "over the per-transaction fee cap 1000000000000000000"},
	}
	for _, st := range steps {
		sig, err := signWith(r, st.tx)
		if st.refused == "" {
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			signertest.Check(t, self, chain, st.tx, sig)
			continue
		}
		if err == nil || !strings.Contains(err.Error(), st.refused) {
			t.Fatalf("%s: err = %v, want a refusal containing %q", st.name, err, st.refused)
		}
		if !errors.Is(err, signer.ErrRefused) || !errors.Is(err, payout.ErrSignerUnavailable) {
			t.Errorf("%s: err %v is not ErrRefused and ErrSignerUnavailable", st.name, err)
		}
	}

	// The engine cannot get a blind signature: a digest that is not the
	// transaction's signing hash is refused.
	tx := nativeTx(50, payee, 1)
	unsigned, _ := tx.MarshalBinary()
	evil := types.LatestSignerForChainID(chain).Hash(nativeTx(50, stranger, 1_000_000))
	if _, err := r.SignTransaction(context.Background(), chain, unsigned, evil); err == nil ||
		!strings.Contains(err.Error(), "digest is not the signing hash of the transaction") {
		t.Errorf("mismatched digest: err = %v", err)
	}
	if _, err := r.SignDigest(context.Background(), evil); !errors.Is(err, signer.ErrNeedsTransaction) {
		t.Errorf("bare digest: err = %v, want ErrNeedsTransaction", err)
	}
	if strings.Contains(logs.String(), testToken) {
		t.Error("the server logged its token")
	}
	if !strings.Contains(logs.String(), "transaction refused") {
		t.Error("refusals are not logged")
	}
}

func TestRemoteWrongToken(t *testing.T) {
	var logs bytes.Buffer
	srv, err := signer.NewServer(signer.ServerConfig{Signer: signer.FromKey(newKey(t)), Token: testToken, Limits: testLimits(),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(srv)
	defer hs.Close()
	tlsCfg := hs.Client().Transport.(*http.Transport).TLSClientConfig
	for _, tok := range []string{"wrong-token-0123456789", "", testToken + "x", testToken[:len(testToken)-1]} {
		_, err := signer.DialRemote(context.Background(), signer.RemoteConfig{URL: hs.URL, Token: tok, TLS: tlsCfg})
		if err == nil || !strings.Contains(err.Error(), "unauthenticated") {
			t.Errorf("token %q: err = %v, want unauthenticated", tok, err)
		}
		if tok != "" && err != nil && strings.Contains(err.Error(), tok) {
			t.Errorf("the error names the token")
		}
	}
	if strings.Contains(logs.String(), "wrong-token") || strings.Contains(logs.String(), testToken) {
		t.Error("the server logged a token")
	}
	if _, err := signer.NewServer(signer.ServerConfig{Signer: signer.FromKey(newKey(t)), Token: "short", Limits: testLimits()}); err == nil ||
		!strings.Contains(err.Error(), "token") {
		t.Errorf("short token: err = %v", err)
	}
	bad := testLimits()
	bad.Assets["native"] = signer.AssetLimit{PerTx: "1e18", Daily: "1"}
	if _, err := signer.NewServer(signer.ServerConfig{Signer: signer.FromKey(newKey(t)), Token: testToken, Limits: bad}); err == nil ||
		!strings.Contains(err.Error(), "limits.assets.native.per_tx") {
		t.Errorf("bad cap: err = %v", err)
	}
}

func TestRemoteMutualTLS(t *testing.T) {
	srv, err := signer.NewServer(signer.ServerConfig{Signer: signer.FromKey(newKey(t)), Token: testToken, Limits: testLimits()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0)
	pool, clientCert := clientPKI(t)
	hs.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	hs.StartTLS()
	defer hs.Close()
	noCert := hs.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	if _, err := signer.DialRemote(context.Background(), signer.RemoteConfig{URL: hs.URL, Token: testToken, TLS: noCert}); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	withCert := noCert.Clone()
	withCert.Certificates = []tls.Certificate{clientCert}
	r, err := signer.DialRemote(context.Background(), signer.RemoteConfig{URL: hs.URL, Token: testToken, TLS: withCert})
	if err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	sig, err := signWith(r, nativeTx(1, payee, 1))
	if err != nil {
		t.Fatal(err)
	}
	signertest.Check(t, r.Address(), chain, nativeTx(1, payee, 1), sig)
}

func TestRemoteDown(t *testing.T) {
	rs := startRemote(t, newKey(t), testLimits(), nil)
	r := dialRemote(t, rs, testToken)
	rs.Close()
	_, err := signWith(r, nativeTx(1, payee, 1))
	if !errors.Is(err, payout.ErrSignerUnavailable) || errors.Is(err, signer.ErrRefused) {
		t.Errorf("server down: err = %v, want ErrSignerUnavailable only", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.Health(ctx); !errors.Is(err, payout.ErrSignerUnavailable) {
		t.Errorf("Health with the server down = %v", err)
	}
}

// clientPKI makes a CA and a client certificate it signed.
func clientPKI(t *testing.T) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "sluice engine"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return pool, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestRemoteDownAtDial: dialed while its server is down, a remote signer
// for the address the config expects opens (so the engine starts) but
// signs nothing until its server answers: not while it is down, not when
// a server holding another key answers, and at once when the right one
// does.
func TestRemoteDownAtDial(t *testing.T) {
	key := newKey(t)
	wallet := crypto.PubkeyToAddress(key.PublicKey)
	tmp := startRemote(t, key, testLimits(), nil)
	tlsCfg := tlsOf(tmp)
	tmp.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := signer.RemoteConfig{URL: "https://" + addr, Token: testToken, TLS: tlsCfg, Timeout: time.Second}
	if _, err := signer.DialRemote(context.Background(), cfg); !errors.Is(err, payout.ErrSignerUnavailable) {
		t.Fatalf("dial with the server down and no expected address: %v, want ErrSignerUnavailable", err)
	}
	cfg.Expect = wallet
	r, err := signer.DialRemote(context.Background(), cfg)
	if err != nil || r.Address() != wallet {
		t.Fatalf("dial with the server down, expecting %s: %v, %v", wallet.Hex(), r, err)
	}
	if _, err := signWith(r, nativeTx(1, payee, 1)); !errors.Is(err, payout.ErrSignerUnavailable) {
		t.Errorf("signing with the server down: %v, want ErrSignerUnavailable", err)
	}
	relisten := func() net.Listener {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	wrong := startRemote(t, newKey(t), testLimits(), relisten())
	if err := r.Health(context.Background()); !errors.Is(err, payout.ErrSignerUnavailable) || !strings.Contains(err.Error(), "not for the configured "+wallet.Hex()) {
		t.Errorf("Health with a server of another key: %v", err)
	}
	if _, err := signWith(r, nativeTx(1, payee, 1)); !errors.Is(err, payout.ErrSignerUnavailable) || wrong.signed.Load() != 0 {
		t.Errorf("signing with a server of another key: %v (%d signed)", err, wrong.signed.Load())
	}
	wrong.Close()
	startRemote(t, key, testLimits(), relisten())
	if err := r.Health(context.Background()); err != nil {
		t.Fatalf("Health with the right server: %v", err)
	}
	tx := nativeTx(2, payee, 1)
	sig, err := signWith(r, tx)
	if err != nil {
		t.Fatal(err)
	}
	signertest.Check(t, wallet, chain, tx, sig)
}

// TestRemoteChecksThePayout: told the payout a transaction is for, the
// remote signer refuses one that pays another amount, and signs the one
// that pays it.
func TestRemoteChecksThePayout(t *testing.T) {
	key := newKey(t)
	rs := startRemote(t, key, testLimits(), nil)
	r := dialRemote(t, rs, testToken)
	tx := nativeTx(3, payee, 1000)
	unsigned, _ := tx.MarshalBinary()
	digest := types.LatestSignerForChainID(chain).Hash(tx)
	told := func(amount int64) context.Context {
		return payout.WithSigningIntent(context.Background(), payout.SigningIntent{PayoutID: "po_remote", Kind: payout.IntentTransfer,
			To: payee, Amount: big.NewInt(amount)})
	}
	if _, err := r.SignTransaction(told(999), chain, unsigned, digest); !errors.Is(err, signer.ErrRefused) || !strings.Contains(err.Error(), "but payout po_remote") {
		t.Fatalf("another amount than the payout's: %v, want ErrRefused naming the payout", err)
	}
	if rs.signed.Load() != 0 {
		t.Fatal("the server signed a transaction that does not pay its payout")
	}
	sig, err := r.SignTransaction(told(1000), chain, unsigned, digest)
	if err != nil {
		t.Fatal(err)
	}
	signertest.Check(t, crypto.PubkeyToAddress(key.PublicKey), chain, tx, sig)
}
