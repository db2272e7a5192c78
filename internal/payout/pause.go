package payout

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// PauseScope says what an emergency pause stops.
type PauseScope string

// The scopes of a pause.
const (
	PauseGlobal PauseScope = "global" // every payout
	PauseChain  PauseScope = "chain"  // every payout on Chain
	PauseAsset  PauseScope = "asset"  // payouts of Asset on Chain
	PauseWallet PauseScope = "wallet" // payouts sent by hot wallet Wallet (on Chain when set)
)

// Events of pauses; their data is the pause.
const (
	EventPauseCreated = "pause.created"
	EventPauseResumed = "pause.resumed"
)

// ReasonPaused: an operator's emergency pause stops the payout; it waits
// queued until the pause is resumed. The detail names the pause.
const ReasonPaused Code = "paused"

// CodeInvalidPause is the API's answer to a pause request that names the
// wrong fields for its scope.
const CodeInvalidPause Code = "invalid_pause"

// CodePauseResumed answers a resume of a pause that was resumed already.
const CodePauseResumed Code = "pause_already_resumed"

// ErrPauseResumed is returned when resuming a pause that was resumed already.
var ErrPauseResumed = errors.New("pause was resumed already")

// Pause is an operator's emergency stop. While active (ResumedAt zero) the
// senders sign no new payout it matches; transactions already broadcast go
// on (fee bumps, cancels, confirmations).
type Pause struct {
	ID        string         `json:"id"`
	Object    string         `json:"object"` // "pause"
	Scope     PauseScope     `json:"scope"`
	Chain     string         `json:"chain,omitempty"`
	Asset     string         `json:"asset,omitempty"`
	Wallet    common.Address `json:"-"` // shown as "wallet", absent when zero
	Reason    string         `json:"reason"`
	CreatedBy string         `json:"created_by"`
	CreatedAt time.Time      `json:"created_at"`
	ResumedBy string         `json:"resumed_by,omitempty"`
	ResumedAt time.Time      `json:"-"` // shown as "resumed_at", null while active
}

// MarshalJSON writes the pause as the API shows it.
func (p Pause) MarshalJSON() ([]byte, error) {
	type plain Pause
	w := struct {
		plain
		Wallet    string     `json:"wallet,omitempty"`
		ResumedAt *time.Time `json:"resumed_at"`
	}{plain: plain(p)}
	w.Object = "pause"
	w.CreatedAt = p.CreatedAt.UTC()
	if p.Wallet != (common.Address{}) {
		w.Wallet = p.Wallet.Hex()
	}
	if !p.ResumedAt.IsZero() {
		t := p.ResumedAt.UTC()
		w.ResumedAt = &t
	}
	return json.Marshal(w)
}

// Active reports whether the pause still holds payouts.
func (p *Pause) Active() bool { return p.ResumedAt.IsZero() }

// Matches reports whether the pause stops a payout of asset on chain sent
// by wallet.
func (p *Pause) Matches(chain, asset string, wallet common.Address) bool {
	switch p.Scope {
	case PauseGlobal:
		return true
	case PauseChain:
		return p.Chain == chain
	case PauseAsset:
		return p.Chain == chain && p.Asset == asset
	case PauseWallet:
		return p.Wallet == wallet && (p.Chain == "" || p.Chain == chain)
	}
	return true // an unknown scope stops everything: failing closed is the safe side
}

// Validate checks that the pause names what its scope needs and nothing
// else; the error is a *FieldError.
func (p *Pause) Validate() error {
	bad := func(field, msg string) error { return &FieldError{Field: field, Code: CodeInvalidPause, Message: msg} }
	if strings.TrimSpace(p.Reason) == "" || len(p.Reason) > 500 {
		return bad("reason", "reason is required (at most 500 characters): say why payments stop")
	}
	noWallet := p.Wallet == (common.Address{})
	switch p.Scope {
	case PauseGlobal:
		if p.Chain != "" || p.Asset != "" || !noWallet {
			return bad("scope", "a global pause names no chain, asset or wallet")
		}
	case PauseChain:
		if p.Chain == "" || p.Asset != "" || !noWallet {
			return bad("chain", "a chain pause names a chain and nothing else")
		}
	case PauseAsset:
		if p.Chain == "" || p.Asset == "" || !noWallet {
			return bad("asset", "an asset pause names a chain and an asset")
		}
	case PauseWallet:
		if noWallet || p.Asset != "" {
			return bad("wallet", "a wallet pause names a wallet (and optionally its chain)")
		}
	default:
		return bad("scope", "scope must be global, chain, asset or wallet")
	}
	return nil
}

// Describe says in a few words what the pause stops, for a payout's
// waiting detail and the logs.
func (p *Pause) Describe() string {
	s := "paused by " + p.ID + " (" + string(p.Scope)
	switch p.Scope {
	case PauseChain:
		s += " " + p.Chain
	case PauseAsset:
		s += " " + p.Asset + " on " + p.Chain
	case PauseWallet:
		s += " " + p.Wallet.Hex()
	}
	return s + "): " + p.Reason
}

// PauseStore keeps pauses; creating and resuming one appends its audit
// entry and its event in the same transaction.
type PauseStore interface {
	// CreatePause stores an active pause (ID and CreatedBy set by the
	// caller; CreatedAt set to the transaction's time) with its audit
	// entry and EventPauseCreated.
	CreatePause(ctx context.Context, p *Pause) error
	// ResumePause ends a pause, recording by whom. It returns ErrNotFound,
	// or ErrPauseResumed (with the pause) when it had ended already.
	ResumePause(ctx context.Context, id, actor string) (*Pause, error)
	// ActivePauses returns the pauses in force, oldest first. It is one
	// small indexed query: senders call it before every signing round.
	ActivePauses(ctx context.Context) ([]*Pause, error)
}

// MatchPause returns the first of pauses that stops a payout of asset on
// chain from wallet, or nil.
func MatchPause(pauses []*Pause, chain, asset string, wallet common.Address) *Pause {
	for _, p := range pauses {
		if p.Matches(chain, asset, wallet) {
			return p
		}
	}
	return nil
}
