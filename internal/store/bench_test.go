package store_test

import (
	"context"
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
