package storetest

import (
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

func batchStore(t *testing.T, s payout.Store) payout.BatchStore {
	t.Helper()
	bs, ok := s.(payout.BatchStore)
	if !ok {
		t.Fatalf("%T does not implement payout.BatchStore", s)
	}
	return bs
}

// mustCreateBatch stores a batch of n ETH payouts, rows 2..n+1.
func mustCreateBatch(t *testing.T, s payout.Store, n int) (*payout.Batch, []*payout.Payout) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	b := &payout.Batch{ID: ids.New("bat_", now), Policy: payout.BatchAllOrNothing, Source: "csv", Rows: n, CreatedAt: now}
	ps := make([]*payout.Payout, n)
	for i := range ps {
		ps[i] = newPayout(func(p *payout.Payout) {
			p.BatchID, p.BatchRow = b.ID, i+2
			p.To = common.BigToAddress(big.NewInt(int64(1000 + i)))
		})
	}
	if err := batchStore(t, s).CreateBatch(ctx(t), b, ps, nil); err != nil {
		t.Fatalf("CreateBatch: %v", err)
	}
	return b, ps
}

// chunkAttempt is a first attempt of ps[0] whose transaction pays all of ps.
func chunkAttempt(ps []*payout.Payout, nonce uint64, weights ...uint64) *payout.Attempt {
	a := attemptFor(ps[0], nonce)
	total := new(big.Int)
	for _, p := range ps {
		total.Add(total, p.Amount)
	}
	a.Chunk = &payout.Chunk{PayoutIDs: idsOf(ps), GasWeights: weights, Amount: total}
	return a
}

func testBatchCreateAndGet(t *testing.T, s payout.Store) {
	bs := batchStore(t, s)
	b, ps := mustCreateBatch(t, s, 3)
	got, err := bs.GetBatch(ctx(t), b.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := new(big.Int).Mul(big.NewInt(3), ps[0].Amount)
	if got.Status != payout.BatchProcessing || got.Counts[payout.StatusQueued] != 3 || got.Totals["ETH"].Cmp(want) != 0 {
		t.Errorf("batch = %s counts %v totals %v, want processing, 3 queued, ETH %v", got.Status, got.Counts, got.Totals, want)
	}
	rows, err := bs.BatchPayouts(ctx(t), b.ID)
	if err != nil || len(rows) != 3 || rows[0].BatchRow != 2 || rows[2].BatchRow != 4 || rows[1].BatchID != b.ID {
		t.Fatalf("BatchPayouts = %d rows, %v", len(rows), err)
	}
	if _, err := bs.GetBatch(ctx(t), "bat_missing"); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("GetBatch(missing) = %v, want ErrNotFound", err)
	}
	if n := countEvents(t, s, b.ID, payout.EventBatchCreated); n != 1 {
		t.Errorf("%d batch.created events, want 1", n)
	}
	// A taken external id is reported; a batch reusing one stores nothing.
	mustCreate(t, s, 1, withExternalID("inv-1"))
	taken, err := bs.TakenExternalIDs(ctx(t), []string{"inv-1", "inv-2"})
	if err != nil || !taken["inv-1"] || taken["inv-2"] {
		t.Errorf("TakenExternalIDs = %v, %v; want only inv-1", taken, err)
	}
	now := time.Now()
	b2 := &payout.Batch{ID: ids.New("bat_", now), Policy: payout.BatchAllOrNothing, Source: "json", Rows: 2, CreatedAt: now}
	dup := []*payout.Payout{
		newPayout(func(p *payout.Payout) { p.BatchID, p.BatchRow = b2.ID, 1 }),
		newPayout(func(p *payout.Payout) { p.BatchID, p.BatchRow, p.ExternalID = b2.ID, 2, "inv-1" }),
	}
	var dupErr *payout.DuplicateExternalIDError
	if err := bs.CreateBatch(ctx(t), b2, dup, nil); !errors.As(err, &dupErr) {
		t.Fatalf("CreateBatch with a taken external id = %v, want DuplicateExternalIDError", err)
	}
	if _, err := s.GetPayout(ctx(t), dup[0].ID); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("a refused batch stored payout %s (%v)", dup[0].ID, err)
	}
}

