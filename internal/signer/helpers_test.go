package signer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/signer"
)

const testToken = "engine-token-0123456789"

// payee is on every test server's allow-list.
var payee = common.HexToAddress("0x00000000000000000000000000000000000000aa")

func testLimits() signer.Limits {
	return signer.Limits{ChainIDs: []uint64{1337}, Allow: []common.Address{payee},
		Assets: map[string]signer.AssetLimit{"native": {PerTx: "1000000", Daily: "1000000000"}}, MaxFeePerTx: "1000000000000000000"}
}

// remoteServer is a real remote signer on loopback TLS that counts the
// signatures it made.
type remoteServer struct {
	*httptest.Server
	signed atomic.Int64
}

func startRemote(t testing.TB, key *ecdsa.PrivateKey, limits signer.Limits, ln net.Listener) *remoteServer {
	t.Helper()
	return startRemoteServer(t, signer.ServerConfig{Signer: signer.FromKey(key), Token: testToken, Limits: limits}, ln)
}

// startRemoteServer is startRemote with the whole server config.
func startRemoteServer(t testing.TB, cfg signer.ServerConfig, ln net.Listener) *remoteServer {
	t.Helper()
	srv, err := signer.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rs := &remoteServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &statusWriter{ResponseWriter: w}
		srv.ServeHTTP(rw, r)
		if rw.signed {
			rs.signed.Add(1)
		}
	})
	rs.Server = httptest.NewUnstartedServer(h)
	if ln != nil {
		rs.Listener.Close()
		rs.Listener = ln
	}
	rs.StartTLS()
	t.Cleanup(rs.Close)
	return rs
}

// statusWriter notes whether a response carried a signature.
type statusWriter struct {
	http.ResponseWriter
	signed bool
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if len(b) > 0 && containsSignature(b) {
		w.signed = true
	}
	return w.ResponseWriter.Write(b)
}

func containsSignature(b []byte) bool {
	for i := 0; i+len(`"signature"`) <= len(b); i++ {
		if string(b[i:i+len(`"signature"`)]) == `"signature"` {
			return true
		}
	}
	return false
}

func dialRemote(t testing.TB, rs *remoteServer, token string) *signer.Remote {
	t.Helper()
	r, err := signer.DialRemote(context.Background(), signer.RemoteConfig{URL: rs.URL, Token: token, TLS: tlsOf(rs)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func tlsOf(rs *remoteServer) *tls.Config {
	return rs.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
}

var (
	hsmOnce sync.Once
	hsmConf signer.PKCS11Config
	hsmErr  string
)

const softHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// softHSM initialises one fresh SoftHSM2 token for this test binary, in a
// temp dir with its own SOFTHSM2_CONF, with a generated secp256k1 key. It
// fails when SoftHSM2 is missing and SLUICE_REQUIRE_SOFTHSM is set (CI
// installs it), else skips.
func softHSM(t testing.TB) signer.PKCS11Config {
	t.Helper()
	hsmOnce.Do(func() {
		if _, err := exec.LookPath("softhsm2-util"); err != nil {
			hsmErr = "softhsm2-util not installed"
			return
		}
		if _, err := os.Stat(softHSMModule); err != nil {
			hsmErr = "libsofthsm2.so not installed"
			return
		}
		dir, err := os.MkdirTemp("", "sluice-softhsm-")
		if err != nil {
			hsmErr = err.Error()
			return
		}
		conf := filepath.Join(dir, "softhsm2.conf")
		os.MkdirAll(filepath.Join(dir, "tokens"), 0o700)
		os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600)
		os.Setenv("SOFTHSM2_CONF", conf)
		out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "sluice-test",
			"--pin", "1234", "--so-pin", "5678").CombinedOutput()
		if err != nil {
			hsmErr = "init token: " + string(out)
			return
		}
		hsmConf = signer.PKCS11Config{Module: softHSMModule, TokenLabel: "sluice-test", KeyLabel: "hot-1", PIN: "1234"}
		if _, err := signer.GeneratePKCS11Key(hsmConf); err != nil {
			hsmErr = "generate key: " + err.Error()
		}
	})
	if hsmErr != "" {
		if os.Getenv("SLUICE_REQUIRE_SOFTHSM") != "" {
			t.Fatalf("SoftHSM2 is required here: %s", hsmErr)
		}
		t.Skipf("SoftHSM2: %s (set SLUICE_REQUIRE_SOFTHSM=1 to make this a failure)", hsmErr)
	}
	return hsmConf
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
