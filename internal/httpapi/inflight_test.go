package httpapi

import (
	"context"
	"net/http"
	"testing"

	"github.com/sluicepay/sluice/internal/payout"
)

// blockingStore is the real store with CreatePayout held until released,
// so a request can be kept in flight deterministically.
type blockingStore struct {
	payout.Store
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) CreatePayout(ctx context.Context, p *payout.Payout, idem *payout.IdempotencyRecord) error {
	s.entered <- struct{}{}
	<-s.release
	return s.Store.CreatePayout(ctx, p, idem)
}

func TestCreateInFlight(t *testing.T) {
	t.Parallel()
	bs := &blockingStore{entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, func(s payout.Store) payout.Store { bs.Store = s; return bs }, nil)

	done := make(chan response)
	go func() { done <- e.create("slow", validPayload) }()
	<-bs.entered // the first request is inside CreatePayout now

	second := e.create("slow", validPayload)
	p := second.problem(t)
	if second.status != http.StatusConflict || p.Code != payout.CodeIdempotencyInFlight {
		t.Errorf("second request while the first is in flight: %d %s, want 409 idempotency_key_in_use", second.status, p.Code)
	}
	if got := second.header.Get("Retry-After"); got == "" {
		t.Error("409 idempotency_key_in_use has no Retry-After")
	}
	// Another key is not held up by the busy one.
	go func() { <-bs.entered; bs.release <- struct{}{} }()
	if r := e.create("other", payoutBody("2")); r.status != http.StatusCreated {
		t.Errorf("another key while one is in flight: status %d, want 201", r.status)
	}

	bs.release <- struct{}{}
	if first := <-done; first.status != http.StatusCreated {
		t.Fatalf("first request: status %d %s", first.status, first.body)
	}
	// Once the first is done, the key replays.
	go func() { <-bs.entered; bs.release <- struct{}{} }()
	third := e.create("slow", validPayload)
	if third.status != http.StatusCreated || third.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("after the first finished: %d replayed=%q, want 201 true", third.status, third.header.Get("Idempotent-Replayed"))
	}
	if n := e.count(); n != 2 {
		t.Errorf("store holds %d payouts, want 2", n)
	}
}
