package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/httpapi"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// TestRPCProxyCommand runs `sluice rpc-proxy` (in process) on a config
// naming a dev chain and checks that it forwards, with its own token.
func TestRPCProxyCommand(t *testing.T) {
	key, _ := crypto.GenerateKey()
	chain, err := sandbox.Start(context.Background(), sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	token := "proxy-token"
	cfg := fmt.Sprintf(`chains:
  - name: sandbox
    chain_id: 1337
    upstreams: [{url: %q}]
    hot_wallets: [{address: %q, signer: {type: keystore, keystore: unused}}]
api_keys: [{name: a, sha256: %x}]
rpc_proxy:
  tokens_sha256: ["%x"]
`, chain.RPCURL(), crypto.PubkeyToAddress(key.PublicKey).Hex(), httpapi.HashAPIKey("api-key"), httpapi.HashAPIKey(token))
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	var wg sync.WaitGroup
	wg.Add(1)
	var runErr error
	go func() {
		defer wg.Done()
		runErr = runRPCProxy(ctx, []string{"--config", path, "--http", "127.0.0.1:0"}, out, io.Discard)
	}()
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s := out.String(); strings.Contains(s, "http://") {
			url = strings.TrimSuffix(strings.Fields(s[strings.Index(s, "http://"):])[0], "{chain}")
		}
	}
	if url == "" {
		t.Fatalf("rpc-proxy did not start: %s", out.String())
	}
	call := func(tok string) (int, string) {
		req, _ := http.NewRequest("POST", url+"sandbox", bytes.NewReader([]byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":2,"method":"admin_peers"}]`)))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := call(token)
	if code != 200 || !strings.Contains(body, `"id":1,"result":"0x`) || !strings.Contains(body, `"id":2,"error"`) {
		t.Errorf("batch through rpc-proxy = %d %s", code, body)
	}
	if code, _ := call("api-key"); code != http.StatusUnauthorized {
		t.Errorf("the API key is not a proxy token when tokens are configured: got %d", code)
	}
	cancel()
	wg.Wait()
	if runErr != nil {
		t.Errorf("rpc-proxy ended with %v", runErr)
	}
}
