package main

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/payout"
)

// The shape of TestChaos.
const (
	chaosPayouts       = 2000
	chaosMinKills      = 20
	chaosCancels       = 20 // every 100th payout is cancelled soon after it is created
	chaosBlockTime     = time.Second
	chaosGasLimit      = 10_000_000
	chaosConfirmations = 5
	chaosReorgDepth    = 3 // below the confirmations: no completed payout is reorged
	chaosCreateEvery   = 35 * time.Millisecond
)

// TestChaos proves issue 4's promise end to end, with real processes: a
// payout is paid exactly once and always reaches a terminal state, whatever
// happens around the engine at the same time.
//
// The engine is `sluice serve` (built by buildBinary, SQLite in a temp dir)
// against a dev chain that makes a block a second, reached through two
// toxiproxy proxies (the node itself is a fallback upstream). While 2,000
// payouts (ETH and SUSD, low, standard and high priority, every 100th
// cancelled soon after) are created through the API with idempotency keys:
//
//   - the engine is SIGKILLed at random, at least 20 times, and restarted;
//   - the proxies flap between latency, connection resets, refused
//     connections and health;
//   - two surges of competing transactions keep blocks full, so the base
//     fee climbs 12.5% a block, the engine's earlier transactions become
//     underpriced, its queue stalls and it replaces them;
//   - the chain is reorganised (chaosReorgDepth blocks, fewer than the
//     confirmations) under payouts waiting for their confirmations: once
//     with the engine watching, once while it is down, so that it finds
//     at start payouts it had seen mined in blocks that are gone.
//
// Then, checked from the chain itself: every recipient holds exactly what
// it was sent (nothing for a cancelled payout), the hot wallet has no nonce
// gap and used exactly the nonces Sluice stored, every payout is terminal,
// its mined transaction is one of its attempts at its nonce, every
// replacement and reorg shows in its attempts and events, and `sluice
// reconcile` finds the books matching the chain over the whole run.
//
// SLUICE_CHAOS_SEED replays a run's randomness (the kill times, faults and
// payouts; not the scheduling); SLUICE_CHAOS_LOG_DIR keeps every engine's log.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a dev chain, toxiproxy and the engine for about three minutes")
	}
	began := time.Now()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_CHAOS_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (SLUICE_CHAOS_SEED replays it)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	bin := buildBinary(t)
	rig := newChaosRig(t)
	eng := &chaosEngine{t: t, bin: bin, args: []string{"serve", "--config", rig.cfgPath, "--http", "127.0.0.1:0"}}
	eng.start()
	defer func() {
		eng.saveLogs()
		if t.Failed() {
			for _, l := range append(eng.grep("level=ERROR", 20), eng.grep("level=WARN", 10)...) {
				t.Log(l)
			}
		}
	}()
	t.Logf("setup took %s; hot wallet nonce %d before the engine", time.Since(began).Round(time.Millisecond), rig.preNonce)
	t0 := time.Now() // the schedule of surges and reorgs counts from here

	want := chaosPlan(rng)
	ids := make([]string, chaosPayouts)
	var created atomic.Int64
	var cancelMu sync.Mutex
	cancelled := map[int]int{} // payout index → HTTP status of the cancel
	var chaos sync.WaitGroup   // everything that runs while the engine is killed
	ctx, stopChaos := context.WithCancel(context.Background())
	defer stopChaos()

	var faultsSet, rivalTxs int
	var reorged [][]common.Hash
	chaos.Go(func() { faultsSet = rig.flapFaults(ctx, seed) })
	chaos.Go(func() {
		for _, s := range []struct{ at, length time.Duration }{{5 * time.Second, 22 * time.Second}, {45 * time.Second, 15 * time.Second}} {
			if !sleepCtx(ctx, s.at-time.Since(t0)) {
				return
			}
			from := rig.baseFee()
			n := rig.surge(ctx, s.length)
			rivalTxs += n
			t.Logf("surge of competing traffic: %d transactions in %s, base fee %s -> %s wei", n, s.length, from, rig.baseFee())
		}
	})
	chaos.Go(func() {
		// The first reorg happens with the engine up for a few seconds
		// around it (no kill meanwhile), so that it sees payouts mined and
		// then reorged away; the second while it is down (killed just
		// before), so that it finds at start payouts it had seen mined in
		// blocks that are gone.
		for k, at := range []time.Duration{32 * time.Second, 70 * time.Second} {
			if !sleepCtx(ctx, at-time.Since(t0)) {
				return
			}
			var txs []common.Hash
			if k == 0 {
				eng.withoutKills(func() {
					sleepCtx(ctx, 2*time.Second)
					rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
					txs = rig.reorg(rctx, 20, nil)
					cancel()
					sleepCtx(ctx, 3*time.Second)
				})
			} else {
				eng.withoutKills(func() {
					// reorg calls its before hook on every try, and
					// not at all when the chaos ends first: restart
					// only an engine this killed, and kill it once.
					killed := false
					txs = rig.reorg(ctx, 1, func() {
						if !killed {
							eng.kill()
							killed = true
						}
					})
					if killed {
						eng.start()
					}
				})
			}
			if len(txs) > 0 {
				reorged = append(reorged, txs)
				t.Logf("reorg: dropped the top %d blocks, with %d transactions of the hot wallet", chaosReorgDepth, len(txs))
			}
		}
	})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		for sleepCtx(ctx, 5*time.Second) {
			chaosProgress(t, eng, rig, created.Load(), began)
		}
	}()

	var creators sync.WaitGroup
	work := make(chan int)
	for range 64 { // enough to keep the pace while the engine is down
		creators.Go(func() {
			for i := range work {
				id := createWithRetry(t, eng.URL, rig.apiKey, want[i], fmt.Sprintf("chaos-%d", i))
				ids[i] = id
				created.Add(1)
				if i%(chaosPayouts/chaosCancels) == 50 && id != "" {
					delay := time.Duration(i%7) * 400 * time.Millisecond
					chaos.Go(func() {
						time.Sleep(delay)
						code := apiCancel(eng, rig.apiKey, id)
						cancelMu.Lock()
						cancelled[i] = code
						cancelMu.Unlock()
					})
				}
			}
		})
	}
	go func() {
		defer close(work)
		tick := time.NewTicker(chaosCreateEvery)
		defer tick.Stop()
		for i := range chaosPayouts {
			select {
			case <-ctx.Done(): // the test failed early
				return
			case <-tick.C:
			}
			work <- i
		}
	}()
	defer func() { // no goroutine may log after the test ends
		stopChaos()
		creators.Wait()
		chaos.Wait()
		<-progressDone
	}()
	allCreated := make(chan struct{})
	creationDone := allCreated
	go func() { creators.Wait(); close(allCreated) }()

	// The kills: at random moments while payouts are created and sent,
	// until all are created and there were enough.
	for done := false; !done || eng.killCount() < chaosMinKills; {
		select {
		case <-allCreated:
			done, allCreated = true, nil
		case <-time.After(time.Duration(1000+rng.IntN(2000)) * time.Millisecond):
			eng.killAndRestart()
		}
		if time.Since(t0) > 140*time.Second {
			t.Errorf("chaos phase still running after %s (%d kills, %d created): giving up on more kills", time.Since(began), eng.killCount(), created.Load())
			<-creationDone
			break
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	stopChaos()
	chaos.Wait()
	<-progressDone
	t.Logf("chaos over after %s: %d kills (engine %s), %d faults set, %d competing transactions, %d reorgs; waiting for every payout to end",
		time.Since(t0).Round(time.Second), eng.killCount(), eng.startTimes(), faultsSet, rivalTxs, len(reorged))

	chaosWaitTerminal(t, eng, rig, began, 120*time.Second)
	for _, p := range eng.panics() {
		t.Errorf("an engine crashed on its own:\n%s", p)
	}
	got := chaosCollect(t, eng, rig.apiKey, ids)
	eng.stop()
	db := readChaosDB(t, rig.dbPath)

	expect := slices.Clone(want)
	for i, code := range cancelled {
		if got[i].p.Status == string(payout.StatusCancelled) {
			expect[i].amount = new(big.Int)
		}
		t.Logf("cancel of payout %d (%s): HTTP %d, ended %s", i, ids[i], code, got[i].p.Status)
	}
	checkBalances(t, devInfo{RPCURL: rig.chain.RPCURL(), Assets: map[string]assetInfo{"SUSD": {Address: ptr(rig.chain.SUSD().Hex())}}}, expect)
	chaosCheckPayouts(t, rig, got, cancelled)
	chaosCheckNonces(t, rig, db)
	checkReconciledFile(t, rig.cfgPath, rig.chain.RPCURL(), chaosConfirmations, 1, rig.opened)
	replaced, reorgedPayouts := chaosCheckHistory(t, got, db, reorged)
	if eng.killCount() < chaosMinKills {
		t.Errorf("the engine was killed %d times, want at least %d", eng.killCount(), chaosMinKills)
	}
	if replaced == 0 {
		t.Errorf("no payout has more than one attempt: the surges of competing traffic caused no replacement")
	}
	if len(reorged) == 0 {
		t.Errorf("no reorg dropped a transaction of the hot wallet")
	}
	if reorgedPayouts == 0 {
		t.Errorf("no payout.reorged event: the engine never saw a mined payout leave the chain")
	}
	t.Logf("done in %s: %d payouts, %d kills, %d payouts replaced (%d replacements logged), %d reorgs dropping %d hot-wallet transactions, %d payouts reorged, %d faults set",
		time.Since(began).Round(time.Second), chaosPayouts, eng.killCount(), replaced, eng.logged("replacement signed"),
		len(reorged), countAll(reorged), reorgedPayouts, faultsSet)
}

// chaosPlan is the payouts: every recipient distinct, ETH and SUSD in turn,
// the priorities in turn.
func chaosPlan(rng *rand.Rand) []wanted {
	priorities := []string{"low", "standard", "high"}
	want := make([]wanted, chaosPayouts)
	for i := range want {
		w := wanted{asset: "ETH", to: common.BigToAddress(big.NewInt(int64(0xCA0000 + i))), amount: big.NewInt(1e12 + rng.Int64N(1e12)),
			priority: priorities[i%3]}
		if i%2 == 1 {
			w.asset, w.amount = "SUSD", big.NewInt(1+rng.Int64N(5e6))
		}
		want[i] = w
	}
	return want
}

// sleepCtx sleeps d, or less when ctx ends; it reports whether ctx is live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(max(d, 0)):
		return true
	}
}

