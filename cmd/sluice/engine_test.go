package main

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/httpapi"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// TestEngineKeepsPayingWithTwoOfThreeUpstreamsDown starts the engine in
// process on port 0 against a dev chain reached through three upstreams:
// one answers 500 to everything, one refuses connections, one works.
// Every payout still completes and is paid exactly.
func TestEngineKeepsPayingWithTwoOfThreeUpstreamsDown(t *testing.T) {
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream on fire", http.StatusInternalServerError)
	}))
	defer broken.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := "http://" + ln.Addr().String()
	ln.Close()
	te := startTestEngine(t, 200*time.Millisecond, 2, broken.URL, refused)
	eng, chain, apiKey := te.engine, te.chain, te.apiKey

	var want []wanted
	var ids []string
	for i := range 40 {
		w := wanted{asset: "ETH", to: common.BigToAddress(big.NewInt(int64(0xE0000 + i))), amount: big.NewInt(int64(5000 + i))}
		if i%2 == 1 {
			w.asset = "SUSD"
		}
		want = append(want, w)
		ids = append(ids, createWithRetry(t, eng.URL, apiKey, w, fmt.Sprintf("upstreams-%d", i)))
	}
	waitAllCompleted(t, eng.URL(), apiKey, ids, 60*time.Second)

	// The failover JSON-RPC endpoint answers through the pool, refuses the
	// node's own keys, and wants a token (the API key by default).
	rpcCall := func(token, body string) (int, string) {
		req, _ := http.NewRequest("POST", eng.URL()+"/rpc/sandbox", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := rpcCall(apiKey, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`); code != 200 || !strings.Contains(body, `"result":"0x539"`) {
		t.Errorf("eth_chainId through /rpc/sandbox = %d %s", code, body)
	}
	if code, body := rpcCall(apiKey, `{"jsonrpc":"2.0","id":1,"method":"eth_sendTransaction","params":[{}]}`); !strings.Contains(body, `"error"`) || strings.Contains(body, `"result"`) {
		t.Errorf("eth_sendTransaction through /rpc/sandbox = %d %s, want a JSON-RPC error", code, body)
	}
	if code, _ := rpcCall("", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`); code != http.StatusUnauthorized {
		t.Errorf("/rpc/sandbox without a token = %d, want 401", code)
	}

	// The status page says which upstreams are down.
	req, _ := http.NewRequest("GET", eng.URL()+"/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Chains []struct {
			Usable    int `json:"usable_upstreams"`
			Upstreams []struct {
				Healthy bool `json:"healthy"`
			} `json:"upstreams"`
		} `json:"chains"`
		Payouts map[string]int `json:"payouts"`
	}
	jsonDecode(resp, &st)
	resp.Body.Close()
	if len(st.Chains) != 1 || st.Chains[0].Usable != 1 || len(st.Chains[0].Upstreams) != 3 || !st.Chains[0].Upstreams[2].Healthy ||
		st.Chains[0].Upstreams[0].Healthy || st.Payouts["completed"] != 40 {
		t.Errorf("GET /v1/status = %+v, want 1 usable upstream of 3 (the third) and 40 completed", st)
	}
	checkBalances(t, devInfo{RPCURL: chain.RPCURL(), Assets: map[string]assetInfo{"SUSD": {Address: ptr(chain.SUSD().Hex())}}}, want)
}

func ptr[T any](v T) *T { return &v }

// testEngine is an engine started in process on port 0 on a dev chain.
type testEngine struct {
	engine *engine
	chain  *sandbox.Chain
	key    *ecdsa.PrivateKey
	apiKey string
	cfg    *config.Config
}

// startTestEngine starts a dev chain (blockTime 0: a block only on Commit)
// with a funded hot wallet and SUSD, and an engine on it whose upstreams
// are extra followed by the chain itself. Both stop when t ends.
func startTestEngine(t *testing.T, blockTime time.Duration, confirmations uint64, extra ...string) *testEngine {
	t.Helper()
	return startTestEngineVia(t, blockTime, confirmations, func(node string) []string { return append(extra, node) })
}

// startTestEngineVia is startTestEngine with the upstreams front makes of
// the dev chain's URL (e.g. a fault-injecting proxy in front of it).
func startTestEngineVia(t *testing.T, blockTime time.Duration, confirmations uint64, front func(node string) []string) *testEngine {
	t.Helper()
	return startTestEngineWith(t, blockTime, confirmations, front, nil)
}

// startTestEngineWith is startTestEngineVia with a last change to the
// engine's config (nil: none) made knowing the chain.
func startTestEngineWith(t *testing.T, blockTime time.Duration, confirmations uint64, front func(node string) []string,
	change func(*config.Config, *sandbox.Chain, *ecdsa.PrivateKey)) *testEngine {
	t.Helper()
	ctx := context.Background()
	key, _ := crypto.GenerateKey()
	chain, err := sandbox.Start(ctx, sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key, BlockTime: blockTime})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.Close() })
	var ups []config.Upstream
	for _, u := range front(chain.RPCURL()) {
		ups = append(ups, config.Upstream{URL: u})
	}
	wallet := crypto.PubkeyToAddress(key.PublicKey)
	te := &testEngine{chain: chain, key: key, apiKey: "sk_test_engine"}
	cfg := sandboxConfig(t, chain, te.apiKey, handedIn(wallet))
	cfg.Chains[0].Confirmations, cfg.Chains[0].Upstreams = confirmations, ups
	if change != nil {
		change(cfg, chain, key)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	te.cfg = cfg
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	te.engine, err = startEngine(ctx, cfg, log, engineOptions{Signers: map[common.Address]payout.Signer{wallet: evm.KeySigner{Key: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { te.engine.Close() })
	return te
}

// sandboxConfig is an engine config on a dev chain: SQLite and the data
// dir in temporary directories, ETH and SUSD, one block's confirmation,
// the hot wallets given, and one API key. The caller validates it.
func sandboxConfig(t *testing.T, chain *sandbox.Chain, apiKey string, wallets ...config.HotWallet) *config.Config {
	t.Helper()
	eighteen := uint8(18)
	return &config.Config{
		Database: "sqlite:" + filepath.Join(t.TempDir(), "sluice.db"), HTTP: "127.0.0.1:0", DataDir: t.TempDir(),
		LogLevel: "info", LogFormat: "text",
		Chains: []config.Chain{{
			Name: "sandbox", ChainID: chain.ChainID(), Confirmations: 1, Upstreams: []config.Upstream{{URL: chain.RPCURL()}},
			NativeSymbol: "ETH", NativeDecimals: &eighteen,
			Tokens:     []config.Token{{Symbol: "SUSD", Address: chain.SUSD().Hex(), Decimals: 6}},
			HotWallets: wallets,
		}},
		APIKeys: []config.APIKey{{Name: "test", SHA256: fmt.Sprintf("%x", httpapi.HashAPIKey(apiKey))}},
	}
}

// handedIn is a hot wallet whose signer the test hands to the engine.
func handedIn(addr common.Address) config.HotWallet {
	return config.HotWallet{Address: addr.Hex(), Signer: config.Signer{Type: "keystore", Keystore: "unused: signer handed in"}}
}
