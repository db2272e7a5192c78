package main

import (
	"context"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// TestEngineApprovalsAndBreaker runs the engine on a dev chain: a payout
// held for approval is paid once approved, a held one once its hold ends,
// and an outflow breaker pauses the asset until an operator resumes it.
func TestEngineApprovalsAndBreaker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key, _ := crypto.GenerateKey()
	chain, err := sandbox.Start(ctx, sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key, BlockTime: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.Close() })
	wallet := crypto.PubkeyToAddress(key.PublicKey)
	apiKey := "sk_test_approvals"
	cfg := sandboxConfig(t, chain, apiKey, handedIn(wallet))
	cfg.APIKeys[0].Name = "ops"
	cfg.Approvals = config.Approvals{Sweep: 200 * time.Millisecond, Groups: []config.ApproverGroup{{Name: "treasury", Approvers: []string{"alice"}}}}
	cfg.Breakers = []config.Breaker{{Name: "susd-hourly", Scope: "asset", Chain: "sandbox", Asset: "SUSD", Window: time.Hour,
		MaxOutflow: "2500"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	eng, err := startEngine(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)),
		engineOptions{Signers: map[common.Address]payout.Signer{wallet: evm.KeySigner{Key: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	c := client.New(eng.URL(), apiKey)
	if _, err := c.PutPolicy(ctx, `version: 1
rules:
  - {name: small-held, when: 'amount < 10', action: hold, hold_for: 1s}
  - {name: treasury, when: 'true', action: require_approval, approvals: {quorum: 1, group: treasury}}
default: deny
`); err != nil {
		t.Fatal(err)
	}
	k, err := c.CreateAPIKey(ctx, client.CreateAPIKeyParams{Name: "alice", Scopes: []string{"approver"}})
	if err != nil {
		t.Fatal(err)
	}
	alice := client.New(eng.URL(), k.Secret)
	create := func(amount int64) string {
		t.Helper()
		p, err := c.CreatePayout(ctx, client.CreatePayoutParams{Chain: "sandbox", Asset: "SUSD",
			To: common.BigToAddress(big.NewInt(0xCAFE00 + amount)).Hex(), Amount: big.NewInt(amount)}, "")
		if err != nil || p.Status != client.StatusPendingApproval {
			t.Fatalf("create %d: %+v, %v; want pending_approval", amount, p, err)
		}
		return p.ID
	}

	held := create(5)
	approved := create(1000)
	time.Sleep(500 * time.Millisecond)
	if p, _ := c.GetPayout(ctx, approved); p.Status != client.StatusPendingApproval {
		t.Fatalf("unapproved payout is %s, want pending_approval", p.Status)
	}
	if _, err := alice.ApprovePayout(ctx, approved, "invoice 7"); err != nil {
		t.Fatal(err)
	}
	waitAllCompleted(t, eng.URL(), apiKey, []string{held, approved}, 60*time.Second)

	// 1005 SUSD units so far; 2000 more passes the breaker's 2500.
	over := create(2000)
	if _, err := alice.ApprovePayout(ctx, over, ""); err != nil {
		t.Fatal(err)
	}
	waitAllCompleted(t, eng.URL(), apiKey, []string{over}, 60*time.Second)
	var pause *client.Pause
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ps, err := c.ListPauses(ctx)
		if err == nil && len(ps.Data) == 1 {
			pause = ps.Data[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the breaker did not pause SUSD: %+v, %v", ps, err)
		}
	}
	if pause.Scope != "asset" || pause.Asset != "SUSD" || pause.CreatedBy != "breaker:susd-hourly" || !strings.Contains(pause.Reason, "outflow 3005 SUSD") {
		t.Fatalf("pause = %+v", pause)
	}
	// While paused, an approved payout waits queued; resumed, it is paid.
	waiting := create(1)
	time.Sleep(2 * time.Second) // the hold ends; the pause holds it
	if p, _ := c.GetPayout(ctx, waiting); p.Status != client.StatusQueued {
		t.Fatalf("payout under the breaker's pause is %s, want queued", p.Status)
	}
	if _, err := c.ResumePause(ctx, pause.ID); err != nil {
		t.Fatal(err)
	}
	waitAllCompleted(t, eng.URL(), apiKey, []string{waiting}, 60*time.Second)
}
