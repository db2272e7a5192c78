package payout

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// A Rotation moves a chain's sending from one hot wallet to another (a key
// that must be retired: exposed, or held by a signer being replaced). From
// the moment it is stored, new payouts are no longer assigned to From, and
// From's sender hands every queued payout to To; what From has in flight
// is finished by From's sender as usual (replacements included), so
// nothing is paid twice. Once From has nothing queued, in flight or
// confirming, its sender sweeps what it holds to To: one payout per token
// it holds, then its native coin less a reserve for those transfers' fees.
// The rotation completes when the sweeps end. From stays retired: remove
// it from the config when convenient.
//
// Life: draining → sweeping → completed.
type Rotation struct {
	Object    string         `json:"object"` // "wallet_rotation"
	ID        string         `json:"id"`
	Chain     string         `json:"chain"`
	ChainID   uint64         `json:"chain_id"`
	From      common.Address `json:"from"`
	To        common.Address `json:"to"`
	Status    RotationStatus `json:"status"`
	Sweeps    []string       `json:"sweep_payout_ids"` // the sweep payouts, once created
	Note      string         `json:"note,omitempty"`
	CreatedBy string         `json:"created_by"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// RotationStatus is where a rotation is in its life.
type RotationStatus string

// The statuses of a rotation.
const (
	RotationDraining  RotationStatus = "draining"
	RotationSweeping  RotationStatus = "sweeping"
	RotationCompleted RotationStatus = "completed"
)

// ErrRotationExists: the wallet is already being (or was) rotated away.
var ErrRotationExists = errors.New("the wallet is already rotated away")

// Events and audit action of rotations (the event object is the rotation).
const (
	EventRotationStarted   = "wallet_rotation.started"
	EventRotationSweeping  = "wallet_rotation.sweeping"
	EventRotationCompleted = "wallet_rotation.completed"
	AuditRotationCreate    = "wallet_rotation.create"
)

// SweepExternalIDPrefix starts the external id of every sweep payout
// ("sluice:rotation:ID:ASSET"). The API refuses external ids with the
// reserved "sluice:" prefix, so a sweep cannot be forged.
const SweepExternalIDPrefix = "sluice:rotation:"

// ReservedExternalIDPrefix is refused in external ids given by clients.
const ReservedExternalIDPrefix = "sluice:"

// IsSweepOf reports whether p is a sweep payout of rotation id ("" for any
// rotation).
func IsSweepOf(p *Payout, id string) bool {
	return strings.HasPrefix(p.ExternalID, SweepExternalIDPrefix+id)
}

// RotationStore keeps rotations (package store implements it).
type RotationStore interface {
	// CreateRotation stores a draining rotation with its audit entry and
	// event; ErrRotationExists when From already has one.
	CreateRotation(ctx context.Context, r *Rotation) error
	// GetRotation returns ErrNotFound when there is no such rotation.
	GetRotation(ctx context.Context, id string) (*Rotation, error)
	// Rotations returns every rotation, oldest first.
	Rotations(ctx context.Context) ([]*Rotation, error)
	// StartSweep stores the sweep payouts (queued, sent by From) and moves
	// the rotation to sweeping, in one transaction; with no sweeps it
	// completes it with note.
	StartSweep(ctx context.Context, id string, sweeps []*Payout, note string) error
	// CompleteRotation moves a sweeping rotation to completed with note.
	CompleteRotation(ctx context.Context, id, note string) error
}
