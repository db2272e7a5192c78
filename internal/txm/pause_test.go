package txm_test

import (
	"context"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/sandbox"
	"github.com/sluicepay/sluice/internal/store/storetest"
	"github.com/sluicepay/sluice/internal/txm"
)

// waitReason waits until a payout is queued waiting with reason, and
// returns it.
func (e *env) waitReason(id string, reason payout.Code, timeout time.Duration) *payout.Payout {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p, err := e.store.GetPayout(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if p.Status == payout.StatusQueued && p.Reason == reason {
			return p
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("payout %s is %s (%q: %s), not queued with %s", id, p.Status, p.Reason, p.ReasonDetail, reason)
		}
		e.mine(1)
	}
}

func TestPauseHoldsNewPayoutsAndLetsFlightsFinish(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		pauses := e.store.(payout.PauseStore)
		// Every first attempt is dropped, so the payout in flight when the
		// pause begins completes only through a fee bump: replacements of
		// transactions already broadcast go on while paused.
		node := e.droppingNode(firstAtEachNonce())
		s := e.senderWith(txm.Config{Owner: "a", Client: node, Pauses: pauses})
		s.Start(ctx)
		defer s.Stop()

		inFlight := e.create("ETH", common.HexToAddress("0x00000000000000000000000000000000000c0001"), big.NewInt(1e15))
		for deadline := time.Now().Add(10 * time.Second); len(e.attemptsOf(inFlight.ID)) == 0; {
			if time.Now().After(deadline) {
				t.Fatal("the first payout was never signed")
			}
			time.Sleep(10 * time.Millisecond)
		}
		global := &payout.Pause{ID: "pse_global", Scope: payout.PauseGlobal, Reason: "incident 7", CreatedBy: "key_ops"}
		if err := pauses.CreatePause(ctx, global); err != nil {
			t.Fatal(err)
		}
		eth := e.create("ETH", common.HexToAddress("0x00000000000000000000000000000000000c0002"), big.NewInt(2e15))
		susd := e.create("SUSD", common.HexToAddress("0x00000000000000000000000000000000000c0003"), big.NewInt(5_000_000))
		s.Wake()
		for _, p := range []*payout.Payout{eth, susd} {
			got := e.waitReason(p.ID, payout.ReasonPaused, 10*time.Second)
			if !strings.Contains(got.ReasonDetail, "pse_global") || !strings.Contains(got.ReasonDetail, "incident 7") {
				t.Errorf("payout %s detail %q, want it to name the pause and its reason", p.ID, got.ReasonDetail)
			}
		}
		// A paused payout can still be cancelled.
		dropped := e.create("ETH", common.HexToAddress("0x00000000000000000000000000000000000c0004"), big.NewInt(3e15))
		e.waitReason(dropped.ID, payout.ReasonPaused, 10*time.Second)
		if got, err := e.store.CancelPayout(ctx, dropped.ID); err != nil || got.Status != payout.StatusCancelled {
			t.Fatalf("cancel of a paused payout: %v, %v; want cancelled", got, err)
		}
		done := e.mineUntil([]string{inFlight.ID}, 30*time.Second)[inFlight.ID]
		if done.Status != payout.StatusCompleted || len(e.attemptsOf(inFlight.ID)) < 2 {
			t.Fatalf("payout in flight: %s with %d attempts, want completed by a fee bump during the pause",
				done.Status, len(e.attemptsOf(inFlight.ID)))
		}
		e.mine(3)
		for _, p := range []*payout.Payout{eth, susd, dropped} {
			if n := len(e.attemptsOf(p.ID)); n != 0 {
				t.Fatalf("payout %s has %d attempts while paused, want none", p.ID, n)
			}
		}

		// Narrow the pause to the token: the native payout goes, the token
		// payout waits, now naming the asset pause.
		asset := &payout.Pause{ID: "pse_susd", Scope: payout.PauseAsset, Chain: "sandbox", Asset: "SUSD", Reason: "token incident", CreatedBy: "cli"}
		if err := pauses.CreatePause(ctx, asset); err != nil {
			t.Fatal(err)
		}
		if _, err := pauses.ResumePause(ctx, global.ID, "key_ops"); err != nil {
			t.Fatal(err)
		}
		if got := e.mineUntil([]string{eth.ID}, 30*time.Second)[eth.ID]; got.Status != payout.StatusCompleted {
			t.Fatalf("native payout after the global pause ended: %s, want completed", got.Status)
		}
		if got := e.waitReason(susd.ID, payout.ReasonPaused, 5*time.Second); !strings.Contains(got.ReasonDetail, "pse_susd") {
			t.Errorf("token payout detail %q, want it to name pse_susd", got.ReasonDetail)
		}
		if n := len(e.attemptsOf(susd.ID)); n != 0 {
			t.Fatalf("token payout has %d attempts under the asset pause, want none", n)
		}
		if _, err := pauses.ResumePause(ctx, asset.ID, "cli"); err != nil {
			t.Fatal(err)
		}
		if got := e.mineUntil([]string{susd.ID}, 30*time.Second)[susd.ID]; got.Status != payout.StatusCompleted || got.Reason != "" {
			t.Fatalf("token payout after resume: %s %q, want completed", got.Status, got.Reason)
		}
	})
}

