package payout

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// An offline plan is how a hot wallet keeps paying when its signing service
// is down: the wallet's sender plans the transactions of its queued
// payouts, reserving their nonces, without signing them; an operator
// signs them on a machine with no network (`sluice sign --offline`) and
// submits the signed file; the sender stores and broadcasts them like any
// it signed itself. While a wallet has an active plan its sender signs
// nothing new, so the reserved nonces are never used twice.
//
// Life: requested → open (planned; nonces reserved; its payouts are
// signing_offline) → signed (the signed file was accepted) → submitted
// (stored as attempts and broadcast). An open or signed plan can be voided
// (void_requested → voided: its payouts go back to the queue) only while
// the chain has used none of its nonces; otherwise the signed
// transactions may be out there and the plan must be submitted.
type OfflinePlan struct {
	Object      string            `json:"object"` // "offline_plan"
	ID          string            `json:"id"`
	Chain       string            `json:"chain"`
	ChainID     uint64            `json:"chain_id"`
	Wallet      common.Address    `json:"wallet"`
	Status      OfflinePlanStatus `json:"status"`
	MaxPayouts  int               `json:"max_payouts"`
	Items       []OfflineItem     `json:"items"`
	Note        string            `json:"note,omitempty"` // why it is empty, or why a void was refused
	RequestedBy string            `json:"requested_by"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

// OfflinePlanStatus is where an offline plan is in its life.
type OfflinePlanStatus string

// The statuses of an offline plan.
const (
	PlanRequested     OfflinePlanStatus = "requested"
	PlanOpen          OfflinePlanStatus = "open"
	PlanSigned        OfflinePlanStatus = "signed"
	PlanVoidRequested OfflinePlanStatus = "void_requested"
	PlanSubmitted     OfflinePlanStatus = "submitted"
	PlanVoided        OfflinePlanStatus = "voided"
	PlanEmpty         OfflinePlanStatus = "empty" // nothing was queued to plan
)

// Active reports whether a plan still holds (or is about to hold) its
// wallet's sending.
func (s OfflinePlanStatus) Active() bool {
	return s == PlanRequested || s == PlanOpen || s == PlanSigned || s == PlanVoidRequested
}

// OfflineItem is one planned transaction: it pays PayoutID at Nonce.
// Unsigned is the transaction's canonical encoding without signature and
// Digest the hash its signer signs; Signed is set once a signed file was
// accepted.
type OfflineItem struct {
	PayoutID             string         `json:"payout_id"`
	Nonce                uint64         `json:"nonce"`
	To                   common.Address `json:"to"` // the payee (not the token contract)
	Asset                string         `json:"asset"`
	Amount               string         `json:"amount"` // base units
	GasLimit             uint64         `json:"gas_limit"`
	MaxFeePerGas         string         `json:"max_fee_per_gas"`
	MaxPriorityFeePerGas string         `json:"max_priority_fee_per_gas"`
	Unsigned             HexBytes       `json:"unsigned_tx"`
	Digest               common.Hash    `json:"digest"`
	Signed               HexBytes       `json:"signed_tx,omitempty"`
	TxHash               *common.Hash   `json:"tx_hash,omitempty"`
}

// Errors of offline plans.
var (
	// ErrOfflinePlanActive: the wallet already has an active plan; submit
	// or void it first.
	ErrOfflinePlanActive = errors.New("the wallet already has an active offline plan")
	// ErrOfflinePlanState: the plan is not in a status that allows this.
	ErrOfflinePlanState = errors.New("the offline plan's status does not allow this")
)

// Events and audit actions of offline plans (the event object is the plan).
const (
	EventOfflinePlanOpened    = "offline_plan.opened"
	EventOfflinePlanSubmitted = "offline_plan.submitted"
	EventOfflinePlanVoided    = "offline_plan.voided"

	AuditOfflinePlanRequest = "offline_plan.request"
	AuditOfflinePlanSign    = "offline_plan.submit_signed"
	AuditOfflinePlanVoid    = "offline_plan.void"
)

// ReasonOfflinePlan: a queued payout waits because its wallet has an
// active offline plan (its sender signs nothing new until the plan is
// submitted or voided).
const ReasonOfflinePlan Code = "offline_plan_active"

// OfflinePlanStore keeps offline plans (package store implements it on
// SQLite and PostgreSQL). Every method that changes a plan writes its audit
// entry or event in the same database transaction.
type OfflinePlanStore interface {
	// CreateOfflinePlan stores a requested plan; ErrOfflinePlanActive when
	// the wallet has one.
	CreateOfflinePlan(ctx context.Context, pl *OfflinePlan) error
	// GetOfflinePlan returns ErrNotFound when there is no such plan.
	GetOfflinePlan(ctx context.Context, id string) (*OfflinePlan, error)
	// ActiveOfflinePlan returns the wallet's active plan, or ErrNotFound.
	ActiveOfflinePlan(ctx context.Context, chainID uint64, wallet common.Address) (*OfflinePlan, error)
	// OpenOfflinePlan reserves the items' nonces, moves their payouts from
	// queued to signing_offline and opens the plan (empty, with note, when
	// there are no items). *StaleError when a payout is no longer queued.
	OpenOfflinePlan(ctx context.Context, id string, items []OfflineItem, note string) error
	// SignOfflinePlan stores an open plan's signed transactions (checked
	// with MatchSigned) and marks it signed.
	SignOfflinePlan(ctx context.Context, id, actor string, signed []OfflineItem) (*OfflinePlan, error)
	// SubmitOfflinePlan stores a signed plan's transactions as its payouts'
	// first attempts, moves them to submitted and marks the plan submitted.
	SubmitOfflinePlan(ctx context.Context, id string, attempts []*Attempt) error
	// RequestOfflineVoid asks the wallet's sender to void an open or
	// signed plan.
	RequestOfflineVoid(ctx context.Context, id, actor string) (*OfflinePlan, error)
	// EndOfflineVoid voids the plan (refused empty: nonces freed, payouts
	// queued again) or refuses the void, keeping refused as its note.
	EndOfflineVoid(ctx context.Context, id, refused string) error
}

// HexBytes is bytes written in JSON as 0x-prefixed hex.
type HexBytes []byte

// MarshalText writes 0x-prefixed hex.
func (b HexBytes) MarshalText() ([]byte, error) { return []byte("0x" + hex.EncodeToString(b)), nil }

// UnmarshalText reads 0x-prefixed hex.
func (b *HexBytes) UnmarshalText(t []byte) error {
	s, ok := strings.CutPrefix(string(t), "0x")
	if !ok {
		return fmt.Errorf("hex bytes must start with 0x")
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("hex bytes: %w", err)
	}
	*b = v
	return nil
}
