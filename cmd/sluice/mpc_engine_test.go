package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/sandbox"
	"github.com/sluicepay/sluice/internal/signer"
)

// TestEnginePaysThroughMPCParties: a hot wallet whose key is the 2-of-3
// group of three `sluice mpc party` processes pays ETH and SUSD payouts
// through the engine. The engine starts while every party is down: the
// payout waits with signer_unavailable and /readyz says so, and once the
// parties run the engine reaches them and pays. Each party is told the payout every transaction is
// for and checks the transaction pays exactly that before it takes part,
// so this also shows that what the sender tells matches what it signs.
func TestEnginePaysThroughMPCParties(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	ctx := context.Background()
	bin := buildBinary(t)
	dir := t.TempDir()
	mpcPKI(t, dir, signer.MPCPartyCommonName(1), signer.MPCPartyCommonName(2), signer.MPCPartyCommonName(3), "sluice-engine")
	t.Setenv("SLUICE_MPC_PASSPHRASE", "mpc-test-passphrase")
	// The parties' addresses are picked now; the processes start later,
	// after the engine: it starts with its signer unreachable.
	var parties []config.MPCParty
	var listen []string
	for i := 1; i <= 3; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listen = append(listen, ln.Addr().String())
		ln.Close()
		parties = append(parties, config.MPCParty{URL: "https://" + listen[i-1], Index: i})
	}
	startParties := func() {
		for i := 1; i <= 3; i++ {
			name := signer.MPCPartyCommonName(i)
			p, _ := startProc(t, bin, "Sluice MPC party", "mpc", "party", "--share", fmt.Sprintf("../../internal/signer/testdata/mpc/share-%d.json", i),
				"--listen", listen[i-1], "--tls-cert", filepath.Join(dir, name+".pem"), "--tls-key", filepath.Join(dir, name+"-key.pem"),
				"--client-ca", filepath.Join(dir, "ca.pem"), "--engine-cn", "sluice-engine")
			t.Cleanup(p.stop)
		}
	}
	share, err := signer.OpenMPCShare("../../internal/signer/testdata/mpc/share-1.json", "mpc-test-passphrase")
	if err != nil {
		t.Fatal(err)
	}
	group := share.Group().Address

	// A dev chain whose genesis wallet funds the group's address.
	key, _ := crypto.GenerateKey()
	chain, err := sandbox.Start(ctx, sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key, BlockTime: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	eth, err := ethclient.Dial(chain.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	chainID := big.NewInt(int64(chain.ChainID()))
	ls := types.LatestSignerForChainID(chainID)
	susd := chain.SUSD()
	n0, err := eth.PendingNonceAt(ctx, crypto.PubkeyToAddress(key.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	fund := []*types.Transaction{
		types.MustSignNewTx(key, ls, &types.DynamicFeeTx{ChainID: chainID, Nonce: n0, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(50e9),
			Gas: 21000, To: &group, Value: new(big.Int).Mul(big.NewInt(10), big.NewInt(1e18))}),
		types.MustSignNewTx(key, ls, &types.DynamicFeeTx{ChainID: chainID, Nonce: n0 + 1, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(50e9),
			Gas: 100_000, To: &susd, Data: append(append([]byte{0xa9, 0x05, 0x9c, 0xbb}, common.LeftPadBytes(group[:], 32)...),
				common.LeftPadBytes(big.NewInt(1_000_000_000).Bytes(), 32)...)}),
	}
	for _, tx := range fund {
		if err := eth.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	waitForSigner(t, 30*time.Second, "the group funded", func() bool {
		r, err := eth.TransactionReceipt(ctx, fund[1].Hash())
		return err == nil && r.Status == 1
	})

	apiKey := "sk_test_mpc_engine"
	cfg := sandboxConfig(t, chain, apiKey, config.HotWallet{Address: group.Hex(), Signer: config.Signer{Type: "mpc",
		SignerBackends: config.SignerBackends{Parties: parties, TLS: config.MPCTLS{Cert: filepath.Join(dir, "sluice-engine.pem"),
			Key: filepath.Join(dir, "sluice-engine-key.pem"), CA: filepath.Join(dir, "ca.pem")}}}})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	eng, err := startEngine(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), engineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	payees := []common.Address{common.HexToAddress("0x00000000000000000000000000000000000c0001"), common.HexToAddress("0x00000000000000000000000000000000000c0002")}
	// Every party down: the engine started all the same; the payout waits.
	first := createWithRetry(t, eng.URL, apiKey, wanted{asset: "ETH", to: payees[0], amount: big.NewInt(123_456_789)}, "mpc-eth")
	waitForSigner(t, 30*time.Second, "the payout waiting with signer_unavailable", func() bool {
		var p struct {
			Status string `json:"status"`
			Reason string `json:"status_reason"`
		}
		return getStatusJSON(t, eng.URL()+"/v1/payouts/"+first, apiKey, &p) == 200 && p.Status == "queued" && p.Reason == "signer_unavailable"
	})
	if code := getStatusJSON(t, eng.URL()+"/readyz", "", nil); code != 503 {
		t.Errorf("/readyz with every MPC party down: %d, want 503", code)
	}
	startParties() // the engine reaches them on its next try and pays
	ids := []string{first,
		createWithRetry(t, eng.URL, apiKey, wanted{asset: "SUSD", to: payees[1], amount: big.NewInt(4_200_000)}, "mpc-susd"),
	}
	waitAllCompleted(t, eng.URL(), apiKey, ids, 90*time.Second)
	if got, _ := eth.BalanceAt(ctx, payees[0], nil); got.Cmp(big.NewInt(123_456_789)) != 0 {
		t.Errorf("the ETH payee holds %s wei, want 123456789", got)
	}
	if got := susdBalance(t, eth, susd, payees[1]); got.Cmp(big.NewInt(4_200_000)) != 0 {
		t.Errorf("the SUSD payee holds %s, want 4200000", got)
	}
}
