package store_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

// clients is the number of concurrent API clients the accept figure is
// stated for.
const clients = 16

// BenchmarkCreatePayout measures accepting payouts as the API does: one
// CreatePayout with its event and idempotency record per payout, from 16
// goroutines.
func BenchmarkCreatePayout(b *testing.B) {
	b.Run("sqlite/group_commit", func(b *testing.B) { benchCreate(b, openSQLite(b)) })
	b.Run("sqlite/tx_per_call", func(b *testing.B) {
		prev := store.SetGroupCommit(false)
		db := openSQLite(b)
		store.SetGroupCommit(prev)
		benchCreate(b, db)
	})
	b.Run("postgres", func(b *testing.B) { benchCreate(b, openPostgres(b)) })
}

func benchCreate(b *testing.B, db *store.DB) {
	ids := &payout.IDGenerator{}
	var seq atomic.Int64
	b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			p, idem := acceptable(ids, seq.Add(1))
			if err := db.CreatePayout(ctx, p, idem); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payouts/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu_µs/op")
}

// cpuTime is the process's user and system CPU time so far: on a shared
// machine it says what an operation costs better than wall time does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// acceptable is a payout as the API makes it, with the idempotency record
// holding its response.
func acceptable(ids *payout.IDGenerator, n int64) (*payout.Payout, *payout.IdempotencyRecord) {
	now := time.Now()
	p := &payout.Payout{
		ID: ids.New("po_", now), Status: payout.StatusQueued, Chain: "sandbox", ChainID: 1337, Asset: "SUSD",
		To: common.BigToAddress(big.NewInt(n + 1)), Amount: big.NewInt(1_500_000 + n), ExternalID: "inv-" + strconv.FormatInt(n, 10),
		Metadata: map[string]string{"order": strconv.FormatInt(n, 10)}, Sender: common.HexToAddress("0x5a1ce0000000000000000000000000000000beef"),
		Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	body, _ := json.Marshal(p)
	return p, &payout.IdempotencyRecord{Scope: "key_bench", Key: "idem-" + strconv.FormatInt(n, 10),
		Fingerprint: "sha256:" + strings.Repeat("ab", 32), ResponseStatus: 201, ResponseBody: body}
}

// BenchmarkHundredThousand stores 100,000 payouts and then runs the reads
// the engine and the API make, reporting the process's peak RSS: the store
// never loads a whole table.
func BenchmarkHundredThousand(b *testing.B) {
	for range b.N {
		db := openSQLite(b)
		ids := &payout.IDGenerator{}
		ctx := context.Background()
		start := time.Now()
		const n = 100_000
		errs := make(chan error, clients)
		for w := range clients {
			go func() {
				var err error
				for i := w; i < n && err == nil; i += clients {
					p, idem := acceptable(ids, int64(i))
					err = db.CreatePayout(ctx, p, idem)
				}
				errs <- err
			}()
		}
		for range clients {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "payouts/s")
		readAll(b, db)
		b.ReportMetric(peakRSSMiB(), "peak_rss_MiB")
	}
}

// readAll runs the engine's and the API's reads over the stored payouts.
func readAll(b *testing.B, db *store.DB) {
	ctx := context.Background()
	counts, err := db.CountByStatus(ctx)
	if err != nil || counts[payout.StatusQueued] != 100_000 {
		b.Fatalf("CountByStatus = %v, %v", counts, err)
	}
	f := payout.ListFilter{Limit: 100}
	for pages := 0; ; pages++ {
		ps, more, err := db.ListPayouts(ctx, f)
		if err != nil {
			b.Fatal(err)
		}
		if !more {
			break
		}
		f.StartingAfter = ps[len(ps)-1].ID
	}
	if _, err := db.QueuedPayouts(ctx, 1337, common.HexToAddress("0x5a1ce0000000000000000000000000000000beef"), 500); err != nil {
		b.Fatal(err)
	}
	for after := int64(0); ; {
		evs, err := db.ListEvents(ctx, after, 1000)
		if err != nil {
			b.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		after = evs[len(evs)-1].Seq
	}
}

// peakRSSMiB reads the process's peak resident set size from /proc.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb float64
			_, _ = fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkPayoutLifecycle measures the store's share of paying: 16 API
// clients create payouts for four hot wallets while each wallet's sender
// claims its queued payouts, submits their attempts, marks the previous
// round's mined and finalizes the round's before, as the engine does with
// pipelined blocks. It reports the rate of payouts reaching completed and
// the CPU the process spent per payout, so that changes to the writer can
// be compared without a chain's noise.
func BenchmarkPayoutLifecycle(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchLifecycle(b, openSQLite(b)) })
	b.Run("postgres", func(b *testing.B) { benchLifecycle(b, openPostgres(b)) })
}

