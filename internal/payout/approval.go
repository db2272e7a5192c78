package payout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Approvals (issue 8). A payout whose policy decision is require_approval or
// hold is stored pending_approval with an ApprovalRequest; approvers move it
// to queued (a quorum of approvals) or rejected, and a sweep releases holds
// and expires requests nobody decided in time.

// Codes of approvals: a payout's FailureCode once rejected, and the API's
// answers to approve and reject.
const (
	// CodeApprovalRejected: an approver rejected the payout.
	CodeApprovalRejected Code = "approval_rejected"
	// CodeApprovalExpired: the payout's approvals did not reach the quorum
	// within the configured expiry.
	CodeApprovalExpired Code = "approval_expired"
	// CodeSelfApproval: the key that created a payout cannot approve it.
	CodeSelfApproval Code = "self_approval"
	// CodeNotInApproverGroup: the approver is not in the group the rule
	// names.
	CodeNotInApproverGroup Code = "not_in_approver_group"
	// CodeAlreadyDecided: this approver approved or rejected the payout
	// already.
	CodeAlreadyDecided Code = "already_decided"
	// CodeNotPendingApproval: the payout does not wait for approval.
	CodeNotPendingApproval Code = "not_pending_approval"
	// CodeApproverNameRequired: an approver key must have a name, which
	// the audit log records.
	CodeApproverNameRequired Code = "approver_name_required"
)

// Errors of approvals, for callers to branch on.
var (
	ErrNotPendingApproval = errors.New("payout does not wait for approval")
	ErrAlreadyDecided     = errors.New("approver decided this payout already")
	ErrSelfApproval       = errors.New("the payout's initiator cannot approve it")
	ErrApprovalExpired    = errors.New("the payout's approvals expired")
	ErrHeld               = errors.New("the payout is held, not waiting for approvers")
)

// Events and audit actions of approvals. The payout's status events are
// EventApproved (to queued by quorum), EventReleased (to queued when a hold
// ends) and StatusRejected.EventType().
const (
	EventApproved      = "payout.approved"
	EventReleased      = "payout.released"
	EventApprovalAdded = "payout.approval_added" // an approval below the quorum; status unchanged

	AuditPayoutApprove = "payout.approve"
	AuditPayoutReject  = "payout.reject"
	AuditPayoutExpire  = "payout.approval_expire"
	AuditPayoutRelease = "payout.hold_release"

	// ActorEngine is the audit actor of the engine's own sweeps.
	ActorEngine = "engine"
)

// ApprovalKind says what a pending payout waits for.
type ApprovalKind string

// The kinds of approval request.
const (
	ApprovalQuorum ApprovalKind = "require_approval" // Quorum approvers of Group
	ApprovalHold   ApprovalKind = "hold"             // until HoldUntil
)

// ApprovalRequest is what a pending_approval payout waits for, stored with
// it when it is created.
type ApprovalRequest struct {
	PayoutID  string       `json:"-"`
	Kind      ApprovalKind `json:"kind"`
	Quorum    int          `json:"quorum,omitempty"`
	Group     string       `json:"group,omitempty"`
	Initiator string       `json:"initiator"` // the creating API key's id
	HoldUntil time.Time    `json:"-"`         // hold only
	ExpiresAt time.Time    `json:"expires_at"`
	CreatedAt time.Time    `json:"created_at"`
}

// Validate checks that the request is complete.
func (r *ApprovalRequest) Validate() error {
	switch {
	case r.PayoutID == "":
		return errors.New("approval request: no payout id")
	case r.Kind == ApprovalQuorum && (r.Quorum < 1 || r.Group == ""):
		return fmt.Errorf("approval request %s: quorum %d of group %q", r.PayoutID, r.Quorum, r.Group)
	case r.Kind == ApprovalHold && r.HoldUntil.IsZero():
		return fmt.Errorf("approval request %s: a hold needs its end", r.PayoutID)
	case r.Kind != ApprovalQuorum && r.Kind != ApprovalHold:
		return fmt.Errorf("approval request %s: unknown kind %q", r.PayoutID, r.Kind)
	case r.ExpiresAt.IsZero() || r.CreatedAt.IsZero():
		return fmt.Errorf("approval request %s: times not set", r.PayoutID)
	}
	return nil
}

// ApprovalDecision is one approver's answer.
type ApprovalDecision string

// An approver approves or rejects.
const (
	Approve ApprovalDecision = "approve"
	Reject  ApprovalDecision = "reject"
)

// Approval is one approver's decision about a payout.
type Approval struct {
	PayoutID      string           `json:"-"`
	ApproverKeyID string           `json:"approver_key_id"`
	ApproverName  string           `json:"approver_name"`
	Decision      ApprovalDecision `json:"decision"`
	Reason        string           `json:"reason,omitempty"`
	CreatedAt     time.Time        `json:"created_at"`
}

