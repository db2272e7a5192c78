package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Approval is what a payout the policy held waits or waited for, and the
// approvers' decisions, as GET /v1/payouts/{id} shows it.
type Approval struct {
	Kind      string             `json:"kind"` // require_approval or hold
	Quorum    int                `json:"quorum"`
	Group     string             `json:"group"`
	Initiator string             `json:"initiator"` // the creating key's id; it cannot approve
	HoldUntil *time.Time         `json:"hold_until"`
	ExpiresAt time.Time          `json:"expires_at"`
	CreatedAt time.Time          `json:"created_at"`
	Approved  int                `json:"approved"`
	Approvals []ApproverDecision `json:"approvals"`
}

// ApproverDecision is one approver's answer.
type ApproverDecision struct {
	ApproverKeyID string    `json:"approver_key_id"`
	ApproverName  string    `json:"approver_name"`
	Decision      string    `json:"decision"` // approve or reject
	Reason        string    `json:"reason"`
	CreatedAt     time.Time `json:"created_at"`
}

// ApprovePayout approves a pending_approval payout with the client's key
// (scope approver); reason may be empty. When the approvals reach the
// quorum the payout is queued. Refusals are *Error with codes
// self_approval, not_in_approver_group, already_decided,
// not_pending_approval, payout_held or approval_expired. A retry that finds
// its own approval recorded returns the payout.
func (c *Client) ApprovePayout(ctx context.Context, id, reason string) (*Payout, error) {
	return c.decide(ctx, id, "approve", reason)
}

// RejectPayout rejects a pending_approval payout (scope approver); the
// reason is required. The payout ends rejected with failure code
// approval_rejected.
func (c *Client) RejectPayout(ctx context.Context, id, reason string) (*Payout, error) {
	if reason == "" {
		return nil, fmt.Errorf("reject %s: a reason is required", id)
	}
	return c.decide(ctx, id, "reject", reason)
}

func (c *Client) decide(ctx context.Context, id, verb, reason string) (*Payout, error) {
	body := []byte("{}")
	if reason != "" {
		var err error
		if body, err = json.Marshal(map[string]string{"reason": reason}); err != nil {
			return nil, err
		}
	}
	var p Payout
	retried, err := c.do(ctx, http.MethodPost, "/v1/payouts/"+url.PathEscape(id)+"/"+verb, body, "", &p)
	if retried && ErrorCode(err) == "already_decided" {
		// The first try was recorded before its answer was lost.
		return c.GetPayout(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// PayoutApproval returns the approval state shown on GET
// /v1/payouts/{id}, or nil when the policy did not hold the payout.
func (c *Client) PayoutApproval(ctx context.Context, id string) (*Approval, error) {
	var out struct {
		Approval *Approval `json:"approval"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/payouts/"+url.PathEscape(id), nil, "", &out); err != nil {
		return nil, err
	}
	return out.Approval, nil
}

// BatchApproval says what approving a batch did, by payout id.
type BatchApproval struct {
	Batch    *Batch   `json:"batch"`
	Approved []string `json:"approved"` // approval recorded
	Queued   []string `json:"queued"`   // of those, now queued (quorum reached)
	Skipped  []string `json:"skipped"`  // decided by this key already, held, or another group's
	Expired  []string `json:"expired"`  // their approvals had expired: now rejected
}

// ApproveBatch approves, with the client's key (scope approver), every
// payout of a batch that waits for approval, at once. reason may be empty.
func (c *Client) ApproveBatch(ctx context.Context, id, reason string) (*BatchApproval, error) {
	body := []byte("{}")
	if reason != "" {
		var err error
		if body, err = json.Marshal(map[string]string{"reason": reason}); err != nil {
			return nil, err
		}
	}
	var out BatchApproval
	if _, err := c.do(ctx, http.MethodPost, "/v1/batches/"+url.PathEscape(id)+"/approve", body, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// BatchRejection says what rejecting a batch did, by payout id.
type BatchRejection struct {
	Batch    *Batch   `json:"batch"`
	Rejected []string `json:"rejected"` // now rejected (approval_rejected)
	Skipped  []string `json:"skipped"`  // approved by this key already: still waiting
	Expired  []string `json:"expired"`  // their approvals had expired: now rejected (approval_expired)
}

// RejectBatch rejects, with the client's key (scope approver), every
// payout of a batch that waits for approval (held ones too), at once. The
// reason is required.
func (c *Client) RejectBatch(ctx context.Context, id, reason string) (*BatchRejection, error) {
	if reason == "" {
		return nil, fmt.Errorf("reject batch %s: a reason is required", id)
	}
	body, err := json.Marshal(map[string]string{"reason": reason})
	if err != nil {
		return nil, err
	}
	var out BatchRejection
	if _, err := c.do(ctx, http.MethodPost, "/v1/batches/"+url.PathEscape(id)+"/reject", body, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}
