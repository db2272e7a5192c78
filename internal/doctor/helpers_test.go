package doctor

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/sandbox"
	"github.com/sluicepay/sluice/internal/signer"
	"github.com/sluicepay/sluice/internal/store"
)

// A keystore takes a second of scrypt to write: TestMain writes one for
// the package.
var (
	ksKey  *ecdsa.PrivateKey
	ksPath string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-doctor-test")
	if err != nil {
		panic(err)
	}
	ksKey, _ = crypto.GenerateKey()
	if ksPath, _, err = signer.WriteKeystore(dir, ksKey, passphrase, signer.ChosenPassphrase); err != nil {
		panic(err)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const passphrase = "doctor test passphrase"

// fixture is a real dev chain, its hot wallet's keystore and a passphrase
// file, and a SQLite database created by store.Open.
type fixture struct {
	chain    *sandbox.Chain
	rpcURL   string
	wallet   common.Address
	keystore string
	passFile string
	dbPath   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	chain, err := sandbox.Start(t.Context(), sandbox.Config{DataDir: dir, RPCAddr: "127.0.0.1:0", HotWalletKey: ksKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = chain.Close() })
	f := &fixture{chain: chain, rpcURL: chain.RPCURL(), wallet: crypto.PubkeyToAddress(ksKey.PublicKey),
		keystore: ksPath, passFile: filepath.Join(dir, "pass"), dbPath: filepath.Join(dir, "sluice.db")}
	if err := os.WriteFile(f.passFile, []byte(passphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = f.openStore(t).Close()
	return f
}

// openStore opens the fixture's database (migrating a new one); the
// caller closes it.
func (f *fixture) openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), "sqlite:"+f.dbPath, store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// config writes a config with the given upstream URLs and parses it.
func (f *fixture) config(t *testing.T, urls ...string) *config.Config {
	t.Helper()
	var ups strings.Builder
	for _, u := range urls {
		fmt.Fprintf(&ups, "      - url: %q\n", u)
	}
	y := fmt.Sprintf(`database: "sqlite:%s"
chains:
  - name: sandbox
    chain_id: %d
    upstreams:
%s    tokens:
      - {symbol: SUSD, address: %q, decimals: 6}
    hot_wallets:
      - address: %q
        signer: {type: keystore, keystore: %q, passphrase_file: %q}
api_keys:
  - {name: t, sha256: "%s"}
`, f.dbPath, sandbox.ChainID, ups.String(), f.chain.SUSD().Hex(), f.wallet.Hex(), f.keystore, f.passFile, strings.Repeat("ab", 32))
	cfg, err := config.Parse([]byte(y), nil)
	if err != nil {
		t.Fatalf("parse config: %v\n%s", err, y)
	}
	return cfg
}

// addPayout stores a queued native payout from the hot wallet created at.
func (f *fixture) addPayout(t *testing.T, amount *big.Int, created time.Time) {
	t.Helper()
	f.addPayoutIn(t, "ETH", amount, created)
}

// addPayoutIn stores a queued payout in asset from the hot wallet.
func (f *fixture) addPayoutIn(t *testing.T, asset string, amount *big.Int, created time.Time) {
	t.Helper()
	db := f.openStore(t)
	defer func() { _ = db.Close() }()
	p := &payout.Payout{ID: payout.DefaultIDs.New("po_", created), Chain: "sandbox", ChainID: sandbox.ChainID,
		Asset: asset, To: common.HexToAddress("0x000000000000000000000000000000000000dEaD"), Amount: amount,
		Sender: f.wallet, CreatedAt: created}
	if err := db.CreatePayout(t.Context(), p, nil); err != nil {
		t.Fatal(err)
	}
}

// fault is an upstream in front of the dev chain that changes answers.
type fault func(w http.ResponseWriter, method string) bool

// faultUpstream proxies JSON-RPC to target unless the fault answers.
func faultUpstream(t *testing.T, target string, f fault) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(proxyHandler(target, f))
	t.Cleanup(s.Close)
	return s
}

func proxyHandler(target string, f fault) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &req)
		if f != nil && f(w, req.Method) {
			return
		}
		resp, err := http.Post(target, "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer func() { _ = resp.Body.Close() }()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
}

// answer writes a JSON-RPC result for the given method only.
func answer(method, result string) fault {
	return func(w http.ResponseWriter, m string) bool {
		if m != method {
			return false
		}
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":1,"result":%s}`, result)
		return true
	}
}

func tooManyRequests(w http.ResponseWriter, _ string) bool {
	w.Header().Set("Retry-After", "30")
	http.Error(w, "too many requests", http.StatusTooManyRequests)
	return true
}

// refusedURL is an http URL on a port nothing listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr + "/v3/0123456789abcdef0123456789abcdef"
}

// find returns the result whose check starts with prefix.
func find(t *testing.T, rep Report, prefix string) Result {
	t.Helper()
	for _, r := range rep.Results {
		if strings.HasPrefix(r.Check, prefix) {
			return r
		}
	}
	t.Fatalf("no check %q in %+v", prefix, rep.Results)
	return Result{}
}