// Validate checks an approval before it is recorded.
func (a *Approval) Validate() error {
	switch {
	case a.PayoutID == "" || a.ApproverKeyID == "":
		return errors.New("approval: payout and approver are required")
	case strings.TrimSpace(a.ApproverName) == "":
		return &FieldError{Field: "approver", Code: CodeApproverNameRequired, Message: "an approver's API key must have a name"}
	case a.Decision != Approve && a.Decision != Reject:
		return fmt.Errorf("approval: unknown decision %q", a.Decision)
	case len(a.Reason) > 500:
		return &FieldError{Field: "reason", Code: CodeInvalidRequest, Message: "reason is at most 500 characters"}
	case a.Decision == Reject && strings.TrimSpace(a.Reason) == "":
		return &FieldError{Field: "reason", Code: CodeInvalidRequest, Message: "reason is required: say why the payout is rejected"}
	}
	return nil
}

// ApprovalState is a pending (or decided) payout's request with the
// approvals it has gathered, oldest first.
type ApprovalState struct {
	Request   *ApprovalRequest `json:"request"`
	Approvals []Approval       `json:"approvals"`
}

// Approved counts the approvals.
func (s *ApprovalState) Approved() int {
	n := 0
	for _, a := range s.Approvals {
		if a.Decision == Approve {
			n++
		}
	}
	return n
}

// Decided reports whether the approver keyID has answered already.
func (s *ApprovalState) Decided(keyID string) bool {
	for _, a := range s.Approvals {
		if a.ApproverKeyID == keyID {
			return true
		}
	}
	return false
}

// Check says whether a may be recorded on a payout with this state at now:
// nil, or ErrHeld, ErrSelfApproval, ErrAlreadyDecided or ErrApprovalExpired.
// Rejecting one's own payout is allowed: it only stops money.
func (s *ApprovalState) Check(a *Approval, now time.Time) error {
	r := s.Request
	switch {
	case !now.Before(r.ExpiresAt):
		return ErrApprovalExpired
	case r.Kind == ApprovalHold && a.Decision == Approve:
		return ErrHeld
	case a.Decision == Approve && a.ApproverKeyID == r.Initiator:
		return ErrSelfApproval
	case s.Decided(a.ApproverKeyID):
		return ErrAlreadyDecided
	}
	return nil
}

// SweepResult says what a sweep of pending payouts did.
type SweepResult struct {
	Released []string // holds that ended: now queued
	Expired  []string // approvals that expired: now rejected
}

// BatchApproval says what approving a batch did, by payout id.
type BatchApproval struct {
	Approved []string `json:"approved"` // approval recorded
	Queued   []string `json:"queued"`   // of those, the ones that reached their quorum
	Skipped  []string `json:"skipped"`  // decided already, held, or another group's
	Expired  []string `json:"expired"`  // rejected: their approvals had expired
}

// ApprovalStore persists approval requests and approvals. The SQLite and
// PostgreSQL stores implement it.
type ApprovalStore interface {
	// SaveApprovalRequest stores what a payout about to be created
	// pending_approval waits for. Like its decision it is written before
	// the payout; a request whose payout never got stored is harmless.
	SaveApprovalRequest(ctx context.Context, r *ApprovalRequest) error
	// ApprovalState returns a payout's request and approvals, or
	// ErrNotFound when it has none.
	ApprovalState(ctx context.Context, payoutID string) (*ApprovalState, error)
	// DecidePayout records a's decision (made at a.CreatedAt, set by the
	// caller; the store's clock when zero) on a pending payout with its
	// audit entry and event, in one transaction: an approval that reaches
	// the quorum moves it to queued (EventApproved), a rejection to
	// rejected (CodeApprovalRejected). It returns ErrNotFound,
	// ErrNotPendingApproval, or Check's errors; an expired payout is moved
	// to rejected (CodeApprovalExpired) and ErrApprovalExpired returned.
	DecidePayout(ctx context.Context, a *Approval) (*Payout, error)
	// DecideBatch approves, as a, every payout of a batch that waits for
	// approval, in one transaction: each as DecidePayout would, except
	// that payouts a has decided already, held ones and those whose group
	// inGroup refuses are skipped, and expired ones rejected. It returns
	// ErrNotPendingApproval when none waits, and ErrSelfApproval (nothing
	// written) when a created any of them.
	DecideBatch(ctx context.Context, batchID string, a *Approval, inGroup func(group string) bool) (BatchApproval, error)
	// SweepApprovals releases holds that ended and rejects requests that
	// expired at now, each with its event and audit entry.
	SweepApprovals(ctx context.Context, now time.Time, limit int) (SweepResult, error)
}
