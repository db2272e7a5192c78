package rpcpool

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/rpcpool/rpcfault"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// TestProxyEthersClient runs an independent client, ethers v6 under Node,
// against the endpoint while two of three upstreams fail: it reads a
// balance and a revert, and sends a signed transfer that gets mined.
// CI installs ethers with: npm ci --prefix internal/rpcpool/testdata
func TestProxyEthersClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	if _, err := os.Stat(filepath.Join("testdata", "node_modules", "ethers", "package.json")); err != nil {
		t.Skip("ethers is not installed: run npm ci --prefix internal/rpcpool/testdata")
	}
	c := startChain(t)
	mineEvery(t, c, 200*time.Millisecond)
	bad1 := rpcfault.New(t, c.RPCURL(), rpcfault.ServerError)
	bad2 := rpcfault.New(t, c.RPCURL(), rpcfault.Hang)
	good := rpcfault.New(t, c.RPCURL(), rpcfault.None)
	tp := startProxy(t, startPool(t, testConfig(bad1.URL, bad2.URL, good.URL)), ProxyConfig{Tokens: [][32]byte{HashToken("ethers-token")}})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "ethers_client.mjs"))
	cmd.Env = append(os.Environ(),
		"SLUICE_RPC_URL="+tp.url, "SLUICE_RPC_TOKEN=ethers-token",
		"SLUICE_KEY="+hexutil.Encode(crypto.FromECDSA(c.key)),
		fmt.Sprintf("SLUICE_CHAIN_ID=%d", sandbox.ChainID), "SLUICE_SUSD="+c.SUSD().Hex())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ethers client: %v\n%s", err, out)
	}
	t.Logf("ethers client: %s", out)
	for _, o := range []string{"unavailable", "invalid", "refused"} {
		for _, m := range []string{"eth_blockNumber", "eth_getBalance", "eth_sendRawTransaction", "eth_call", "other"} {
			if n := testutilCount(tp, m, o); n != 0 {
				t.Errorf("%g %s requests ended %s", n, m, o)
			}
		}
	}
	if n := testutilCount(tp, "eth_sendRawTransaction", "ok"); n != 1 {
		t.Errorf("eth_sendRawTransaction ok: got %g, want 1", n)
	}
}

// mineEvery commits a block every d until the test ends.
func mineEvery(t *testing.T, c *testChain, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(d)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				c.Commit()
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		<-stopped
	})
}
