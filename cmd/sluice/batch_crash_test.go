package main

import (
	"bytes"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// TestBatchCrashSafety runs `sluice devchain` and `sluice serve` as
// processes (the dev config pays batches through the EIP-7702 executor),
// uploads five CSV batches and SIGKILLs the engine six times while they
// are planned, signed, broadcast and confirmed. Every recipient must hold
// exactly what its row paid: nothing paid twice, nothing lost.
func TestBatchCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	chainProc, _ := startProc(t, bin, "Run the engine against it", "devchain", "--data-dir", dir, "--rpc", "127.0.0.1:0", "--block-time", "500ms")
	defer chainProc.stop()
	var info devInfo
	readJSON(t, filepath.Join(dir, "devchain.json"), &info)
	serveArgs := []string{"serve", "--config", filepath.Join(dir, "sluice.yaml"), "--http", "127.0.0.1:0"}
	engine, line := startProc(t, bin, "Sluice API at", serveArgs...)
	var mu sync.Mutex
	apiURL := strings.TrimSpace(strings.TrimPrefix(line, "Sluice API at"))
	url := func() string { mu.Lock(); defer mu.Unlock(); return apiURL }

	rng := rand.New(rand.NewPCG(7, 8))
	var want []wanted
	var batches []string
	for b := range 5 {
		var csv bytes.Buffer
		csv.WriteString("to,amount,asset\n")
		for i := range 400 {
			w := wanted{asset: "SUSD", to: common.BigToAddress(big.NewInt(int64(0xD00000 + b*1000 + i))), amount: big.NewInt(1 + rng.Int64N(9e6))}
			fmt.Fprintf(&csv, "%s,%s,SUSD\n", w.to.Hex(), payout.FormatDecimal(w.amount, 6))
			want = append(want, w)
		}
		batches = append(batches, postBatchRetry(t, url, info.APIKey, csv.Bytes(), fmt.Sprintf("crash-batch-%d", b)))
	}
	// Kill when the batches have moved since the last kill (so each kill
	// lands mid-way: some payouts paid, others signed or in flight).
	total, last, midway := int64(len(want)), int64(len(want)), 0
	for kills, waited := 0, time.Duration(0); kills < 6; {
		pause := time.Duration(100+rng.IntN(300)) * time.Millisecond
		time.Sleep(pause)
		waited += pause
		open := openPayouts(t, url(), info.APIKey, batches)
		if open == 0 && waited > 2*time.Second {
			break
		}
		if open == last && waited < 5*time.Second {
			continue
		}
		if open > 0 && open < total {
			midway++
		}
		t.Logf("kill %d with %d of %d batch payouts not ended", kills+1, open, total)
		engine.kill()
		kills++
		last, waited = open, 0
		var line string
		engine, line = startProc(t, bin, "Sluice API at", serveArgs...)
		mu.Lock()
		apiURL = strings.TrimSpace(strings.TrimPrefix(line, "Sluice API at"))
		mu.Unlock()
	}
	defer engine.stop()
	for _, id := range batches {
		b := pollBatch(t, url(), info.APIKey, id, 2*time.Minute)
		if b.Status != payout.BatchCompleted {
			t.Fatalf("batch %s ended %s %v", id, b.Status, b.Counts)
		}
	}
	checkBalances(t, info, want)
	if midway < 2 {
		t.Errorf("only %d kills landed while batches were part paid; the test proves little", midway)
	}
}

// openPayouts counts the payouts of batches not yet ended (-1 when the
// engine does not answer).
func openPayouts(t *testing.T, url, key string, batches []string) int64 {
	t.Helper()
	var open int64
	for _, id := range batches {
		req, _ := http.NewRequest("GET", url+"/v1/batches/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return -1
		}
		var b payout.Batch
		jsonDecode(resp, &b)
		resp.Body.Close()
		for s, n := range b.Counts {
			if !s.Terminal() {
				open += n
			}
		}
	}
	return open
}

// postBatchRetry uploads a CSV batch, retrying (same idempotency key)
// while the engine restarts.
func postBatchRetry(t *testing.T, url func() string, key string, csv []byte, idem string) string {
	t.Helper()
	for range 50 {
		req, _ := http.NewRequest("POST", url()+"/v1/batches", bytes.NewReader(csv))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Idempotency-Key", idem)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		var b payout.Batch
		err = jsonDecode(resp, &b)
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated && err == nil {
			return b.ID
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("could not upload the batch")
	return ""
}
