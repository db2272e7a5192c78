package storetest

import (
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
)

func testCreateAndGet(t *testing.T, s payout.Store) {
	p := newPayout(withExternalID("inv-1"), func(p *payout.Payout) {
		p.Amount = new(big.Int).Set(payout.MaxAmount)
		p.Metadata = map[string]string{"order": "42", "note": "ünïcode ✓"}
		p.Asset = "SUSD"
	})
	want := *p
	if err := s.CreatePayout(ctx(t), p, nil); err != nil {
		t.Fatalf("CreatePayout: %v", err)
	}
	got := mustGet(t, s, p.ID)
	if diff := cmp.Diff(&want, got, cmpOpts...); diff != "" {
		t.Errorf("GetPayout mismatch (-want +got):\n%s", diff)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt location = %v, want UTC", got.CreatedAt.Location())
	}
	if _, err := s.GetPayout(ctx(t), "po_missing"); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("GetPayout(missing) err = %v, want ErrNotFound", err)
	}
}

func testCreateValidates(t *testing.T, s payout.Store) {
	tests := []struct {
		name string
		p    *payout.Payout
	}{
		{"nil", nil},
		{"no id", newPayout(func(p *payout.Payout) { p.ID = "" })},
		{"no amount", newPayout(func(p *payout.Payout) { p.Amount = nil })},
		{"zero amount", newPayout(func(p *payout.Payout) { p.Amount = big.NewInt(0) })},
		{"not queued", newPayout(func(p *payout.Payout) { p.Status = payout.StatusCompleted })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.CreatePayout(ctx(t), tc.p, nil); err == nil {
				t.Errorf("CreatePayout(%s) err = nil, want an error", tc.name)
			}
		})
	}
	counts, err := s.CountByStatus(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := counts[payout.StatusQueued] + counts[payout.StatusCompleted]; got != 0 {
		t.Errorf("payouts stored after invalid creates = %d, want 0", got)
	}
}

func testCreateWritesEvent(t *testing.T, s payout.Store) {
	p := mustCreate(t, s, 1)[0]
	evs, err := s.ListEvents(ctx(t), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("events = %d, want 1", len(evs))
	}
	e := evs[0]
	want, _ := p.MarshalJSON()
	if e.Type != payout.EventCreated || e.ObjectID != p.ID || e.ObjectSeq != 1 || e.Seq <= 0 {
		t.Errorf("event = %+v, want payout.created of %s at object_seq 1", e, p.ID)
	}
	if diff := cmp.Diff(string(want), string(e.Data)); diff != "" {
		t.Errorf("event data mismatch (-want +got):\n%s", diff)
	}
	if len(e.ID) < 5 || e.ID[:4] != "evt_" || e.CreatedAt.IsZero() {
		t.Errorf("event id %q created_at %v, want evt_… and a time", e.ID, e.CreatedAt)
	}
}

func idemRecord(scope, key string) *payout.IdempotencyRecord {
	return &payout.IdempotencyRecord{Scope: scope, Key: key, Fingerprint: "fp-" + key,
		ResponseStatus: 201, ResponseBody: []byte(`{"id":"x"}`)}
}

func testIdempotencyConflict(t *testing.T, s payout.Store) {
	first := newPayout()
	rec := idemRecord("key_1", "k1")
	if err := s.CreatePayout(ctx(t), first, rec); err != nil {
		t.Fatal(err)
	}
	stored, err := s.GetIdempotency(ctx(t), "key_1", "k1")
	if err != nil {
		t.Fatalf("GetIdempotency: %v", err)
	}
	if diff := cmp.Diff(rec, stored); diff != "" {
		t.Errorf("stored record mismatch (-want +got):\n%s", diff)
	}
	second := newPayout()
	err = s.CreatePayout(ctx(t), second, idemRecord("key_1", "k1"))
	var conflict *payout.IdempotencyConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("replayed key err = %v, want IdempotencyConflictError", err)
	}
	if diff := cmp.Diff(stored, conflict.Existing); diff != "" {
		t.Errorf("conflict.Existing mismatch (-want +got):\n%s", diff)
	}
	if _, err := s.GetPayout(ctx(t), second.ID); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("payout of the replayed key stored: err = %v", err)
	}
	// Keys are per scope.
	if err := s.CreatePayout(ctx(t), newPayout(), idemRecord("key_2", "k1")); err != nil {
		t.Errorf("same key in another scope: %v", err)
	}
	if _, err := s.GetIdempotency(ctx(t), "key_1", "never"); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("GetIdempotency(unknown) err = %v, want ErrNotFound", err)
	}
}

