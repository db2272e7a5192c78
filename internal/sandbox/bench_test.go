package sandbox

import (
	"context"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
)

// BenchmarkRestart measures Start on a data dir whose journal holds
// SLUICE_BENCH_BLOCKS blocks (default 5,000): all empty, or with every 10th
// block carrying 50 ETH and 50 SUSD transfers. Building the chain is not
// timed. cpu-ms/op is the process's CPU time (user+sys) per restart, which a
// busy shared machine distorts less than wall time.
//
//	go test -run '^$' -bench BenchmarkRestart -benchtime 3x ./internal/sandbox
func BenchmarkRestart(b *testing.B) {
	blocks := 5000
	if s := os.Getenv("SLUICE_BENCH_BLOCKS"); s != "" {
		blocks, _ = strconv.Atoi(s)
	}
	for _, txEvery := range []int{0, 10} {
		name := "empty"
		if txEvery > 0 {
			name = "txs_every_" + strconv.Itoa(txEvery)
		}
		b.Run(name, func(b *testing.B) { benchRestart(b, blocks, txEvery) })
	}
}

func benchRestart(b *testing.B, blocks, txEvery int) {
	dir := b.TempDir()
	built := time.Now()
	txs := buildChain(b, dir, blocks, txEvery)
	st, _ := os.Stat(filepath.Join(dir, chainSubdir, journalFile))
	b.Logf("built %d blocks with %d transactions in %s; journal %d bytes",
		blocks, txs, time.Since(built).Round(time.Millisecond), st.Size())

	var cpu time.Duration
	b.ResetTimer()
	for b.Loop() {
		before := cpuTime()
		c, err := Start(context.Background(), Config{DataDir: dir, HotWalletKey: testKey})
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - before
		b.StopTimer()
		if n := c.eth.BlockChain().CurrentBlock().Number.Uint64(); n != uint64(blocks) {
			b.Fatalf("restored head %d, want %d", n, blocks)
		}
		c.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(blocks)*float64(b.N)/b.Elapsed().Seconds(), "blocks/s")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

// cpuTime returns the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// buildChain makes a chain of n blocks (counting SUSD's) in dir, every
// txEvery-th with 100 transfers (none when txEvery is 0), and returns how
// many transactions it holds.
func buildChain(b testing.TB, dir string, n, txEvery int) int {
	c, err := Start(context.Background(), Config{DataDir: dir, HotWalletKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	pool := c.eth.TxPool()
	signer := types.LatestSignerForChainID(big.NewInt(ChainID))
	nonce, total := uint64(1), 1
	transfer := susdTransferData(b, common.Address{0xbe}, big.NewInt(1))
	for i := 1; i < n; i++ {
		if txEvery > 0 && i%txEvery == 0 {
			var batch []*types.Transaction
			for k := 0; k < 100; k++ {
				to, data, gas := common.Address{byte(k), 0xbe}, []byte(nil), uint64(21000)
				if k%2 == 1 {
					to, data, gas = c.SUSD(), transfer, 100_000
				}
				tx := types.MustSignNewTx(testKey, signer, &types.DynamicFeeTx{
					ChainID: big.NewInt(ChainID), Nonce: nonce, To: &to, Value: new(big.Int), Data: data,
					GasTipCap: big.NewInt(params.GWei), GasFeeCap: big.NewInt(100 * params.GWei), Gas: gas,
				})
				batch = append(batch, tx)
				nonce++
			}
			for _, err := range pool.Add(batch, true) {
				if err != nil {
					b.Fatal(err)
				}
			}
			total += len(batch)
		}
		if _, err := c.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	return total
}
