package storetest

import (
	"math/big"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
)

func testMinedAndFinalized(t *testing.T, s payout.Store) {
	ps := mustCreate(t, s, 3)
	as := mustSubmit(t, s, ps, 0)
	rs := []payout.Receipt{receiptFor(as[0], 100, true), receiptFor(as[1], 101, true)}
	if err := s.MarkMined(ctx(t), rs); err != nil {
		t.Fatalf("MarkMined: %v", err)
	}
	got := mustGet(t, s, ps[0].ID)
	wantFee := big.NewInt(21_000 * 2_000_000_000)
	if got.Status != payout.StatusConfirming || got.BlockNumber != 100 || got.BlockHash == nil ||
		*got.BlockHash != rs[0].BlockHash || got.Fee == nil || got.Fee.Cmp(wantFee) != 0 || !got.ReceiptOK || got.Version != 3 {
		t.Errorf("mined payout = %+v", got)
	}
	confirming, err := s.ConfirmingPayouts(ctx(t), chainID, sender)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(idsOf(ps[:2]), idsOf(confirming)); diff != "" {
		t.Errorf("ConfirmingPayouts mismatch (-want +got):\n%s", diff)
	}
	inflight, err := s.InFlightAttempts(ctx(t), chainID, sender)
	if err != nil || len(inflight) != 1 || inflight[0].PayoutID != ps[2].ID {
		t.Errorf("InFlightAttempts after mining = %d, %v; want only payout 2's", len(inflight), err)
	}
	// Marking again and finalizing what is not confirming change nothing.
	if err := s.MarkMined(ctx(t), rs[:1]); err != nil {
		t.Fatal(err)
	}
	if err := s.Finalize(ctx(t), []string{ps[0].ID, ps[1].ID, ps[2].ID, "po_missing"}); err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	tests := []struct {
		p       *payout.Payout
		status  payout.Status
		version int64
	}{
		{ps[0], payout.StatusCompleted, 4},
		{ps[1], payout.StatusCompleted, 4},
		{ps[2], payout.StatusSubmitted, 2},
	}
	for _, tc := range tests {
		got := mustGet(t, s, tc.p.ID)
		if got.Status != tc.status || got.Version != tc.version {
			t.Errorf("payout %s = %s v%d, want %s v%d", tc.p.ID, got.Status, got.Version, tc.status, tc.version)
		}
	}
	if got := mustGet(t, s, ps[0].ID); got.Fee == nil || got.Fee.Cmp(wantFee) != 0 || got.FailureCode != "" {
		t.Errorf("completed payout fee %v failure %q, want fee %v and no failure", got.Fee, got.FailureCode, wantFee)
	}
}