func testDuplicateExternalID(t *testing.T, s payout.Store) {
	first := mustCreate(t, s, 1, withExternalID("inv-dup"))[0]
	second := newPayout(withExternalID("inv-dup"))
	err := s.CreatePayout(ctx(t), second, idemRecord("key_1", "k-dup"))
	var dup *payout.DuplicateExternalIDError
	if !errors.As(err, &dup) {
		t.Fatalf("duplicate external_id err = %v, want DuplicateExternalIDError", err)
	}
	want := &payout.DuplicateExternalIDError{ExternalID: "inv-dup", ExistingID: first.ID}
	if diff := cmp.Diff(want, dup); diff != "" {
		t.Errorf("error mismatch (-want +got):\n%s", diff)
	}
	// Nothing of the failed call remains: the key is free, no event was written.
	if _, err := s.GetIdempotency(ctx(t), "key_1", "k-dup"); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("idempotency record of a failed create: err = %v, want ErrNotFound", err)
	}
	if evs := eventsOf(t, s, second.ID); len(evs) != 0 {
		t.Errorf("events of a failed create = %d, want 0", len(evs))
	}
	// Payouts without external_id never collide.
	mustCreate(t, s, 3)
}

// race runs fn on n goroutines at once and returns their errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func testConcurrentIdempotencyKey(t *testing.T, s payout.Store) {
	ps := make([]*payout.Payout, 50)
	for i := range ps {
		ps[i] = newPayout()
	}
	errs := race(len(ps), func(i int) error { return s.CreatePayout(ctx(t), ps[i], idemRecord("key_1", "same")) })
	var ok, conflicts int
	for _, err := range errs {
		var c *payout.IdempotencyConflictError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &c):
			conflicts++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || conflicts != 49 {
		t.Errorf("created %d, conflicts %d; want 1 and 49", ok, conflicts)
	}
	counts, err := s.CountByStatus(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if counts[payout.StatusQueued] != 1 {
		t.Errorf("queued payouts = %d, want 1", counts[payout.StatusQueued])
	}
}

func testConcurrentExternalID(t *testing.T, s payout.Store) {
	ps := make([]*payout.Payout, 50)
	for i := range ps {
		ps[i] = newPayout(withExternalID("inv-race"))
	}
	errs := race(len(ps), func(i int) error { return s.CreatePayout(ctx(t), ps[i], nil) })
	winner := ""
	for i, err := range errs {
		if err == nil {
			if winner != "" {
				t.Errorf("two payouts created with one external_id: %s and %s", winner, ps[i].ID)
			}
			winner = ps[i].ID
		}
	}
	if winner == "" {
		t.Fatal("no payout was created")
	}
	for _, err := range errs {
		var dup *payout.DuplicateExternalIDError
		if err != nil && (!errors.As(err, &dup) || dup.ExistingID != winner) {
			t.Errorf("loser err = %v, want DuplicateExternalIDError naming %s", err, winner)
		}
	}
}

func testConcurrentCreates(t *testing.T, s payout.Store) {
	const n = 200
	ps := make([]*payout.Payout, n)
	for i := range ps {
		ps[i] = newPayout(withExternalID(fmt.Sprintf("inv-%d", i%150)))
	}
	errs := race(n, func(i int) error { return s.CreatePayout(ctx(t), ps[i], idemRecord("key_1", fmt.Sprint(i))) })
	created := 0
	for i, err := range errs {
		var dup *payout.DuplicateExternalIDError
		switch {
		case err == nil:
			created++
			if _, err := s.GetIdempotency(ctx(t), "key_1", fmt.Sprint(i)); err != nil {
				t.Errorf("idempotency record of created payout %d: %v", i, err)
			}
		case errors.As(err, &dup):
			if _, err := s.GetIdempotency(ctx(t), "key_1", fmt.Sprint(i)); !errors.Is(err, payout.ErrNotFound) {
				t.Errorf("idempotency record of failed payout %d: err = %v, want ErrNotFound", i, err)
			}
		default:
			t.Errorf("create %d: %v", i, err)
		}
	}
	if created != 150 {
		t.Errorf("created = %d, want 150 (one per external_id)", created)
	}
	evs, err := s.ListEvents(ctx(t), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 150 {
		t.Errorf("events = %d, want 150", len(evs))
	}
}

func testDeleteIdempotencyBefore(t *testing.T, s payout.Store) {
	old := idemRecord("key_1", "old")
	old.CreatedAt = time.Now().Add(-48 * time.Hour).UTC()
	if err := s.CreatePayout(ctx(t), newPayout(), old); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePayout(ctx(t), newPayout(), idemRecord("key_1", "new")); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteIdempotencyBefore(ctx(t), time.Now().Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("DeleteIdempotencyBefore = %d, %v; want 1, nil", n, err)
	}
	if _, err := s.GetIdempotency(ctx(t), "key_1", "old"); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("old record: err = %v, want ErrNotFound", err)
	}
	if _, err := s.GetIdempotency(ctx(t), "key_1", "new"); err != nil {
		t.Errorf("new record: %v", err)
	}
}

