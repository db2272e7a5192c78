package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/httpapi"
	"github.com/sluicepay/sluice/internal/sandbox"
	"github.com/sluicepay/sluice/internal/signer"
)

// remoteSignerAt is a `sluice signer serve` server (the same handler and
// TLS setup) that a test stops and starts again at the same address.
type remoteSignerAt struct {
	t      *testing.T
	srv    *signer.Server
	addr   string
	tlsCfg func() *http.Server
	hs     *http.Server
}

func (r *remoteSignerAt) start() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.hs = r.tlsCfg()
	go r.hs.ServeTLS(ln, "", "")
	r.t.Cleanup(func() { r.hs.Close() })
}

func (r *remoteSignerAt) stop() { r.hs.Close() }

// TestEngineSignsThroughFailoverOfRemoteSigners starts the engine from a
// config whose hot wallet signs through a failover group of two remote
// signers. Payouts complete with the primary down; with both down they
// wait with signer_unavailable and /readyz says so; when one is back they
// complete.
func TestEngineSignsThroughFailoverOfRemoteSigners(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key, _ := crypto.GenerateKey()
	chain, err := sandbox.Start(ctx, sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key, BlockTime: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	certFile, keyFile := selfSigned(t, dir)
	tlsCfg, err := serverTLS(certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	const token = "engine-to-signer-token-0123"
	payees := []common.Address{}
	for i := range 4 {
		payees = append(payees, common.BigToAddress(big.NewInt(int64(0xF1000+i))))
	}
	signers := make([]*remoteSignerAt, 2)
	for i := range signers {
		srv, err := signer.NewServer(signer.ServerConfig{Signer: signer.FromKey(key), Token: token, Limits: signer.Limits{
			ChainIDs: []uint64{chain.ChainID()}, Allow: payees, MaxFeePerTx: "100000000000000000",
			Assets: map[string]signer.AssetLimit{"native": {PerTx: "1000000", Daily: "100000000"}}}})
		if err != nil {
			t.Fatal(err)
		}
		signers[i] = &remoteSignerAt{t: t, srv: srv, addr: "127.0.0.1:0", tlsCfg: func() *http.Server {
			return &http.Server{Handler: srv, TLSConfig: tlsCfg.Clone(), ErrorLog: slog.NewLogLogger(slog.DiscardHandler, 0)}
		}}
		signers[i].start()
	}
	t.Setenv("SLUICE_SIGNER_TOKEN", token)
	apiKey := "sk_test_signers"
	y := fmt.Sprintf(`database: "sqlite:%s"
http: 127.0.0.1:0
data_dir: %q
chains:
  - name: sandbox
    chain_id: %d
    confirmations: 1
    upstreams: [{url: %q}]
    hot_wallets:
      - address: %q
        signer:
          type: failover
          retry_after: 300ms
          signers:
            - {type: remote, url: "https://%s", ca_file: %q, timeout: 2s}
            - {type: remote, url: "https://%s", ca_file: %q, timeout: 2s}
api_keys: [{name: t, sha256: "%x"}]
`, filepath.Join(dir, "sluice.db"), dir, chain.ChainID(), chain.RPCURL(), crypto.PubkeyToAddress(key.PublicKey).Hex(),
		signers[0].addr, certFile, signers[1].addr, certFile, httpapi.HashAPIKey(apiKey))
	cfg, err := config.Parse([]byte(y), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	eng, err := startEngine(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), engineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()

	pay := func(i int) string {
		return createWithRetry(t, eng.URL, apiKey, wanted{asset: "ETH", to: payees[i], amount: big.NewInt(int64(1000 + i))}, fmt.Sprintf("signers-%d", i))
	}
	waitAllCompleted(t, eng.URL(), apiKey, []string{pay(0)}, 30*time.Second)

	signers[0].stop() // the primary dies: the backup signs
	waitAllCompleted(t, eng.URL(), apiKey, []string{pay(1)}, 30*time.Second)

	signers[1].stop() // both down: the payout waits, visibly
	id := pay(2)
	waitForSigner(t, 30*time.Second, "payout waiting with signer_unavailable", func() bool {
		var p struct {
			Status string `json:"status"`
			Reason string `json:"status_reason"`
		}
		return getStatusJSON(t, eng.URL()+"/v1/payouts/"+id, apiKey, &p) == 200 && p.Status == "queued" && p.Reason == "signer_unavailable"
	})
	waitForSigner(t, 10*time.Second, "/readyz 503", func() bool { return getStatusJSON(t, eng.URL()+"/readyz", "", nil) == 503 })

	signers[1].start() // the backup is back, at the same address
	waitAllCompleted(t, eng.URL(), apiKey, []string{id}, 30*time.Second)
	waitForSigner(t, 10*time.Second, "/readyz 200", func() bool { return getStatusJSON(t, eng.URL()+"/readyz", "", nil) == 200 })
}

func waitForSigner(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s", what, timeout)
		}
	}
}

func getStatusJSON(t *testing.T, url, key string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if v != nil {
		jsonDecode(resp, v)
	}
	return resp.StatusCode
}
