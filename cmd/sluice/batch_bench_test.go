package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/sluicepay/sluice/internal/payout"
)

// BenchmarkBatch10k measures issue 6's figure with `sluice devchain` (1 s
// blocks) and `sluice serve` as separate processes on SQLite: a 10,000-row
// CSV of SUSD payouts, half to existing holders and half to new ones, from
// upload to every payout completed (the dev config pays batches through
// the EIP-7702 executor). The holders are made by an earlier batch, not
// timed. It reports the upload's answer time (every row validated and
// stored), the time to completed, and the gas per payout from receipts.
// Run with -benchtime=1x.
func BenchmarkBatch10k(b *testing.B) {
	const half = 5000
	be := startBenchEngine(b)
	defer be.stop()
	holder := func(i int) common.Address { return common.BigToAddress(big.NewInt(int64(0x7000000 + i))) }
	fresh := func(i int) common.Address { return common.BigToAddress(big.NewInt(int64(0x8000000 + i))) }
	var seed strings.Builder
	seed.WriteString("to,amount,asset\n")
	for i := range half {
		fmt.Fprintf(&seed, "%s,1,SUSD\n", holder(i).Hex())
	}
	id, _ := postBatchCSV(b, be.url, be.info.APIKey, seed.String(), "seed")
	pollBatch(b, be.url, be.info.APIKey, id, 5*time.Minute)

	var csv strings.Builder
	csv.WriteString("to,amount,asset,external_id\n")
	for i := range half {
		fmt.Fprintf(&csv, "%s,%d.25,SUSD,bench-old-%d\n", holder(i).Hex(), 1+i%9, i)
		fmt.Fprintf(&csv, "%s,%d.5,SUSD,bench-new-%d\n", fresh(i).Hex(), 1+i%5, i)
	}
	for b.Loop() {
		start := time.Now()
		id, accepted := postBatchCSV(b, be.url, be.info.APIKey, csv.String(), "bench")
		final := pollBatch(b, be.url, be.info.APIKey, id, 5*time.Minute)
		elapsed := time.Since(start)
		if final.Status != payout.BatchCompleted || final.Counts[payout.StatusCompleted] != 2*half {
			b.Fatalf("batch ended %s %v", final.Status, final.Counts)
		}
		b.ReportMetric(accepted.Seconds(), "s_accept")
		b.ReportMetric(elapsed.Seconds(), "s_completed")
		gas, txs := batchGas(b, be, id)
		b.ReportMetric(float64(gas)/float64(2*half), "gas/payout")
		b.ReportMetric(float64(txs), "transactions")
	}
}

// postBatchCSV uploads a CSV batch and returns its id and the answer time.
func postBatchCSV(b *testing.B, url, key, csv, idem string) (string, time.Duration) {
	b.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/batches", strings.NewReader(csv))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Idempotency-Key", idem)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	took := time.Since(start)
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("POST /v1/batches = %d %.500s", resp.StatusCode, body)
	}
	var bt payout.Batch
	if err := json.Unmarshal(body, &bt); err != nil {
		b.Fatal(err)
	}
	return bt.ID, took
}

// pollBatch waits until a batch is no longer processing; on timeout it
// names a few stuck payouts.
func pollBatch(b testing.TB, url, key, id string, timeout time.Duration) *payout.Batch {
	b.Helper()
	get := func(path string, out any) []byte {
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if out != nil {
			if err := json.Unmarshal(body, out); err != nil {
				b.Fatalf("GET %s: %v in %.300s", path, err, body)
			}
		}
		return body
	}
	deadline := time.Now().Add(timeout)
	for {
		var bt payout.Batch
		get("/v1/batches/"+id, &bt)
		if bt.Status != payout.BatchProcessing {
			return &bt
		}
		if time.Now().After(deadline) {
			b.Fatalf("batch %s still processing after %s: %v; stuck: %.2000s", id, timeout, bt.Counts,
				get("/v1/payouts?status=stuck&limit=3", nil))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// batchGas sums the gas of the transactions that paid a batch, from their
// receipts, and counts them.
func batchGas(b *testing.B, be *benchEngine, id string) (uint64, int) {
	b.Helper()
	req, _ := http.NewRequest("GET", be.url+"/v1/batches/"+id+"/statement.csv", nil)
	req.Header.Set("Authorization", "Bearer "+be.info.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	hashes := map[common.Hash]bool{}
	for _, line := range strings.Split(string(body), "\n")[1:] {
		f := strings.Split(line, ",")
		if len(f) > 7 && f[0] != "total" && f[7] != "" {
			hashes[common.HexToHash(f[7])] = true
		}
	}
	eth, err := ethclient.Dial(be.info.RPCURL)
	if err != nil {
		b.Fatal(err)
	}
	defer eth.Close()
	var gas uint64
	for h := range hashes {
		r, err := eth.TransactionReceipt(context.Background(), h)
		if err != nil {
			b.Fatal(err)
		}
		gas += r.GasUsed
	}
	return gas, len(hashes)
}