// TestAssetPauseDoesNotStarveOtherAssets queues more paused token payouts
// than a batch holds ahead of a native one: the native payout must still
// be read and paid while the token stays paused.
func TestAssetPauseDoesNotStarveOtherAssets(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		pauses := e.store.(payout.PauseStore)
		if err := pauses.CreatePause(ctx, &payout.Pause{ID: "pse_token", Scope: payout.PauseAsset, Chain: "sandbox", Asset: "SUSD",
			Reason: "token incident", CreatedBy: "cli"}); err != nil {
			t.Fatal(err)
		}
		var tokens []*payout.Payout
		for i := range 3 {
			tokens = append(tokens, e.create("SUSD", common.BigToAddress(big.NewInt(int64(0xd0001+i))), big.NewInt(1_000_000)))
		}
		native := e.create("ETH", common.HexToAddress("0x00000000000000000000000000000000000d00ff"), big.NewInt(1e15))
		s := e.senderWith(txm.Config{Owner: "a", Pauses: pauses, BatchSize: 2})
		s.Start(ctx)
		defer s.Stop()
		if got := e.mineUntil([]string{native.ID}, 30*time.Second)[native.ID]; got.Status != payout.StatusCompleted {
			t.Fatalf("native payout behind a full batch of paused token payouts: %s, want completed", got.Status)
		}
		for _, p := range tokens {
			if n := len(e.attemptsOf(p.ID)); n != 0 {
				t.Fatalf("paused token payout %s has %d attempts", p.ID, n)
			}
		}
		if got := e.waitReason(tokens[0].ID, payout.ReasonPaused, 5*time.Second); !strings.Contains(got.ReasonDetail, "pse_token") {
			t.Errorf("oldest token payout: detail %q, want it to name pse_token", got.ReasonDetail)
		}
	})
}

// BenchmarkPauseTakesEffect measures the time from a pause's commit until
// the sender's next round refuses to sign: each iteration commits a global
// pause, queues a payout and wakes the sender, and stops the clock when
// the payout is held with reason paused. The payout is then cancelled and
// the pause resumed, outside the clock.
func BenchmarkPauseTakesEffect(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchPause(b, "sqlite:"+filepath.Join(b.TempDir(), "sluice.db")) })
	b.Run("postgres", func(b *testing.B) { benchPause(b, storetest.PostgresURL(b)) })
}

func benchPause(b *testing.B, dbURL string) {
	key, _ := crypto.GenerateKey()
	e := newEnvWith(b, key, dbURL, sandbox.Config{DataDir: b.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key})
	ctx := context.Background()
	pauses := e.store.(payout.PauseStore)
	s := e.senderWith(txm.Config{Owner: "bench", Pauses: pauses, Poll: 250 * time.Millisecond})
	s.Start(ctx)
	defer s.Stop()
	to := common.HexToAddress("0x00000000000000000000000000000000000c00ff")
	var worst, commitT, createT time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		p := &payout.Pause{ID: fmt.Sprintf("pse_bench_%d", i), Scope: payout.PauseGlobal, Reason: "bench", CreatedBy: "cli"}
		b.StartTimer()
		start := time.Now()
		if err := pauses.CreatePause(ctx, p); err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		po := e.create("ETH", to, big.NewInt(1))
		queued := time.Now()
		s.Wake()
		for {
			got, err := e.store.GetPayout(ctx, po.ID)
			if err != nil {
				b.Fatal(err)
			}
			if got.Reason == payout.ReasonPaused {
				break
			}
			if got.Status != payout.StatusQueued {
				b.Fatalf("payout %s signed (%s) under a pause", po.ID, got.Status)
			}
			time.Sleep(200 * time.Microsecond)
		}
		worst = max(worst, time.Since(start))
		commitT += committed.Sub(start)
		createT += queued.Sub(committed)
		b.StopTimer()
		if _, err := e.store.CancelPayout(ctx, po.ID); err != nil {
			b.Fatal(err)
		}
		if _, err := pauses.ResumePause(ctx, p.ID, "cli"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(commitT.Microseconds())/1000/float64(b.N), "commit-ms")
	b.ReportMetric(float64(createT.Microseconds())/1000/float64(b.N), "create-ms")
}
