package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Policy is a stored version of the policy document; one is active.
type Policy struct {
	Version         int64     `json:"version"`
	Document        string    `json:"document"` // YAML
	SHA256          string    `json:"sha256"`
	Active          bool      `json:"active"`
	CreatedBy       string    `json:"created_by"`
	CreatedAt       time.Time `json:"created_at"`
	VelocityWindows []string  `json:"velocity_windows"` // "scope/window" the rules read
	// Status is applied, pending (it waits for Quorum approvals before it
	// is active), rejected or superseded.
	Status    string           `json:"status"`
	Quorum    int              `json:"quorum"` // 0 when applied at once
	Approvals []PolicyApproval `json:"approvals"`
}

// PolicyApproval is one approver's decision on a policy version.
type PolicyApproval struct {
	ApproverKeyID string    `json:"approver_key_id"`
	ApproverName  string    `json:"approver_name"`
	Decision      string    `json:"decision"` // approve or reject
	Reason        string    `json:"reason"`
	CreatedAt     time.Time `json:"created_at"`
}

// ApprovePolicy approves, with the client's key (scope approver, not the
// key that proposed it), a policy version that waits for approvals; the
// approval that reaches the quorum makes it active. reason may be empty.
// Refusals are *Error with codes self_approval, not_in_approver_group,
// already_decided or not_pending_approval. A retry that finds its own
// approval recorded returns the version.
func (c *Client) ApprovePolicy(ctx context.Context, version int64, reason string) (*Policy, error) {
	return c.decidePolicy(ctx, version, "approve", reason)
}

// RejectPolicy rejects a policy version that waits for approvals (scope
// approver; its proposer may withdraw it so). The reason is required.
func (c *Client) RejectPolicy(ctx context.Context, version int64, reason string) (*Policy, error) {
	if reason == "" {
		return nil, fmt.Errorf("reject policy version %d: a reason is required", version)
	}
	return c.decidePolicy(ctx, version, "reject", reason)
}

func (c *Client) decidePolicy(ctx context.Context, version int64, verb, reason string) (*Policy, error) {
	body := []byte("{}")
	if reason != "" {
		var err error
		if body, err = json.Marshal(map[string]string{"reason": reason}); err != nil {
			return nil, err
		}
	}
	var out Policy
	retried, err := c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/policy/versions/%d/%s", version, verb), body, "", &out)
	if retried && ErrorCode(err) == "already_decided" {
		// The first try was recorded before its answer was lost.
		vs, lerr := c.ListPolicyVersions(ctx)
		if lerr != nil {
			return nil, err
		}
		for _, v := range vs.Data {
			if v.Version == version {
				return v, nil
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// PolicyDecision is what the policy decided about a payout and on which
// facts (see the API's PolicyFacts).
type PolicyDecision struct {
	PolicyVersion int64           `json:"policy_version"`
	Rule          string          `json:"rule"` // "" for a hard deny or the default
	Action        string          `json:"action"`
	Code          string          `json:"code"`
	Reason        string          `json:"reason"`
	APIKeyID      string          `json:"api_key_id"`
	Facts         json.RawMessage `json:"facts"`
	DecidedAt     time.Time       `json:"decided_at"`
}

// List is a named deny or allow list of destinations.
type List struct {
	Name      string    `json:"name"`
	Kind      string    `json:"kind"` // deny or allow
	Sanctions bool      `json:"sanctions"`
	Entries   int64     `json:"entries"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ListPage holds every list.
type ListPage struct {
	Data    []*List `json:"data"`
	HasMore bool    `json:"has_more"`
}

// CreateListParams names a new list: Kind is "deny" or "allow"; Sanctions
// marks a deny list of sanctioned addresses.
type CreateListParams struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Sanctions bool   `json:"sanctions,omitempty"`
}

// ListEntriesParams adds Addresses to a list, or with Replace makes the
// list hold exactly them.
type ListEntriesParams struct {
	Addresses []string `json:"addresses"`
	Replace   bool     `json:"replace,omitempty"`
	Note      string   `json:"note,omitempty"`
}

// ListChange says what a change of a list's entries did.
type ListChange struct {
	List    *List    `json:"list"`
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
}

// GetPolicy returns the active policy (error code not_found when none is).
func (c *Client) GetPolicy(ctx context.Context) (*Policy, error) {
	var out Policy
	if _, err := c.do(ctx, http.MethodGet, "/v1/policy", nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PutPolicy checks a YAML policy document, stores it as a new version and
// activates it (error code invalid_policy, with one field error per
// problem, when it does not check).
func (c *Client) PutPolicy(ctx context.Context, document string) (*Policy, error) {
	body, err := json.Marshal(map[string]string{"document": document})
	if err != nil {
		return nil, fmt.Errorf("sluice: encode policy: %w", err)
	}
	var out Policy
	if _, err := c.do(ctx, http.MethodPut, "/v1/policy", body, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListLists returns every deny and allow list.
func (c *Client) ListLists(ctx context.Context) (*ListPage, error) {
	var out ListPage
	if _, err := c.do(ctx, http.MethodGet, "/v1/lists", nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateList creates an empty list (error code list_exists when the name
// is taken).
func (c *Client) CreateList(ctx context.Context, p CreateListParams) (*List, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("sluice: encode list: %w", err)
	}
	var out List
	if _, err := c.do(ctx, http.MethodPost, "/v1/lists", body, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AddListEntries adds to or replaces a list's addresses.
func (c *Client) AddListEntries(ctx context.Context, name string, p ListEntriesParams) (*ListChange, error) {
	if p.Addresses == nil {
		p.Addresses = []string{}
	}
	body, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("sluice: encode list entries: %w", err)
	}
	var out ListChange
	if _, err := c.do(ctx, http.MethodPost, "/v1/lists/"+url.PathEscape(name)+"/entries", body, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PayoutDecision returns the policy decision shown on GET
// /v1/payouts/{id}, or nil when the payout was created with no policy
// active.
func (c *Client) PayoutDecision(ctx context.Context, id string) (*PolicyDecision, error) {
	var out struct {
		Decision *PolicyDecision `json:"decision"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/payouts/"+url.PathEscape(id), nil, "", &out); err != nil {
		return nil, err
	}
	return out.Decision, nil
}

// PolicyVersionList holds every policy version, newest first.
type PolicyVersionList struct {
	Data    []*Policy `json:"data"`
	HasMore bool      `json:"has_more"`
}

// ListPolicyVersions returns every policy version ever applied, newest
// first.
func (c *Client) ListPolicyVersions(ctx context.Context) (*PolicyVersionList, error) {
	var out PolicyVersionList
	if _, err := c.do(ctx, http.MethodGet, "/v1/policy/versions", nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}
