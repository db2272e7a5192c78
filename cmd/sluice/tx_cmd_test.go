package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/big"
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

// TestTxExportRebroadcastTrace runs the engine in process against a dev
// chain that mines only on demand, so a payout stays submitted: export
// prints its signed transaction, rebroadcast sends it again (also to an
// extra endpoint), trace shows it pending, then mined, on every upstream.
func TestTxExportRebroadcastTrace(t *testing.T) {
	ctx := context.Background()
	key, _ := crypto.GenerateKey()
	chain, err := sandbox.Start(ctx, sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	wallet := crypto.PubkeyToAddress(key.PublicKey)
	apiKey := "sk_test_tx"
	eighteen := uint8(18)
	cfg := &config.Config{
		Database: "sqlite:" + filepath.Join(t.TempDir(), "sluice.db"), HTTP: "127.0.0.1:0", DataDir: t.TempDir(),
		Chains: []config.Chain{{Name: "sandbox", ChainID: chain.ChainID(), Confirmations: 1,
			Upstreams: []config.Upstream{{URL: chain.RPCURL()}}, NativeSymbol: "ETH", NativeDecimals: &eighteen,
			HotWallets: []config.HotWallet{{Address: wallet.Hex(), Signer: config.Signer{Type: "keystore", Keystore: "-"}}}}},
		APIKeys: []config.APIKey{{Name: "t", SHA256: fmt.Sprintf("%x", httpapi.HashAPIKey(apiKey))}},
	}
	eng, err := startEngine(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)),
		engineOptions{Signers: map[common.Address]payout.Signer{wallet: evm.KeySigner{Key: key}}})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	to := common.HexToAddress("0x00000000000000000000000000000000000fEE01")
	id := createWithRetry(t, eng.URL, apiKey, wanted{asset: "ETH", to: to, amount: big.NewInt(42)}, "tx-1")
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		full := append(args, "--api-url", eng.URL(), "--api-key", apiKey)
		err := runTx(ctx, full, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	// Wait until the payout is signed and stored.
	var raw string
	for deadline := time.Now().Add(10 * time.Second); ; {
		out, err := run("export", id)
		if err == nil {
			raw = strings.TrimSpace(out)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("export never found a signed transaction: %v %s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tx, err := decodeRaw(raw)
	if err != nil || *tx.To() != to || tx.Value().Int64() != 42 {
		t.Fatalf("exported transaction = %v, %v; want 42 wei to %s", tx, err, to.Hex())
	}
	if out, err := run("rebroadcast", id, "--to", chain.RPCURL()); err != nil || strings.Count(out, " ok") != 2 {
		t.Fatalf("rebroadcast = %v\n%s", err, out)
	}
	out, err := run("trace", id, "--rpc", chain.RPCURL())
	if err != nil || !strings.Contains(out, "pending") || !strings.Contains(out, tx.Hash().Hex()) {
		t.Fatalf("trace of a pending payout = %v\n%s", err, out)
	}
	chain.Commit()
	out, err = run("trace", tx.Hash().Hex(), "--rpc", chain.RPCURL())
	if err != nil || !strings.Contains(out, "mined") {
		t.Fatalf("trace of a mined transaction = %v\n%s", err, out)
	}
	if _, err := run("trace", id); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("trace without upstreams: err = %v, want it to ask for --config", err)
	}
}
