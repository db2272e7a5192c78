package payout

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"time"
)

// Batch is many payouts submitted together (a CSV upload or JSON rows).
// Each row becomes its own payout with BatchID set; the batch's status and
// counts follow its payouts.
type Batch struct {
	ID     string
	Status BatchStatus
	// Policy decides what invalid rows do: BatchAllOrNothing refuses the
	// whole batch, BatchAcceptValid stores the valid rows only.
	Policy  BatchPolicy
	Source  string // "csv" or "json"
	Rows    int    // rows in the input
	Invalid int    // rows refused by validation (accept_valid only)
	// Errors are the refused rows, as reported when the batch was
	// submitted (accept_valid only).
	Errors    []RowError
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time

	// Filled on read, from the batch's payouts.
	Counts map[Status]int64
	Totals map[string]*big.Int // by asset symbol: the amounts of every payout
	Fees   *big.Int            // wei, the fees paid so far
}

// Start sets what a new batch of payouts ps is: processing, each queued
// (or pending_approval when a policy holds it), their amounts per asset,
// no fees yet.
func (b *Batch) Start(ps []*Payout) {
	b.Status, b.Version = BatchProcessing, 1
	b.Counts = map[Status]int64{StatusQueued: 0}
	b.Totals, b.Fees = map[string]*big.Int{}, new(big.Int)
	for _, p := range ps {
		if p.Status == StatusPendingApproval {
			b.Counts[StatusPendingApproval]++
		} else {
			b.Counts[StatusQueued]++
		}
		t := b.Totals[p.Asset]
		if t == nil {
			t = new(big.Int)
			b.Totals[p.Asset] = t
		}
		t.Add(t, p.Amount)
	}
}

// BatchStatus is where a batch is in its life.
type BatchStatus string

// A batch is processing until every payout of it is terminal. Validation
// is synchronous: a batch refused by it is never stored (the request
// answers 422 with every row's error), so no stored batch is validating or
// rejected.
const (
	BatchProcessing            BatchStatus = "processing"
	BatchCompleted             BatchStatus = "completed"
	BatchCompletedWithFailures BatchStatus = "completed_with_failures"
	BatchCancelled             BatchStatus = "cancelled"
)

// BatchPolicy says what a batch with invalid rows does.
type BatchPolicy string

// The batch policies.
const (
	BatchAllOrNothing BatchPolicy = "all_or_nothing"
	BatchAcceptValid  BatchPolicy = "accept_valid"
)

// EventBatchCreated and EventBatchCompleted report a batch's life; their
// data is the batch with its counts.
const (
	EventBatchCreated   = "batch.created"
	EventBatchCompleted = "batch.completed"
)

