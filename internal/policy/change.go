package policy

import (
	"errors"
	"time"
)

// A policy change can need an approval quorum (issue 8): the new version is
// stored pending and becomes active only when Quorum distinct approvers,
// none of them its proposer, approve it. One rejection rejects it; a newer
// version stored meanwhile supersedes it.

// The statuses of a policy version.
const (
	StatusApplied    = "applied"    // made active when stored, or when its quorum approved it
	StatusPending    = "pending"    // waits for its quorum
	StatusRejected   = "rejected"   // an approver rejected it
	StatusSuperseded = "superseded" // a newer version was stored while it waited
	StatusExpired    = "expired"    // it waited longer than the approvals' expiry
)

// Audit actions of policy changes (AuditPolicyApply, in payout, records a
// version made active).
const (
	AuditPolicyPropose   = "policy.propose"
	AuditPolicyApprove   = "policy.approve"
	AuditPolicyReject    = "policy.reject"
	AuditPolicySupersede = "policy.supersede"
	AuditPolicyExpire    = "policy.expire"
)

// ErrNotPending is returned when a policy version that does not wait for
// approvals is approved or rejected.
var ErrNotPending = errors.New("policy version does not wait for approval")

// ErrChangeExpired is returned when a pending policy version is approved or
// rejected after waiting longer than the approvals' expiry: it is expired
// instead (and stays inactive).
var ErrChangeExpired = errors.New("policy version waited too long for its approvals")

// Change is a stored policy version's approval state.
type Change struct {
	Version   int64            `json:"version"`
	Status    string           `json:"status"`
	Quorum    int              `json:"quorum"` // approvals it needs; 0 when applied at once
	Approvals []ChangeApproval `json:"approvals"`
}

// Approved counts the approvals.
func (c *Change) Approved() int {
	n := 0
	for _, a := range c.Approvals {
		if a.Decision == "approve" {
			n++
		}
	}
	return n
}

// ChangeApproval is one approver's decision on a pending policy version.
type ChangeApproval struct {
	ApproverKeyID string    `json:"approver_key_id"`
	ApproverName  string    `json:"approver_name"`
	Decision      string    `json:"decision"` // approve or reject
	Reason        string    `json:"reason"`
	CreatedAt     time.Time `json:"created_at"`
}
