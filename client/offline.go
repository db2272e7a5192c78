package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// OfflinePlan is a hot wallet's planned, unsigned transactions, exported
// to be signed on a machine with no network when its signer is down.
// Status: requested → open (Items planned, nonces reserved) → signed →
// submitted; or void_requested → voided; or empty.
type OfflinePlan struct {
	ID          string        `json:"id"`
	Chain       string        `json:"chain"`
	ChainID     uint64        `json:"chain_id"`
	Wallet      string        `json:"wallet"`
	Status      string        `json:"status"`
	MaxPayouts  int           `json:"max_payouts"`
	Items       []OfflineItem `json:"items"`
	Note        string        `json:"note,omitempty"`
	RequestedBy string        `json:"requested_by"`
	CreatedAt   time.Time     `json:"created_at"`
	UpdatedAt   time.Time     `json:"updated_at"`
}

// OfflineItem is one planned transaction. UnsignedTx (0x-hex) is the
// transaction's encoding without signature; Digest is what its signer
// signs. SignedTx and TxHash are set once the signed file is accepted.
type OfflineItem struct {
	PayoutID             string `json:"payout_id"`
	Nonce                uint64 `json:"nonce"`
	To                   string `json:"to"`
	Asset                string `json:"asset"`
	Amount               string `json:"amount"`
	GasLimit             uint64 `json:"gas_limit"`
	MaxFeePerGas         string `json:"max_fee_per_gas"`
	MaxPriorityFeePerGas string `json:"max_priority_fee_per_gas"`
	UnsignedTx           string `json:"unsigned_tx"`
	Digest               string `json:"digest"`
	SignedTx             string `json:"signed_tx,omitempty"`
	TxHash               string `json:"tx_hash,omitempty"`
}

// Offline plan statuses.
const (
	PlanRequested     = "requested"
	PlanOpen          = "open"
	PlanSigned        = "signed"
	PlanVoidRequested = "void_requested"
	PlanSubmitted     = "submitted"
	PlanVoided        = "voided"
	PlanEmpty         = "empty"
)

// CreateOfflinePlanParams asks for a plan of up to MaxPayouts (1..1000,
// default 100) queued payouts of a hot wallet.
type CreateOfflinePlanParams struct {
	Chain      string `json:"chain"`
	Wallet     string `json:"wallet"`
	MaxPayouts int    `json:"max_payouts,omitempty"`
}

// CreateOfflinePlan asks the wallet's sender to plan its queued payouts
// for offline signing; poll GetOfflinePlan until the plan is open (or
// empty). Needs the admin scope.
func (c *Client) CreateOfflinePlan(ctx context.Context, params CreateOfflinePlanParams) (*OfflinePlan, error) {
	body, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("sluice: encode offline plan request: %w", err)
	}
	return c.offlinePlan(ctx, http.MethodPost, "/v1/offline_plans", body)
}

// GetOfflinePlan returns a plan.
func (c *Client) GetOfflinePlan(ctx context.Context, id string) (*OfflinePlan, error) {
	return c.offlinePlan(ctx, http.MethodGet, "/v1/offline_plans/"+url.PathEscape(id), nil)
}

// SubmitSignedOfflinePlan submits every transaction of an open plan,
// signed (0x-hex). Each is checked against its planned transaction before
// anything is stored; the wallet's sender then broadcasts them (poll until
// the plan is submitted).
func (c *Client) SubmitSignedOfflinePlan(ctx context.Context, id string, signedTxs []string) (*OfflinePlan, error) {
	body, err := json.Marshal(map[string][]string{"signed_transactions": signedTxs})
	if err != nil {
		return nil, fmt.Errorf("sluice: encode signed transactions: %w", err)
	}
	return c.offlinePlan(ctx, http.MethodPost, "/v1/offline_plans/"+url.PathEscape(id)+"/signed", body)
}

// VoidOfflinePlan asks for an open or signed plan to be voided: its
// payouts go back to the queue, unless the chain has used one of its
// nonces (then the plan's note says so and it must be submitted).
func (c *Client) VoidOfflinePlan(ctx context.Context, id string) (*OfflinePlan, error) {
	return c.offlinePlan(ctx, http.MethodPost, "/v1/offline_plans/"+url.PathEscape(id)+"/void", nil)
}

func (c *Client) offlinePlan(ctx context.Context, method, path string, body []byte) (*OfflinePlan, error) {
	return call[OfflinePlan](ctx, c, method, path, body)
}

// call sends one request without an idempotency key and decodes its answer
// into a new T.
func call[T any](ctx context.Context, c *Client, method, path string, body []byte) (*T, error) {
	var out T
	if _, err := c.do(ctx, method, path, body, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}