// RowError is one refused row of a batch's input.
type RowError struct {
	Row     int    `json:"row"`
	Column  string `json:"column"`
	Value   string `json:"value"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Settle derives a batch's status from its payouts' counts: processing
// while any is not terminal; cancelled when all were cancelled; completed
// when all completed; otherwise completed_with_failures.
func (b *Batch) Settle() {
	total, done := int64(0), int64(0)
	for s, n := range b.Counts {
		total += n
		if s.Terminal() {
			done += n
		}
	}
	switch {
	case total == 0 || done < total:
		b.Status = BatchProcessing
	case b.Counts[StatusCancelled] == total:
		b.Status = BatchCancelled
	case b.Counts[StatusCompleted] == total:
		b.Status = BatchCompleted
	default:
		b.Status = BatchCompletedWithFailures
	}
}

// wireBatch is the batch's JSON form in the API and in events.
type wireBatch struct {
	ID        string            `json:"id"`
	Object    string            `json:"object"`
	Status    BatchStatus       `json:"status"`
	Policy    BatchPolicy       `json:"policy"`
	Source    string            `json:"source"`
	Rows      int               `json:"rows"`
	Invalid   int               `json:"invalid_rows"`
	Errors    []RowError        `json:"errors"`
	Counts    map[Status]int64  `json:"counts"`
	Totals    map[string]string `json:"totals"`
	Fees      string            `json:"fees"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// MarshalJSON writes the batch as the API shows it: every status counted
// (zero included), amounts and fees as decimal strings.
func (b *Batch) MarshalJSON() ([]byte, error) {
	w := wireBatch{ID: b.ID, Object: "batch", Status: b.Status, Policy: b.Policy, Source: b.Source,
		Rows: b.Rows, Invalid: b.Invalid, Errors: b.Errors, Counts: map[Status]int64{}, Totals: map[string]string{},
		Fees: "0", CreatedAt: b.CreatedAt.UTC(), UpdatedAt: b.UpdatedAt.UTC()}
	if w.Errors == nil {
		w.Errors = []RowError{}
	}
	for _, s := range Statuses {
		w.Counts[s] = b.Counts[s]
	}
	for sym, v := range b.Totals {
		w.Totals[sym] = v.String()
	}
	if b.Fees != nil {
		w.Fees = b.Fees.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the API form back (used by clients and tests).
func (b *Batch) UnmarshalJSON(data []byte) error {
	var w wireBatch
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*b = Batch{ID: w.ID, Status: w.Status, Policy: w.Policy, Source: w.Source, Rows: w.Rows, Invalid: w.Invalid,
		Errors: w.Errors, Counts: w.Counts, Totals: map[string]*big.Int{}, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
	for sym, s := range w.Totals {
		v, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return fmt.Errorf("payout: batch total %q of %s is not a number", s, sym)
		}
		b.Totals[sym] = v
	}
	b.Fees, _ = new(big.Int).SetString(w.Fees, 10)
	return nil
}

// Chunk is what one batch transaction pays: its payouts in the order the
// call pays them (the first is the attempt's own payout, which carries the
// transaction's nonce and attempts; the others follow it), the marginal
// gas of each (their fee shares are split by it) and the total value the
// transaction moves out of the wallet.
type Chunk struct {
	PayoutIDs  []string
	GasWeights []uint64
	Amount     *big.Int
	// Delegates: the transaction also carries the wallet's EIP-7702
	// delegation, whose authorization uses the wallet's next nonce too
	// (the attempt's nonce + 1), so that nonce is allocated with it.
	Delegates bool
	// Approve, when set, is the signed approval of exactly Amount of the
	// token to the batch contract, at the attempt's nonce - 1: the batch
	// contract pulls the tokens with it, and no allowance is left after.
	Approve *Attempt
}

// SplitFee divides fee among payouts by their marginal gas weights so that
// the shares add up exactly to fee: each gets floor(fee × w / Σw), and the
// wei left over go one each to the largest remainders (earliest first on
// ties). Weights of zero all count as one.
func SplitFee(fee *big.Int, weights []uint64) []*big.Int {
	shares := make([]*big.Int, len(weights))
	if len(weights) == 0 {
		return shares
	}
	w := make([]*big.Int, len(weights))
	sum := new(big.Int)
	for i, x := range weights {
		if x == 0 {
			x = 1
		}
		w[i] = new(big.Int).SetUint64(x)
		sum.Add(sum, w[i])
	}
	rems := make([]*big.Int, len(weights))
	given := new(big.Int)
	for i := range weights {
		q, r := new(big.Int).QuoRem(new(big.Int).Mul(fee, w[i]), sum, new(big.Int))
		shares[i], rems[i] = q, r
		given.Add(given, q)
	}
	left := new(big.Int).Sub(fee, given).Int64() // < len(weights)
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rems[order[a]].Cmp(rems[order[b]]) > 0 })
	for k := int64(0); k < left; k++ {
		shares[order[k]].Add(shares[order[k]], big.NewInt(1))
	}
	return shares
}

// BatchStore persists batches. The SQL store implements it.
type BatchStore interface {
	// CreateBatch stores a batch (status processing, Version 1) and its
	// payouts (queued, BatchID set), each with its payout.created event,
	// the batch.created event and, when idem is not nil, the idempotency
	// record, in one transaction. It returns *DuplicateExternalIDError when
	// an external_id is taken, and *IdempotencyConflictError when the key
	// was used.
	CreateBatch(ctx context.Context, b *Batch, ps []*Payout, idem *IdempotencyRecord) error
	// GetBatch returns the batch with its counts, totals and fees, or
	// ErrNotFound.
	GetBatch(ctx context.Context, id string) (*Batch, error)
	// BatchPayouts returns the batch's payouts in input row order.
	BatchPayouts(ctx context.Context, id string) ([]*Payout, error)
	// TakenExternalIDs returns which of ids belong to stored payouts.
	TakenExternalIDs(ctx context.Context, ids []string) (map[string]bool, error)
}
