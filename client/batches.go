package client

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"time"
)

// Batch is many payouts submitted together, as the API shows it. Each
// valid row became a payout with BatchID set.
type Batch struct {
	ID          string
	Status      string // processing, completed, completed_with_failures or cancelled
	Policy      string // all_or_nothing or accept_valid
	Source      string // csv or json
	Rows        int    // rows in the input
	InvalidRows int
	Errors      []BatchRowError // refused rows of an accept_valid batch
	Counts      map[Status]int64
	Totals      map[string]*big.Int // base units per asset
	Fees        *big.Int            // wei paid so far
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Done reports whether every payout of the batch has ended.
func (b *Batch) Done() bool { return b.Status != "processing" }

// BatchRowError is one refused row of a batch.
type BatchRowError struct {
	Row     int    `json:"row"`
	Column  string `json:"column"`
	Value   string `json:"value"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type wireBatch struct {
	ID          string            `json:"id"`
	Object      string            `json:"object"`
	Status      string            `json:"status"`
	Policy      string            `json:"policy"`
	Source      string            `json:"source"`
	Rows        int               `json:"rows"`
	InvalidRows int               `json:"invalid_rows"`
	Errors      []BatchRowError   `json:"errors"`
	Counts      map[Status]int64  `json:"counts"`
	Totals      map[string]string `json:"totals"`
	Fees        string            `json:"fees"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

// UnmarshalJSON reads the API form.
func (b *Batch) UnmarshalJSON(data []byte) error {
	var w wireBatch
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*b = Batch{ID: w.ID, Status: w.Status, Policy: w.Policy, Source: w.Source, Rows: w.Rows, InvalidRows: w.InvalidRows,
		Errors: w.Errors, Counts: w.Counts, Totals: map[string]*big.Int{}, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
	for sym, v := range w.Totals {
		n, ok := new(big.Int).SetString(v, 10)
		if !ok {
			return fmt.Errorf("batch total %q of %s is not a number", v, sym)
		}
		b.Totals[sym] = n
	}
	b.Fees, _ = new(big.Int).SetString(w.Fees, 10)
	return nil
}

// MarshalJSON writes the API form back.
func (b *Batch) MarshalJSON() ([]byte, error) {
	w := wireBatch{ID: b.ID, Object: "batch", Status: b.Status, Policy: b.Policy, Source: b.Source, Rows: b.Rows,
		InvalidRows: b.InvalidRows, Errors: b.Errors, Counts: b.Counts, Totals: map[string]string{}, Fees: "0",
		CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt}
	for sym, v := range b.Totals {
		w.Totals[sym] = v.String()
	}
	if b.Fees != nil {
		w.Fees = b.Fees.String()
	}
	if w.Errors == nil {
		w.Errors = []BatchRowError{}
	}
	return json.Marshal(w)
}

// BatchRow is one payout of a JSON batch; Amount is in base units.
type BatchRow struct {
	To         string `json:"to"`
	Amount     string `json:"amount"`
	Asset      string `json:"asset,omitempty"`
	Chain      string `json:"chain,omitempty"`
	ExternalID string `json:"external_id,omitempty"`
	Memo       string `json:"memo,omitempty"`
}

// BatchParams are a batch's defaults and options.
type BatchParams struct {
	Chain    string // default chain of rows without one ("" : the only configured chain)
	Asset    string // default asset of rows without one
	Policy   string // all_or_nothing (default) or accept_valid
	Priority string // low, standard (default) or high
}

// CreateBatch submits JSON rows (amounts in base units). A batch with
// invalid rows is refused as a whole (an *Error with code invalid_batch
// whose Errors name each row) unless Policy is accept_valid.
func (c *Client) CreateBatch(ctx context.Context, params BatchParams, rows []BatchRow, idempotencyKey string) (*Batch, error) {
	body, err := json.Marshal(struct {
		Chain    string     `json:"chain,omitempty"`
		Asset    string     `json:"asset,omitempty"`
		Policy   string     `json:"policy,omitempty"`
		Priority string     `json:"priority,omitempty"`
		Rows     []BatchRow `json:"rows"`
	}{params.Chain, params.Asset, params.Policy, params.Priority, rows})
	if err != nil {
		return nil, err
	}
	var b Batch
	_, err = c.do(ctx, "POST", "/v1/batches", body, idempotencyKey, &b)
	return &b, err
}

// CreateBatchCSV uploads a CSV file (header: to, amount and optionally
// asset, chain, external_id, memo; amounts in the asset's units, e.g. 12.5).
func (c *Client) CreateBatchCSV(ctx context.Context, params BatchParams, csv []byte, idempotencyKey string) (*Batch, error) {
	q := url.Values{}
	for k, v := range map[string]string{"chain": params.Chain, "asset": params.Asset, "policy": params.Policy, "priority": params.Priority} {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := "/v1/batches"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var b Batch
	_, err := c.doAs(ctx, "POST", path, "text/csv", csv, idempotencyKey, &b)
	return &b, err
}

// GetBatch returns a batch with its counts, totals and fees.
func (c *Client) GetBatch(ctx context.Context, id string) (*Batch, error) {
	var b Batch
	_, err := c.do(ctx, "GET", "/v1/batches/"+url.PathEscape(id), nil, "", &b)
	return &b, err
}

// GetBatchStatement returns the batch's statement as CSV: one line per row
// in input order, then the totals.
func (c *Client) GetBatchStatement(ctx context.Context, id string) ([]byte, error) {
	var raw []byte
	_, err := c.do(ctx, "GET", "/v1/batches/"+url.PathEscape(id)+"/statement.csv", nil, "", &raw)
	return raw, err
}