func testRevertedOnChain(t *testing.T, s payout.Store) {
	ps := mustCreate(t, s, 2)
	as := mustSubmit(t, s, ps, 0)
	if err := s.MarkMined(ctx(t), []payout.Receipt{receiptFor(as[0], 50, false), receiptFor(as[1], 50, true)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Finalize(ctx(t), idsOf(ps)); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, s, ps[0].ID)
	if got.Status != payout.StatusFailed || got.FailureCode != payout.FailureRevertedOnChain || got.FailureMessage == "" {
		t.Errorf("reverted payout = %s/%q/%q, want failed/reverted_on_chain with a message", got.Status, got.FailureCode, got.FailureMessage)
	}
	if got.Fee == nil || got.Fee.Cmp(big.NewInt(21_000*2_000_000_000)) != 0 || got.BlockNumber != 50 || got.TxHash == nil {
		t.Errorf("reverted payout lost its receipt: fee %v block %d tx %v", got.Fee, got.BlockNumber, got.TxHash)
	}
	if got := mustGet(t, s, ps[1].ID); got.Status != payout.StatusCompleted {
		t.Errorf("successful payout = %s, want completed", got.Status)
	}
	want := []eventSummary{
		{payout.EventCreated, 1, payout.StatusQueued}, {"payout.submitted", 2, payout.StatusSubmitted},
		{"payout.confirming", 3, payout.StatusConfirming}, {"payout.failed", 4, payout.StatusFailed},
	}
	if diff := cmp.Diff(want, summarize(t, eventsOf(t, s, ps[0].ID))); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
}

func testReorged(t *testing.T, s payout.Store) {
	ps := mustCreate(t, s, 2)
	as := mustSubmit(t, s, ps, 0)
	if err := s.MarkMined(ctx(t), []payout.Receipt{receiptFor(as[0], 10, true), receiptFor(as[1], 10, true)}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkReorged(ctx(t), []string{ps[0].ID}); err != nil {
		t.Fatalf("MarkReorged: %v", err)
	}
	got := mustGet(t, s, ps[0].ID)
	if got.Status != payout.StatusSubmitted || got.BlockNumber != 0 || got.BlockHash != nil || got.Fee != nil ||
		got.ReceiptOK || got.Version != 4 || got.TxHash == nil || *got.TxHash != as[0].TxHash {
		t.Errorf("reorged payout = %+v, want submitted with block and fee cleared, tx hash kept", got)
	}
	evs, err := s.ListEvents(ctx(t), 0, 100)
	if err != nil || len(evs) == 0 || evs[len(evs)-1].Type != payout.EventReorged || evs[len(evs)-1].ObjectID != ps[0].ID {
		t.Errorf("last event after a reorg = %+v, %v; want %s of %s", evs[len(evs)-1], err, payout.EventReorged, ps[0].ID)
	}
	inflight, err := s.InFlightAttempts(ctx(t), chainID, sender)
	if err != nil || len(inflight) != 1 || inflight[0].TxHash != as[0].TxHash {
		t.Errorf("InFlightAttempts after reorg = %v, %v; want the reorged attempt", inflight, err)
	}
	// Reorging a submitted payout does nothing; the payout can be mined again.
	if err := s.MarkReorged(ctx(t), []string{ps[0].ID}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkMined(ctx(t), []payout.Receipt{receiptFor(as[0], 12, true)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Finalize(ctx(t), []string{ps[0].ID}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, ps[0].ID); got.Status != payout.StatusCompleted || got.BlockNumber != 12 || got.Version != 6 {
		t.Errorf("re-mined payout = %s block %d v%d, want completed block 12 v6", got.Status, got.BlockNumber, got.Version)
	}
}

func testEventsPerChange(t *testing.T, s payout.Store) {
	ps := mustCreate(t, s, 1)
	as := mustSubmit(t, s, ps, 0)
	steps := []func() error{
		func() error { return s.MarkMined(ctx(t), []payout.Receipt{receiptFor(as[0], 9, true)}) },
		func() error { return s.MarkReorged(ctx(t), idsOf(ps)) },
		func() error { return s.MarkMined(ctx(t), []payout.Receipt{receiptFor(as[0], 10, true)}) },
		func() error { return s.Finalize(ctx(t), idsOf(ps)) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	evs := eventsOf(t, s, ps[0].ID)
	want := []eventSummary{
		{payout.EventCreated, 1, payout.StatusQueued}, {"payout.submitted", 2, payout.StatusSubmitted},
		{"payout.confirming", 3, payout.StatusConfirming}, {payout.EventReorged, 4, payout.StatusSubmitted},
		{"payout.confirming", 5, payout.StatusConfirming}, {"payout.completed", 6, payout.StatusCompleted},
	}
	if diff := cmp.Diff(want, summarize(t, evs)); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
	seen := map[string]bool{}
	for i, e := range evs {
		if i > 0 && (e.Seq <= evs[i-1].Seq || e.CreatedAt.Before(evs[i-1].CreatedAt)) {
			t.Errorf("event %d: seq %d at %v after seq %d at %v", i, e.Seq, e.CreatedAt, evs[i-1].Seq, evs[i-1].CreatedAt)
		}
		if seen[e.ID] {
			t.Errorf("event id %s used twice", e.ID)
		}
		seen[e.ID] = true
	}
	last := mustGet(t, s, ps[0].ID)
	wantData, _ := last.MarshalJSON()
	if diff := cmp.Diff(string(wantData), string(evs[len(evs)-1].Data)); diff != "" {
		t.Errorf("last event data differs from the stored payout (-want +got):\n%s", diff)
	}
}

func testListEventsPaging(t *testing.T, s payout.Store) {
	mustCreate(t, s, 7)
	all, err := s.ListEvents(ctx(t), 0, 100)
	if err != nil || len(all) != 7 {
		t.Fatalf("ListEvents = %d, %v; want 7", len(all), err)
	}
	var paged []payout.Event
	for after := int64(0); ; {
		page, err := s.ListEvents(ctx(t), after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 3 {
			t.Fatalf("page of %d events, limit 3", len(page))
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1].Seq
	}
	if diff := cmp.Diff(all, paged); diff != "" {
		t.Errorf("paged events differ from one read (-one +paged):\n%s", diff)
	}
	if rest, err := s.ListEvents(ctx(t), all[6].Seq, 10); err != nil || len(rest) != 0 {
		t.Errorf("ListEvents after the last = %d, %v; want none", len(rest), err)
	}
}

// testLargeBatches moves hundreds of payouts through each batch method in
// one call, as the engine does.
func testLargeBatches(t *testing.T, s payout.Store) {
	const n = 600 // more than one IN list chunk
	ps := make([]*payout.Payout, n)
	errs := race(n, func(i int) error {
		ps[i] = newPayout()
		return s.CreatePayout(ctx(t), ps[i], nil)
	})
	for _, err := range errs {
		if err != nil {
			t.Fatalf("CreatePayout: %v", err)
		}
	}
	as := mustSubmit(t, s, ps, 0)
	rs := make([]payout.Receipt, n)
	for i, a := range as {
		rs[i] = receiptFor(a, 1000+uint64(i/100), i%10 != 0)
	}
	if err := s.MarkMined(ctx(t), rs); err != nil {
		t.Fatalf("MarkMined: %v", err)
	}
	if err := s.Finalize(ctx(t), idsOf(ps)); err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	counts, err := s.CountByStatus(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if counts[payout.StatusCompleted] != n*9/10 || counts[payout.StatusFailed] != n/10 {
		t.Errorf("completed %d failed %d, want %d and %d", counts[payout.StatusCompleted], counts[payout.StatusFailed], n*9/10, n/10)
	}
	evs, err := s.ListEvents(ctx(t), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1000 {
		t.Errorf("first page of events = %d, want 1000 (of %d)", len(evs), 4*n)
	}
}

// testEventsNeverSkipped streams events while they are written: a reader
// that moves its position to the last seq it read must see every event
// once, even when transactions commit out of seq order.
func testEventsNeverSkipped(t *testing.T, s payout.Store) {
	const writers, each = 8, 30
	done := make(chan struct{})
	go func() {
		defer close(done)
		race(writers, func(int) error {
			for range each {
				if err := s.CreatePayout(ctx(t), newPayout(), nil); err != nil {
					return err
				}
			}
			return nil
		})
	}()
	seen := map[string]int{}
	after := int64(0)
	read := func() {
		evs, err := s.ListEvents(ctx(t), after, 7)
		if err != nil {
			t.Errorf("ListEvents: %v", err)
			return
		}
		for _, e := range evs {
			seen[e.ID]++
			after = e.Seq
		}
	}
	for streaming := true; streaming; {
		select {
		case <-done:
			streaming = false
		default:
			read()
		}
	}
	for range writers * each { // drain what is left, at most one event per read
		read()
	}
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	if len(seen) != writers*each || dups != 0 {
		t.Errorf("reader saw %d distinct events (%d twice), want %d once each", len(seen), dups, writers*each)
	}
}