// testChunkLifecycle pays three payouts of a batch with one transaction:
// they move together, the fee is split by marginal gas to the wei, logs
// are assigned in chunk order, a reorg clears them, and the batch ends
// with a batch.completed event.
func testChunkLifecycle(t *testing.T, s payout.Store) {
	bs := batchStore(t, s)
	b, ps := mustCreateBatch(t, s, 4)
	chunk, single := ps[:3], ps[3]
	if err := s.SubmitAttempts(ctx(t), []*payout.Attempt{chunkAttempt(chunk, 0, 8700, 25800, 8700), attemptFor(single, 1)}); err != nil {
		t.Fatalf("SubmitAttempts: %v", err)
	}
	for i, p := range chunk {
		got := mustGet(t, s, p.ID)
		wantCarrier := chunk[0].ID
		if i == 0 {
			wantCarrier = ""
		}
		if got.Status != payout.StatusSubmitted || got.Nonce == nil || *got.Nonce != 0 || got.CarrierID != wantCarrier || got.ChunkPos != i {
			t.Errorf("chunk payout %d = %s nonce %v carrier %q pos %d", i, got.Status, got.Nonce, got.CarrierID, got.ChunkPos)
		}
	}
	inflight, err := s.InFlightPayouts(ctx(t), chainID, sender)
	if err != nil || len(inflight) != 2 {
		t.Fatalf("InFlightPayouts = %d, %v; want the carrier and the single", len(inflight), err)
	}
	if got := mustGet(t, s, chunk[0].ID); got.ChunkAmount == nil || got.ChunkAmount.Cmp(new(big.Int).Mul(big.NewInt(3), chunk[0].Amount)) != 0 {
		t.Errorf("carrier's chunk amount = %v", got.ChunkAmount)
	}
	// Carried payouts are neither cancelled alone nor cancel their chunk.
	for _, p := range chunk {
		if _, err := s.CancelPayout(ctx(t), p.ID); !errors.Is(err, payout.ErrNotCancellable) {
			t.Errorf("CancelPayout(%s in a chunk) = %v, want ErrNotCancellable", p.ID, err)
		}
	}
	// A speed-up of a carried payout raises its carrier's cap.
	if _, err := s.RaiseFeeCap(ctx(t), chunk[2].ID, big.NewInt(1e18)); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, chunk[0].ID); got.FeeCap == nil || got.FeeCap.Cmp(big.NewInt(1e18)) != 0 {
		t.Errorf("carrier's fee cap after a carried speed-up = %v", got.FeeCap)
	}

	a := chunkAttempt(chunk, 0)
	r := receiptFor(a, 70, true)
	r.GasUsed, r.TransferLogs = 43_207, []uint{4, 5, 6}
	if err := s.MarkMined(ctx(t), []payout.Receipt{r}); err != nil {
		t.Fatal(err)
	}
	checkShares := func(wantLogs bool) {
		t.Helper()
		sum := new(big.Int)
		for i, p := range chunk {
			got := mustGet(t, s, p.ID)
			if got.Status != payout.StatusConfirming || got.BlockNumber != 70 || got.Fee == nil {
				t.Fatalf("chunk payout %d after mining = %s block %d fee %v", i, got.Status, got.BlockNumber, got.Fee)
			}
			sum.Add(sum, got.Fee)
			if wantLogs && (got.LogIndex == nil || *got.LogIndex != uint(4+i)) {
				t.Errorf("chunk payout %d log index = %v, want %d", i, got.LogIndex, 4+i)
			}
		}
		if sum.Cmp(r.Fee()) != 0 {
			t.Errorf("fee shares add up to %v, want the transaction's fee %v", sum, r.Fee())
		}
		if a, c := mustGet(t, s, chunk[0].ID).Fee, mustGet(t, s, chunk[1].ID).Fee; a.Cmp(c) >= 0 {
			t.Errorf("a new holder's share %v is not above an existing holder's %v", c, a)
		}
	}
	checkShares(true)
	if err := s.MarkReorged(ctx(t), []string{chunk[0].ID}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, chunk[1].ID); got.Status != payout.StatusSubmitted || got.Fee != nil || got.LogIndex != nil {
		t.Errorf("carried payout after reorg = %s fee %v log %v, want submitted without fee or log", got.Status, got.Fee, got.LogIndex)
	}
	if err := s.MarkMined(ctx(t), []payout.Receipt{r}); err != nil {
		t.Fatal(err)
	}
	checkShares(true)
	confirming, err := s.ConfirmingPayouts(ctx(t), chainID, sender)
	if err != nil || len(confirming) != 1 || confirming[0].ID != chunk[0].ID {
		t.Fatalf("ConfirmingPayouts = %v, %v; want only the carrier", idsOf(confirming), err)
	}
	if err := s.Finalize(ctx(t), []string{chunk[0].ID}); err != nil {
		t.Fatal(err)
	}
	if got, _ := bs.GetBatch(ctx(t), b.ID); got.Status != payout.BatchProcessing || got.Counts[payout.StatusCompleted] != 3 {
		t.Errorf("batch with one payout in flight = %s %v", got.Status, got.Counts)
	}
	if err := s.MarkMined(ctx(t), []payout.Receipt{receiptFor(attemptFor(single, 1), 71, true)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Finalize(ctx(t), []string{single.ID}); err != nil {
		t.Fatal(err)
	}
	got, err := bs.GetBatch(ctx(t), b.ID)
	if err != nil || got.Status != payout.BatchCompleted || got.Counts[payout.StatusCompleted] != 4 {
		t.Fatalf("finished batch = %+v, %v", got, err)
	}
	wantFees := new(big.Int).Add(r.Fee(), receiptFor(attemptFor(single, 1), 71, true).Fee())
	if got.Fees.Cmp(wantFees) != 0 {
		t.Errorf("batch fees = %v, want %v", got.Fees, wantFees)
	}
	if n := countEvents(t, s, b.ID, payout.EventBatchCompleted); n != 1 {
		t.Errorf("%d batch.completed events, want 1", n)
	}
}

// testChunkReverted: a batch transaction mined but reverted paid nobody,
// so its payouts go back to the queue and are planned again at a new nonce.
func testChunkReverted(t *testing.T, s payout.Store) {
	_, ps := mustCreateBatch(t, s, 2)
	if err := s.SubmitAttempts(ctx(t), []*payout.Attempt{chunkAttempt(ps, 0, 1, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkMined(ctx(t), []payout.Receipt{receiptFor(chunkAttempt(ps, 0), 9, false)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Finalize(ctx(t), []string{ps[0].ID}); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		got := mustGet(t, s, p.ID)
		if got.Status != payout.StatusQueued || got.Reason != payout.ReasonChunkReverted || got.CarrierID != "" || got.Nonce != nil {
			t.Errorf("payout of a reverted chunk = %s reason %q carrier %q nonce %v", got.Status, got.Reason, got.CarrierID, got.Nonce)
		}
	}
	// Sent again alone at the next nonce: only the new attempt is in flight.
	next := attemptFor(ps[0], 1)
	next.TxHash = common.HexToHash("0x77")
	if err := s.SubmitAttempts(ctx(t), []*payout.Attempt{next}); err != nil {
		t.Fatal(err)
	}
	as, err := s.InFlightAttempts(ctx(t), chainID, sender)
	if err != nil || len(as) != 1 || as[0].Nonce != 1 {
		t.Errorf("InFlightAttempts after re-sending = %d, %v; want the nonce-1 attempt only", len(as), err)
	}
}
