// Package storetest is the conformance suite of payout.Store: every
// adapter runs the same tests, so SQLite and PostgreSQL behave alike.
package storetest

import (
	"context"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
)

// Run runs the suite. open must return a new, empty store each time and
// close it when t ends; tests run in parallel.
func Run(t *testing.T, open func(t *testing.T) payout.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s payout.Store)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"CreateValidates", testCreateValidates},
		{"CreateWritesEvent", testCreateWritesEvent},
		{"IdempotencyConflict", testIdempotencyConflict},
		{"DuplicateExternalID", testDuplicateExternalID},
		{"ConcurrentIdempotencyKey", testConcurrentIdempotencyKey},
		{"ConcurrentExternalID", testConcurrentExternalID},
		{"ConcurrentCreates", testConcurrentCreates},
		{"DeleteIdempotencyBefore", testDeleteIdempotencyBefore},
		{"Cancel", testCancel},
		{"ListPayouts", testListPayouts},
		{"ListPayoutsFilters", testListPayoutsFilters},
		{"Leases", testLeases},
		{"LeaseExpiry", testLeaseExpiry},
		{"ConcurrentLease", testConcurrentLease},
		{"QueuedPayouts", testQueuedPayouts},
		{"FailQueued", testFailQueued},
		{"SubmitAttempts", testSubmitAttempts},
		{"SubmitAttemptsStale", testSubmitAttemptsStale},
		{"SubmitAttemptsInvalid", testSubmitAttemptsInvalid},
		{"NonceConflict", testNonceConflict},
		{"CancelSubmitRace", testCancelSubmitRace},
		{"MinedAndFinalized", testMinedAndFinalized},
		{"RevertedOnChain", testRevertedOnChain},
		{"Reorged", testReorged},
		{"EventsPerChange", testEventsPerChange},
		{"ListEventsPaging", testListEventsPaging},
		{"EventPages", testEventPages},
		{"MoveQueued", testMoveQueued},
		{"EventsNeverSkipped", testEventsNeverSkipped},
		{"LargeBatches", testLargeBatches},
		{"CountByStatus", testCountByStatus},
		{"OldestUnfinished", testOldestUnfinished},
		{"Ping", testPing},
		{"PriorityStored", testPriorityStored},
		{"ReplaceAttempts", testReplaceAttempts},
		{"StuckAndSpeedUp", testStuckAndSpeedUp},
		{"CancelAfterBroadcast", testCancelAfterBroadcast},
		{"HoldQueued", testHoldQueued},
		{"CancelForeignNonce", testCancelForeignNonce},
		{"AppendEvent", testAppendEvent},
		{"BatchCreateAndGet", testBatchCreateAndGet},
		{"ChunkLifecycle", testChunkLifecycle},
		{"ChunkReverted", testChunkReverted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// Fixtures shared by the tests.
var (
	chainID  = uint64(1337)
	sender   = common.HexToAddress("0x5A1cE0000000000000000000000000000000bEEF")
	sender2  = common.HexToAddress("0x5a1ce00000000000000000000000000000000002")
	receiver = common.HexToAddress("0xAbC0000000000000000000000000000000000123")
	ids      = &payout.IDGenerator{}
)

// cmpOpts compare amounts by value.
var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b *big.Int) bool {
		if a == nil || b == nil {
			return a == b
		}
		return a.Cmp(b) == 0
	}),
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// newPayout returns a queued payout ready to store, changed by opts.
func newPayout(opts ...func(*payout.Payout)) *payout.Payout {
	now := time.Now().UTC().Truncate(time.Millisecond)
	p := &payout.Payout{
		ID: ids.New("po_", now), Status: payout.StatusQueued, Chain: "sandbox", ChainID: chainID,
		Asset: "ETH", To: receiver, Amount: big.NewInt(1_000_000_000_000_000), Sender: sender,
		Priority: payout.PriorityStandard, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func withExternalID(id string) func(*payout.Payout) {
	return func(p *payout.Payout) { p.ExternalID = id }
}

func withSender(chain uint64, a common.Address) func(*payout.Payout) {
	return func(p *payout.Payout) { p.ChainID, p.Sender = chain, a }
}

// mustCreate stores n new payouts (changed by opts) one by one and returns them.
func mustCreate(t *testing.T, s payout.Store, n int, opts ...func(*payout.Payout)) []*payout.Payout {
	t.Helper()
	out := make([]*payout.Payout, n)
	for i := range out {
		out[i] = newPayout(opts...)
		if err := s.CreatePayout(ctx(t), out[i], nil); err != nil {
			t.Fatalf("CreatePayout: %v", err)
		}
	}
	return out
}

func mustGet(t *testing.T, s payout.Store, id string) *payout.Payout {
	t.Helper()
	p, err := s.GetPayout(ctx(t), id)
	if err != nil {
		t.Fatalf("GetPayout(%s): %v", id, err)
	}
	return p
}

// attemptFor builds a signed-looking first attempt for p with nonce n.
func attemptFor(p *payout.Payout, n uint64) *payout.Attempt {
	return &payout.Attempt{
		PayoutID: p.ID, ChainID: p.ChainID, Sender: p.Sender, Nonce: n,
		TxHash: common.BigToHash(new(big.Int).SetBytes([]byte(p.ID))), RawTx: []byte("raw-" + p.ID),
		GasLimit: 21_000, MaxFeePerGas: big.NewInt(30_000_000_000), MaxPriorityFeePerGas: big.NewInt(1_500_000_000),
	}
}

// mustSubmit submits first attempts for ps with nonces from first on.
func mustSubmit(t *testing.T, s payout.Store, ps []*payout.Payout, first uint64) []*payout.Attempt {
	t.Helper()
	as := make([]*payout.Attempt, len(ps))
	for i, p := range ps {
		as[i] = attemptFor(p, first+uint64(i))
	}
	if err := s.SubmitAttempts(ctx(t), as); err != nil {
		t.Fatalf("SubmitAttempts: %v", err)
	}
	return as
}

// receiptFor is a mined receipt of a's transaction.
func receiptFor(a *payout.Attempt, block uint64, ok bool) payout.Receipt {
	return payout.Receipt{
		PayoutID: a.PayoutID, TxHash: a.TxHash, BlockNumber: block,
		BlockHash: common.BigToHash(new(big.Int).SetUint64(block*1000 + 7)), GasUsed: 21_000,
		EffectiveGasPrice: big.NewInt(2_000_000_000), Success: ok,
	}
}

func idsOf(ps []*payout.Payout) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

// eventsOf returns every event of one object, oldest first.
func eventsOf(t *testing.T, s payout.Store, objectID string) []payout.Event {
	t.Helper()
	var out []payout.Event
	after := int64(0)
	for {
		evs, err := s.ListEvents(ctx(t), after, 1000)
		if err != nil {
			t.Fatalf("ListEvents: %v", err)
		}
		if len(evs) == 0 {
			return out
		}
		for _, e := range evs {
			if e.ObjectID == objectID {
				out = append(out, e)
			}
		}
		after = evs[len(evs)-1].Seq
	}
}

// eventSummary is what the tests check of an event.
type eventSummary struct {
	Type      string
	ObjectSeq int64
	Status    payout.Status
}

func summarize(t *testing.T, evs []payout.Event) []eventSummary {
	t.Helper()
	out := make([]eventSummary, len(evs))
	for i, e := range evs {
		var p payout.Payout
		if err := json.Unmarshal(e.Data, &p); err != nil {
			t.Fatalf("event %s data: %v", e.ID, err)
		}
		out[i] = eventSummary{Type: e.Type, ObjectSeq: e.ObjectSeq, Status: p.Status}
	}
	return out
}