func countAll(xs [][]common.Hash) int {
	n := 0
	for _, x := range xs {
		n += len(x)
	}
	return n
}

// chaosProgress logs payouts by status, kills, replacements and reorgs.
func chaosProgress(t *testing.T, eng *chaosEngine, rig *chaosRig, created int64, began time.Time) {
	var st struct {
		Payouts map[string]int64 `json:"payouts"`
	}
	counts := "engine unreachable"
	if err := apiGet(eng, rig.apiKey, "/v1/status", &st); err == nil {
		counts = fmt.Sprint(st.Payouts)
	}
	t.Logf("%3ds: %d created, %s, %d kills, %d replacements and %d reorged payouts logged, base fee %s wei",
		int(time.Since(began).Seconds()), created, counts, eng.killCount(), eng.logged("replacement signed"),
		eng.logged("payout's block was reorged away"), rig.baseFee())
}

// chaosWaitTerminal waits until no payout is in flight.
func chaosWaitTerminal(t *testing.T, eng *chaosEngine, rig *chaosRig, began time.Time, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := time.Now()
	for {
		var st struct {
			Payouts map[string]int64 `json:"payouts"`
			Oldest  *struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"oldest_unfinished_payout"`
		}
		if gone, err := eng.exited(); gone {
			// A supervisor would restart it: do so, so that the other
			// checks still run; the crash itself fails the test.
			t.Errorf("the engine exited on its own (%v); restarting it", err)
			eng.start()
		}
		if err := apiGet(eng, rig.apiKey, "/v1/status", &st); err != nil {
			t.Fatal(err)
		}
		var inFlight int64
		for s, n := range st.Payouts {
			if !payout.Status(s).Terminal() {
				inFlight += n
			}
		}
		if inFlight == 0 {
			return
		}
		if time.Now().After(deadline) {
			var p chaosPayout
			if st.Oldest != nil {
				_ = apiGet(eng, rig.apiKey, "/v1/payouts/"+st.Oldest.ID, &p)
			}
			t.Fatalf("%d payouts still in flight %s after the chaos (%v); the oldest: %+v reason %v detail %v",
				inFlight, timeout, st.Payouts, p, deref(p.Reason), deref(p.Detail))
		}
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			chaosProgress(t, eng, rig, chaosPayouts, began)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// chaosResult is one payout and its attempts, as the API reports them.
type chaosResult struct {
	p        chaosPayout
	attempts []chaosAttempt
}

func chaosCollect(t *testing.T, eng *chaosEngine, key string, ids []string) []chaosResult {
	t.Helper()
	out := make([]chaosResult, len(ids))
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(ids); i = int(next.Add(1) - 1) {
				var list struct {
					Data []chaosAttempt `json:"data"`
				}
				if err := apiGet(eng, key, "/v1/payouts/"+ids[i], &out[i].p); err != nil {
					t.Errorf("payout %d %s: %v", i, ids[i], err)
				}
				if err := apiGet(eng, key, "/v1/payouts/"+ids[i]+"/attempts", &list); err != nil {
					t.Errorf("attempts of payout %d %s: %v", i, ids[i], err)
				}
				out[i].attempts = list.Data
			}
		})
	}
	wg.Wait()
	return out
}

// chaosCheckPayouts checks every payout against the chain: completed (or
// cancelled, for those the test cancelled), mined by one of its attempts,
// all at its nonce, and the mined transaction is in a canonical block.
func chaosCheckPayouts(t *testing.T, rig *chaosRig, got []chaosResult, cancelled map[int]int) {
	t.Helper()
	ctx := context.Background()
	cl := rig.chain.Client()
	bad := 0
	report := func(i int, format string, args ...any) {
		if bad++; bad <= 30 {
			t.Errorf("payout %d %s: %s", i, got[i].p.ID, fmt.Sprintf(format, args...))
		}
	}
	for i, r := range got {
		p := r.p
		_, asked := cancelled[i]
		switch {
		case p.Status == string(payout.StatusCompleted):
		case p.Status == string(payout.StatusCancelled) && asked:
		default:
			report(i, "ended %s (reason %q: %s), want completed", p.Status, deref(p.Reason), deref(p.Detail))
			continue
		}
		if p.TxHash == nil {
			if p.Status != string(payout.StatusCancelled) || len(r.attempts) > 0 {
				report(i, "%s without a transaction hash, %d attempts", p.Status, len(r.attempts))
			}
			continue
		}
		var mined *chaosAttempt
		for k, a := range r.attempts {
			if p.Nonce == nil || a.Nonce != *p.Nonce {
				report(i, "attempt %s at nonce %d, the payout's nonce is %v", a.TxHash, a.Nonce, p.Nonce)
			}
			if strings.EqualFold(a.TxHash, *p.TxHash) {
				mined = &r.attempts[k]
			}
		}
		if mined == nil {
			report(i, "mined transaction %s is not among its %d attempts", *p.TxHash, len(r.attempts))
			continue
		}
		wantKind := "transfer"
		if p.Status == string(payout.StatusCancelled) {
			wantKind = "cancel"
		}
		if mined.Kind != wantKind {
			report(i, "%s by a %s attempt %s", p.Status, mined.Kind, mined.TxHash)
		}
		rcpt, err := cl.TransactionReceipt(ctx, common.HexToHash(*p.TxHash))
		if err != nil {
			report(i, "no receipt on chain for its transaction %s: %v", *p.TxHash, err)
			continue
		}
		if rcpt.Status != 1 {
			report(i, "its transaction %s reverted", *p.TxHash)
		}
		h, err := cl.HeaderByNumber(ctx, rcpt.BlockNumber)
		if err != nil || h.Hash() != rcpt.BlockHash {
			report(i, "its transaction %s is in block %s, not canonical", *p.TxHash, rcpt.BlockHash)
		}
	}
	if bad > 30 {
		t.Errorf("... %d payouts wrong in all", bad)
	}
}

// chaosCheckNonces checks the hot wallet on chain against the nonces Sluice
// stored: no gap on chain, none in the table, and nothing else sent.
func chaosCheckNonces(t *testing.T, rig *chaosRig, db chaosDB) {
	t.Helper()
	ctx := context.Background()
	cl := rig.chain.Client()
	hot := crypto.PubkeyToAddress(rig.hot.PublicKey)
	latest, err := cl.NonceAt(ctx, hot, nil)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := cl.PendingNonceAt(ctx, hot)
	if err != nil {
		t.Fatal(err)
	}
	if latest != pending {
		t.Errorf("hot wallet: nonce %d latest, %d pending: transactions are still waiting (a gap or a stuck one)", latest, pending)
	}
	if db.nonceRows == 0 || uint64(db.minNonce) != rig.preNonce || uint64(db.maxNonce)+1 != latest ||
		uint64(db.nonceRows) != latest-rig.preNonce {
		t.Errorf("hot wallet: chain nonce %d (%d used before the engine); Sluice stored %d nonces from %d to %d: want every nonce from %d to %d once",
			latest, rig.preNonce, db.nonceRows, db.minNonce, db.maxNonce, rig.preNonce, latest-1)
	}
}

// chaosCheckHistory checks that every replacement and reorg shows in the
// payout's history: a payout.replaced event per attempt after the first,
// every reorged payout still lists the attempt that was mined, and every
// hot-wallet transaction a reorg dropped is an attempt of a payout. It
// returns how many payouts were replaced and how many were reorged.
func chaosCheckHistory(t *testing.T, got []chaosResult, db chaosDB, dropped [][]common.Hash) (replaced, reorged int) {
	t.Helper()
	attemptOf := map[common.Hash]int{}
	for i, r := range got {
		for _, a := range r.attempts {
			attemptOf[common.HexToHash(a.TxHash)] = i
		}
		ev := db.events[r.p.ID]
		if len(r.attempts) > 1 {
			replaced++
		}
		if n := ev[payout.EventReplaced]; n != max(len(r.attempts)-1, 0) {
			t.Errorf("payout %d %s: %d attempts but %d payout.replaced events", i, r.p.ID, len(r.attempts), n)
		}
		if ev[payout.EventReorged] > 0 {
			reorged++
			if len(r.attempts) == 0 || ev["payout.confirming"] < ev[payout.EventReorged]+1 {
				t.Errorf("payout %d %s: reorged %d times, but %d attempts and %d payout.confirming events",
					i, r.p.ID, ev[payout.EventReorged], len(r.attempts), ev["payout.confirming"])
			}
		}
	}
	for k, txs := range dropped {
		seen := 0
		for _, h := range txs {
			i, ok := attemptOf[h]
			if !ok {
				t.Errorf("transaction %s of the hot wallet was reorged out but is no payout's attempt", h.Hex())
				continue
			}
			if db.events[got[i].p.ID][payout.EventReorged] > 0 {
				seen++
			}
		}
		t.Logf("reorg %d dropped %d transactions of the hot wallet; %d of their payouts have a payout.reorged event (the others were not yet seen mined)", k+1, len(txs), seen)
	}
	return replaced, reorged
}
