package payout

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// Policy codes (issue 8). A payout a policy denies is not stored: the API
// answers 422 with one of these codes.
const (
	// CodeSanctionedDestination: the destination is on a sanctions list
	// (e.g. OFAC's SDN list); a hard deny no rule can override.
	CodeSanctionedDestination Code = "sanctioned_destination"
	// CodeDeniedDestination: the destination is on a deny list.
	CodeDeniedDestination Code = "denied_destination"
	// CodePolicyDenied: a rule denied the payout, or no rule matched and
	// the policy's default (deny) applied.
	CodePolicyDenied Code = "policy_denied"
	// CodeApprovalRequired: a rule asks for approval or a hold. A single
	// payout is then stored pending_approval (this is its decision's code);
	// a batch row is refused with it.
	CodeApprovalRequired Code = "approval_required"
	// CodeInvalidPolicy: a policy document does not parse or type-check.
	CodeInvalidPolicy Code = "invalid_policy"
	// CodeInvalidList: a list or list entry is malformed.
	CodeInvalidList Code = "invalid_list"
)

// Audit actions of policies and lists.
const (
	AuditPolicyApply  = "policy.apply"
	AuditPolicyDeny   = "policy.deny"
	AuditListCreate   = "list.create"
	AuditListEntries  = "list.entries"
	AuditListReplaced = "list.replace"
)

// ListKind says what a list does to the payouts whose destination it holds.
type ListKind string

// The kinds of a list.
const (
	ListDeny  ListKind = "deny"
	ListAllow ListKind = "allow"
)

// ErrNoPolicy is returned when no policy version is active.
var ErrNoPolicy = errors.New("no active policy")

// PolicyVersion is one stored version of the policy document. Every version
// is kept; at most one is active.
type PolicyVersion struct {
	Version   int64     `json:"version"` // 1, 2, 3, … in the order they were stored
	Document  string    `json:"document"`
	SHA256    string    `json:"sha256"` // of Document, hex
	Active    bool      `json:"active"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// PolicyDecision is what a policy decided about a payout, stored with the
// facts it was decided on. Facts is the policy package's JSON.
type PolicyDecision struct {
	PayoutID      string          `json:"-"`
	PolicyVersion int64           `json:"policy_version"`
	Rule          string          `json:"rule"`   // the rule that matched; "" for a hard deny or the default
	Action        string          `json:"action"` // allow, deny, require_approval, hold
	Code          string          `json:"code,omitempty"`
	Reason        string          `json:"reason"`
	APIKeyID      string          `json:"api_key_id"`
	Facts         json.RawMessage `json:"facts"`
	DecidedAt     time.Time       `json:"decided_at"`
}

// List is a named deny or allow list of destinations. Sanctions marks a
// deny list of sanctioned addresses: a hit answers
// CodeSanctionedDestination rather than CodeDeniedDestination.
type List struct {
	Name      string    `json:"name"`
	Object    string    `json:"object"` // "list"
	Kind      ListKind  `json:"kind"`
	Sanctions bool      `json:"sanctions"`
	Entries   int64     `json:"entries"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ListEntry is one address on a list.
type ListEntry struct {
	Address common.Address
	Note    string // where it came from, e.g. the SDN entry's uid
}

// ListChange says what replacing or extending a list changed.
type ListChange struct {
	Added   []common.Address `json:"added"`
	Removed []common.Address `json:"removed"`
}

// ListHit is a list that holds an address.
type ListHit struct {
	Name      string
	Kind      ListKind
	Sanctions bool
}

// HistoryItem is a past payout as velocity counts it.
type HistoryItem struct {
	ID        string
	Chain     string
	Asset     string
	Sender    common.Address
	To        common.Address
	Amount    *big.Int
	APIKeyID  string // from its decision; "" when it was created with no policy active
	CreatedAt time.Time
}

// PolicyStore persists policy versions, decisions and lists. The SQLite and
// PostgreSQL stores implement it.
type PolicyStore interface {
	// SavePolicy stores a new version (Version, CreatedAt and SHA256 are
	// set) and, when activate, makes it the active one, with its audit
	// entry, in one transaction.
	SavePolicy(ctx context.Context, v *PolicyVersion, activate bool) error
	// ActivePolicy returns the active version or ErrNoPolicy.
	ActivePolicy(ctx context.Context) (*PolicyVersion, error)
	// PolicyVersions returns every version, newest first.
	PolicyVersions(ctx context.Context) ([]*PolicyVersion, error)
	// SaveDecision stores a payout's decision (one per payout id and stage).
	SaveDecision(ctx context.Context, d *PolicyDecision) error
	// DeleteDecision removes the decision of a payout that was not stored
	// after all (its idempotency key turned out used).
	DeleteDecision(ctx context.Context, payoutID string) error
	// PayoutDecision returns the decision of a payout, or ErrNotFound.
	PayoutDecision(ctx context.Context, payoutID string) (*PolicyDecision, error)
	// CreateList stores an empty list; a list of that name answers
	// ErrListExists.
	CreateList(ctx context.Context, l *List, actor string) error
	// Lists returns every list by name.
	Lists(ctx context.Context) ([]*List, error)
	// GetList returns a list or ErrNotFound.
	GetList(ctx context.Context, name string) (*List, error)
	// AddListEntries adds entries to a list (those present stay) and says
	// which were new.
	AddListEntries(ctx context.Context, name string, entries []ListEntry, actor string) (*ListChange, error)
	// ReplaceListEntries makes the list hold exactly entries and says what
	// was added and removed.
	ReplaceListEntries(ctx context.Context, name string, entries []ListEntry, actor string) (*ListChange, error)
	// ListsHolding returns the lists that hold addr.
	ListsHolding(ctx context.Context, addr common.Address) ([]ListHit, error)
	// FirstPaid returns when a payout to addr first completed, and false
	// when none has.
	FirstPaid(ctx context.Context, addr common.Address) (time.Time, bool, error)
	// PayoutHistory returns payouts created at or after since, neither
	// failed nor cancelled, oldest first.
	PayoutHistory(ctx context.Context, since time.Time) ([]HistoryItem, error)
}

// ErrListExists is returned when creating a list whose name is taken.
var ErrListExists = errors.New("a list of that name exists")
