package client

import (
	"encoding/json"
	"fmt"
	"math/big"
	"time"
)

// Status is where a payout is in its life.
type Status string

// The statuses a payout can have. Queued payouts can still be cancelled.
const (
	StatusQueued     Status = "queued"
	StatusSubmitted  Status = "submitted"
	StatusStuck      Status = "stuck" // not mined and the fee cap forbids a bump: see StatusReason
	StatusConfirming Status = "confirming"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
	StatusCancelled  Status = "cancelled"
	// StatusPendingApproval: the policy holds the payout for approvers or
	// a delay; nothing is signed until it is queued.
	StatusPendingApproval Status = "pending_approval"
	// StatusRejected: an approver rejected it or its approvals expired
	// (FailureCode approval_rejected or approval_expired). Final.
	StatusRejected Status = "rejected"
)

// Payout is one payment of an asset to one address, as the API shows it.
// Amounts are in base units (wei, token units).
type Payout struct {
	ID         string
	Status     Status
	Chain      string
	ChainID    uint64
	Asset      string
	To         string // checksummed address
	Amount     *big.Int
	ExternalID string // "" when none
	Metadata   map[string]string
	From       string // the hot wallet that pays it
	Priority   string // low, standard or high
	// StatusReason says why a queued payout waits (e.g. insufficient_funds)
	// or why one is stuck (e.g. fee_cap_reached); StatusDetail says it in
	// words. Both "" when neither.
	StatusReason    string
	StatusDetail    string
	FeeCap          *big.Int // the payout's own fee cap in wei (speed-up); nil: the chain's caps
	CancelRequested bool     // cancel was asked after broadcast; the outcome is the status
	TxHash          string   // "" until a transaction is sent
	Nonce           *uint64
	BlockNumber     uint64 // 0 until mined
	Fee             *big.Int
	FailureCode     string
	FailureMessage  string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// wirePayout is the payout's JSON form.
type wirePayout struct {
	ID             string            `json:"id"`
	Object         string            `json:"object"`
	Status         Status            `json:"status"`
	Chain          string            `json:"chain"`
	ChainID        uint64            `json:"chain_id"`
	Asset          string            `json:"asset"`
	To             string            `json:"to"`
	Amount         string            `json:"amount"`
	ExternalID     *string           `json:"external_id"`
	Metadata       map[string]string `json:"metadata"`
	From           string            `json:"from"`
	Priority       string            `json:"priority"`
	StatusReason   *string           `json:"status_reason"`
	StatusDetail   *string           `json:"status_detail"`
	FeeCap         *string           `json:"fee_cap"`
	CancelRequest  bool              `json:"cancel_requested"`
	TxHash         *string           `json:"tx_hash"`
	Nonce          *uint64           `json:"nonce"`
	BlockNumber    *uint64           `json:"block_number"`
	Fee            *string           `json:"fee"`
	FailureCode    *string           `json:"failure_code"`
	FailureMessage *string           `json:"failure_message"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

// MarshalJSON writes the payout in the API's form.
func (p *Payout) MarshalJSON() ([]byte, error) {
	w := wirePayout{
		ID: p.ID, Object: "payout", Status: p.Status, Chain: p.Chain, ChainID: p.ChainID, Asset: p.Asset,
		To: p.To, Amount: bigString(p.Amount), ExternalID: optional(p.ExternalID), Metadata: p.Metadata,
		From: p.From, Priority: p.Priority, StatusReason: optional(p.StatusReason), StatusDetail: optional(p.StatusDetail),
		CancelRequest: p.CancelRequested, TxHash: optional(p.TxHash), Nonce: p.Nonce, FailureCode: optional(p.FailureCode),
		FailureMessage: optional(p.FailureMessage), CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
	if w.Metadata == nil {
		w.Metadata = map[string]string{}
	}
	if p.BlockNumber != 0 {
		w.BlockNumber = &p.BlockNumber
	}
	if p.Fee != nil {
		w.Fee = optional(p.Fee.String())
	}
	if p.FeeCap != nil {
		w.FeeCap = optional(p.FeeCap.String())
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the API's form.
func (p *Payout) UnmarshalJSON(b []byte) error {
	var w wirePayout
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	amount, err := parseBig("amount", w.Amount)
	if err != nil {
		return err
	}
	*p = Payout{
		ID: w.ID, Status: w.Status, Chain: w.Chain, ChainID: w.ChainID, Asset: w.Asset, To: w.To,
		Amount: amount, ExternalID: deref(w.ExternalID), Metadata: w.Metadata, From: w.From,
		Priority: w.Priority, StatusReason: deref(w.StatusReason), StatusDetail: deref(w.StatusDetail),
		CancelRequested: w.CancelRequest, TxHash: deref(w.TxHash), Nonce: w.Nonce, FailureCode: deref(w.FailureCode),
		FailureMessage: deref(w.FailureMessage), CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
	}
	if w.BlockNumber != nil {
		p.BlockNumber = *w.BlockNumber
	}
	if w.Fee != nil {
		if p.Fee, err = parseBig("fee", *w.Fee); err != nil {
			return err
		}
	}
	if w.FeeCap != nil {
		if p.FeeCap, err = parseBig("fee_cap", *w.FeeCap); err != nil {
			return err
		}
	}
	return nil
}

// CreatePayoutParams is what CreatePayout sends. Amount is in base units.
type CreatePayoutParams struct {
	Chain      string
	Asset      string
	To         string
	Amount     *big.Int
	ExternalID string            // optional: your permanent business key, unique per payout
	Metadata   map[string]string // optional
	Priority   string            // optional: low, standard (default) or high
}

// MarshalJSON writes the params as the API takes them: the amount as a
// decimal string.
func (p CreatePayoutParams) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Chain      string            `json:"chain"`
		Asset      string            `json:"asset"`
		To         string            `json:"to"`
		Amount     string            `json:"amount"`
		ExternalID string            `json:"external_id,omitempty"`
		Metadata   map[string]string `json:"metadata,omitempty"`
		Priority   string            `json:"priority,omitempty"`
	}{p.Chain, p.Asset, p.To, bigString(p.Amount), p.ExternalID, p.Metadata, p.Priority})
}

// ListPayoutsParams selects payouts. Zero values mean "any" and the
// server's default page size (10); Limit may be 1 to 100.
type ListPayoutsParams struct {
	Status        Status
	ExternalID    string
	BatchID       string // only the payouts of this batch
	Limit         int
	StartingAfter string // a payout id: list older payouts
	EndingBefore  string // a payout id: list newer payouts
}

// PayoutList is one page of payouts, newest first.
type PayoutList struct {
	Data    []*Payout `json:"data"`
	HasMore bool      `json:"has_more"`
}

// Chain is a chain the server may pay on.
type Chain struct {
	Name          string   `json:"name"`
	ChainID       uint64   `json:"chain_id"`
	Confirmations uint64   `json:"confirmations"`
	HotWallet     string   `json:"hot_wallet"`
	HotWallets    []string `json:"hot_wallets"` // every hot wallet; new payouts are assigned to them in turn
	Assets        []Asset  `json:"assets"`
}

// Asset is something a chain can pay. Address is "" for the native coin.
type Asset struct {
	Symbol   string
	Address  string
	Decimals uint8
}

type wireAsset struct {
	Symbol   string  `json:"symbol"`
	Address  *string `json:"address"`
	Decimals uint8   `json:"decimals"`
}

// MarshalJSON writes the asset as the API does: a null address for the
// native coin.
func (a Asset) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireAsset{a.Symbol, optional(a.Address), a.Decimals})
}

// UnmarshalJSON reads the API's form.
func (a *Asset) UnmarshalJSON(b []byte) error {
	var w wireAsset
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*a = Asset{Symbol: w.Symbol, Address: deref(w.Address), Decimals: w.Decimals}
	return nil
}

// Asset finds an asset of the chain by symbol.
func (c Chain) Asset(symbol string) (Asset, bool) {
	for _, a := range c.Assets {
		if a.Symbol == symbol {
			return a, true
		}
	}
	return Asset{}, false
}

func bigString(v *big.Int) string {
	if v == nil {
		return ""
	}
	return v.String()
}

func parseBig(field, s string) (*big.Int, error) {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, fmt.Errorf("sluice client: %s %q is not a decimal integer", field, s)
	}
	return v, nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Attempt is one signed transaction of a payout. Several attempts may share
// a nonce (fee replacements); whichever is mined settles the payout.
type Attempt struct {
	Object               string    `json:"object"`
	PayoutID             string    `json:"payout_id"`
	ChainID              uint64    `json:"chain_id"`
	From                 string    `json:"from"`
	Nonce                uint64    `json:"nonce"`
	Kind                 string    `json:"kind"` // transfer, or cancel (a zero-value self-transfer)
	TxHash               string    `json:"tx_hash"`
	GasLimit             uint64    `json:"gas_limit"`
	MaxFeePerGas         string    `json:"max_fee_per_gas"`
	MaxPriorityFeePerGas string    `json:"max_priority_fee_per_gas"`
	RawTx                string    `json:"raw_tx"` // 0x-hex signed transaction
	CreatedAt            time.Time `json:"created_at"`
}

// BroadcastResult is the outcome of sending one attempt again.
type BroadcastResult struct {
	TxHash string `json:"tx_hash"`
	Error  string `json:"error,omitempty"`
}