func testCancel(t *testing.T, s payout.Store) {
	p := mustCreate(t, s, 1)[0]
	got, err := s.CancelPayout(ctx(t), p.ID)
	if err != nil {
		t.Fatalf("CancelPayout: %v", err)
	}
	if got.Status != payout.StatusCancelled || got.Version != 2 || got.UpdatedAt.Before(p.CreatedAt) {
		t.Errorf("cancelled payout = status %s version %d updated %v; want cancelled, 2, after creation",
			got.Status, got.Version, got.UpdatedAt)
	}
	if diff := cmp.Diff(got, mustGet(t, s, p.ID), cmpOpts...); diff != "" {
		t.Errorf("stored payout differs from the returned one (-returned +stored):\n%s", diff)
	}
	want := []eventSummary{{payout.EventCreated, 1, payout.StatusQueued}, {"payout.cancelled", 2, payout.StatusCancelled}}
	if diff := cmp.Diff(want, summarize(t, eventsOf(t, s, p.ID))); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
	tests := []struct {
		id   string
		want error
	}{
		{p.ID, payout.ErrNotCancellable},
		{"po_missing", payout.ErrNotFound},
	}
	for _, tc := range tests {
		if _, err := s.CancelPayout(ctx(t), tc.id); !errors.Is(err, tc.want) {
			t.Errorf("CancelPayout(%s) err = %v, want %v", tc.id, err, tc.want)
		}
	}
	// A payout in flight is not cancelled at once: the request is recorded
	// (once) for its sender, which races a cancel transaction.
	sub := mustCreate(t, s, 1)[0]
	mustSubmit(t, s, []*payout.Payout{sub}, 0)
	for i := range 2 {
		got, err := s.CancelPayout(ctx(t), sub.ID)
		if err != nil {
			t.Fatalf("CancelPayout(submitted) #%d: %v", i, err)
		}
		if got.Status != payout.StatusSubmitted || !got.CancelRequested || got.Version != 3 {
			t.Errorf("CancelPayout(submitted) #%d = status %s, cancel requested %v, version %d; want submitted, true, 3",
				i, got.Status, got.CancelRequested, got.Version)
		}
	}
	if n := countEvents(t, s, sub.ID, payout.EventCancelRequested); n != 1 {
		t.Errorf("%d %s events, want 1", n, payout.EventCancelRequested)
	}
	reqs, err := s.PayoutRequests(ctx(t), sub.ChainID, sub.Sender)
	if err != nil || len(reqs) != 1 || reqs[0].ID != sub.ID {
		t.Errorf("PayoutRequests = %v, %v; want the payout", reqs, err)
	}
}

func testCountByStatus(t *testing.T, s payout.Store) {
	ps := mustCreate(t, s, 5)
	if _, err := s.CancelPayout(ctx(t), ps[0].ID); err != nil {
		t.Fatal(err)
	}
	mustSubmit(t, s, ps[1:3], 0)
	got, err := s.CountByStatus(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[payout.Status]int64{
		payout.StatusQueued: 2, payout.StatusSubmitted: 2, payout.StatusCancelled: 1,
		payout.StatusConfirming: 0, payout.StatusCompleted: 0, payout.StatusFailed: 0, payout.StatusStuck: 0,
		payout.StatusPendingApproval: 0, payout.StatusRejected: 0, payout.StatusSigningOffline: 0,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CountByStatus mismatch (-want +got):\n%s", diff)
	}
}

func testOldestUnfinished(t *testing.T, s payout.Store) {
	if _, err := s.OldestUnfinished(ctx(t)); !errors.Is(err, payout.ErrNotFound) {
		t.Fatalf("empty store: err = %v, want ErrNotFound", err)
	}
	ps := mustCreate(t, s, 3)
	if got, err := s.OldestUnfinished(ctx(t)); err != nil || got.ID != ps[0].ID {
		t.Fatalf("OldestUnfinished = %v, %v; want %s", got, err, ps[0].ID)
	}
	// Finished payouts no longer count; one sent but not mined still does.
	if _, err := s.CancelPayout(ctx(t), ps[0].ID); err != nil {
		t.Fatal(err)
	}
	mustSubmit(t, s, ps[1:2], 0)
	got, err := s.OldestUnfinished(ctx(t))
	if err != nil || got.ID != ps[1].ID || got.Status != payout.StatusSubmitted {
		t.Fatalf("after cancel: %v, %v; want the submitted %s", got, err, ps[1].ID)
	}
	if _, err := s.CancelPayout(ctx(t), ps[2].ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.OldestUnfinished(ctx(t)); err != nil || got.ID != ps[1].ID {
		t.Fatalf("OldestUnfinished = %v, %v; want %s", got, err, ps[1].ID)
	}
}

func testPing(t *testing.T, s payout.Store) {
	if err := s.Ping(ctx(t)); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
