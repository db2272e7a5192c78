package httpapi

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/sluicepay/sluice/internal/payout"
)

// blockingStore is the real store whose first CreatePayout with one
// idempotency key is held until released, so that a request stays in
// flight deterministically.
type blockingStore struct {
	payout.Store
	key     string
	blocked atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) CreatePayout(ctx context.Context, p *payout.Payout, idem *payout.IdempotencyRecord) error {
	if idem != nil && idem.Key == s.key && s.blocked.CompareAndSwap(false, true) {
		close(s.entered)
		<-s.release
	}
	return s.Store.CreatePayout(ctx, p, idem)
}

func TestCreateInFlight(t *testing.T) {
	t.Parallel()
	bs := &blockingStore{key: "slow", entered: make(chan struct{}), release: make(chan struct{})}
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
	if r := e.create("other", payoutBody("2")); r.status != http.StatusCreated {
		t.Errorf("another key while one is in flight: status %d, want 201", r.status)
	}

	close(bs.release)
	first := <-done
	if first.status != http.StatusCreated {
		t.Fatalf("first request: status %d %s", first.status, first.body)
	}
	third := e.create("slow", validPayload)
	if third.status != http.StatusCreated || third.header.Get("Idempotent-Replayed") != "true" || string(third.body) != string(first.body) {
		t.Errorf("after the first finished: %d replayed=%q, want 201 true with the first body", third.status, third.header.Get("Idempotent-Replayed"))
	}
	if n := e.count(); n != 2 {
		t.Errorf("store holds %d payouts, want 2", n)
	}
}
