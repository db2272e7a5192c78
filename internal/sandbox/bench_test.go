package sandbox

import (
	"context"
	"math/big"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
)

// BenchmarkRestart measures Start on a data dir whose journal holds
// SLUICE_BENCH_BLOCKS blocks (default 5,000); every 10th block carries 50
// ETH transfers and 50 SUSD transfers. Building the chain is not timed.
//
//	go test -run '^$' -bench BenchmarkRestart -benchtime 3x ./internal/sandbox
func BenchmarkRestart(b *testing.B) {
	blocks := 5000
	if s := os.Getenv("SLUICE_BENCH_BLOCKS"); s != "" {
		blocks, _ = strconv.Atoi(s)
	}
	dir := b.TempDir()
	built := time.Now()
	txs := buildChain(b, dir, blocks)
	b.Logf("built %d blocks with %d transactions in %s", blocks, txs, time.Since(built))
	st, _ := os.Stat(dir + "/" + chainSubdir + "/" + journalFile)
	b.Logf("journal: %d bytes", st.Size())

	b.ResetTimer()
	for b.Loop() {
		c, err := Start(context.Background(), Config{DataDir: dir, HotWalletKey: testKey})
		if err != nil {
			b.Fatal(err)
		}
		if n := c.eth.BlockChain().CurrentBlock().Number.Uint64(); n != uint64(blocks) {
			b.Fatalf("restored head %d, want %d", n, blocks)
		}
		b.StopTimer()
		c.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(blocks)*float64(b.N)/b.Elapsed().Seconds(), "blocks/s")
}

// buildChain makes a chain of n blocks (counting SUSD's) in dir and returns
// how many transactions it holds.
func buildChain(b testing.TB, dir string, n int) int {
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
		if i%10 == 0 {
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