func benchLifecycle(b *testing.B, db *store.DB) {
	const wallets = 4
	senders := make([]common.Address, wallets)
	for i := range senders {
		senders[i] = common.BigToAddress(big.NewInt(0x5a1ce000 + int64(i)))
	}
	ids := &payout.IDGenerator{}
	var seq atomic.Int64
	n := int64(b.N)
	cpu0 := cpuTime()
	b.ResetTimer()
	errs := make(chan error, clients+wallets)
	for range clients {
		go func() {
			ctx := context.Background()
			for {
				i := seq.Add(1)
				if i > n {
					errs <- nil
					return
				}
				p, idem := acceptable(ids, i)
				p.Sender = senders[(i-1)%wallets]
				if err := db.CreatePayout(ctx, p, idem); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	share := func(w int) int64 { return (n + int64(wallets-1-w)) / wallets }
	for w, sender := range senders {
		go func() { errs <- drainSender(db, sender, share(w)) }()
	}
	for range clients + wallets {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "completed/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu_µs/payout")
}

// drainSender pays want payouts of one wallet through submitted, mined and
// completed, one stage a round behind the other, until all are completed.
func drainSender(db *store.DB, sender common.Address, want int64) error {
	ctx := context.Background()
	var nonce uint64
	var submitted, mined []*payout.Attempt
	for done := int64(0); done < want; {
		ps, err := db.QueuedPayouts(ctx, 1337, sender, 500)
		if err != nil {
			return err
		}
		if len(ps) == 0 && len(submitted) == 0 && len(mined) == 0 {
			time.Sleep(time.Millisecond) // the clients have not caught up
			continue
		}
		as := make([]*payout.Attempt, len(ps))
		for i, p := range ps {
			as[i] = &payout.Attempt{PayoutID: p.ID, ChainID: p.ChainID, Sender: sender, Nonce: nonce,
				TxHash: txHash(sender, nonce), RawTx: make([]byte, 110),
				GasLimit: 65_000, MaxFeePerGas: big.NewInt(30_000_000_000), MaxPriorityFeePerGas: big.NewInt(1_500_000_000)}
			nonce++
		}
		if err := db.SubmitAttempts(ctx, as); err != nil {
			return fmt.Errorf("submit: %w", err)
		}
		receipts := make([]payout.Receipt, len(submitted))
		for i, a := range submitted {
			receipts[i] = payout.Receipt{PayoutID: a.PayoutID, TxHash: a.TxHash, BlockNumber: a.Nonce + 1,
				BlockHash: common.BigToHash(big.NewInt(int64(a.Nonce) + 1)), GasUsed: 34_700,
				EffectiveGasPrice: big.NewInt(2_000_000_000), Success: true}
		}
		if err := db.MarkMined(ctx, receipts); err != nil {
			return fmt.Errorf("mark mined: %w", err)
		}
		final := make([]string, len(mined))
		for i, a := range mined {
			final[i] = a.PayoutID
		}
		if err := db.Finalize(ctx, final); err != nil {
			return fmt.Errorf("finalize: %w", err)
		}
		done += int64(len(final))
		submitted, mined = as, submitted
	}
	return nil
}

// txHash is a transaction hash unique to a wallet and nonce.
func txHash(sender common.Address, nonce uint64) common.Hash {
	var h common.Hash
	copy(h[:], sender[:])
	binary.BigEndian.PutUint64(h[24:], nonce)
	return h
}
