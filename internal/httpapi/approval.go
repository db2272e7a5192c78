package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/policy"
)

// DefaultApprovalExpiry is how long a payout waits for its quorum unless
// ApprovalConfig.Expiry says otherwise.
const DefaultApprovalExpiry = 24 * time.Hour

// ApprovalConfig says how payouts a policy holds for approval are
// approved.
type ApprovalConfig struct {
	// Expiry is how long a payout waits for its quorum before it is
	// rejected with approval_expired. Default: DefaultApprovalExpiry.
	Expiry time.Duration
	// Groups maps an approver group (a rule's approvals.group) to the
	// names of the API keys in it. When empty, every key with the approver
	// scope is in every group. When not, a group it does not name has no
	// approvers: its payouts can only be rejected or expire.
	Groups map[string][]string
	// PolicyChanges, when above 0, is how many approvers (keys with the
	// approver scope and a name, not the proposer) must approve a policy
	// version stored by PUT /v1/policy before it becomes active. 0: it is
	// active at once.
	PolicyChanges int
	// PolicyGroup, when set, is the approver group (see Groups) whose
	// members approve policy changes.
	PolicyGroup string
}

// inGroup reports whether the key named name approves for group.
func (c ApprovalConfig) inGroup(group, name string) bool {
	if len(c.Groups) == 0 {
		return true
	}
	return slices.Contains(c.Groups[group], name)
}

// approvals is the Server's approval state.
type approvals struct {
	cfg   ApprovalConfig
	store payout.ApprovalStore // nil: the store keeps no approvals
}

func newApprovals(st payout.Store, cfg ApprovalConfig) approvals {
	if cfg.Expiry <= 0 {
		cfg.Expiry = DefaultApprovalExpiry
	}
	as, _ := st.(payout.ApprovalStore)
	return approvals{cfg: cfg, store: as}
}

// codePayoutHeld answers an approval of a payout that waits for a hold to
// end, which no approver can shorten.
const codePayoutHeld payout.Code = "payout_held"

func init() {
	for code, info := range map[payout.Code]struct {
		status int
		title  string
	}{
		payout.CodeSelfApproval:         {http.StatusForbidden, "Initiator cannot approve"},
		payout.CodeNotInApproverGroup:   {http.StatusForbidden, "Not in the approver group"},
		payout.CodeApproverNameRequired: {http.StatusForbidden, "Approver key has no name"},
		payout.CodeAlreadyDecided:       {http.StatusConflict, "Already decided"},
		payout.CodeNotPendingApproval:   {http.StatusConflict, "Payout does not wait for approval"},
		payout.CodeApprovalExpired:      {http.StatusConflict, "Approval expired"},
		codePayoutHeld:                  {http.StatusConflict, "Payout is held"},
	} {
		codeInfo[code] = info
	}
}

// pendingRequest turns a decision that asks for approval or a hold into
// the request the payout will wait on, or nil when it asks for neither.
func (s *Server) pendingRequest(d policy.Decision, p *payout.Payout, keyID string) (*payout.ApprovalRequest, error) {
	req := &payout.ApprovalRequest{PayoutID: p.ID, Initiator: keyID, CreatedAt: p.CreatedAt,
		ExpiresAt: p.CreatedAt.Add(s.approvals.cfg.Expiry)}
	switch {
	case d.Action == policy.RequireApproval && d.Approvals != nil:
		req.Kind, req.Quorum, req.Group = payout.ApprovalQuorum, d.Approvals.Quorum, d.Approvals.Group
	case d.Action == policy.Hold:
		hold, err := policy.ParseWindow(d.HoldFor)
		if err != nil {
			return nil, fmt.Errorf("rule %q: hold_for: %w", d.Rule, err)
		}
		req.Kind, req.HoldUntil = payout.ApprovalHold, p.CreatedAt.Add(hold)
		// A hold is released by the sweep, never expired before it ends.
		req.ExpiresAt = req.HoldUntil.Add(s.approvals.cfg.Expiry)
	default:
		return nil, nil
	}
	return req, nil
}

// decisionBody is approve's and reject's body.
type decisionBody struct {
	Reason string `json:"reason"`
}

// approvePayout handles POST /v1/payouts/{id}/approve.
func (s *Server) approvePayout(w http.ResponseWriter, r *http.Request) {
	s.decideApproval(w, r, payout.Approve)
}

// rejectPayout handles POST /v1/payouts/{id}/reject.
func (s *Server) rejectPayout(w http.ResponseWriter, r *http.Request) {
	s.decideApproval(w, r, payout.Reject)
}

// decideApproval records the calling key's decision on a payout and
// answers the payout with its approvals.
func (s *Server) decideApproval(w http.ResponseWriter, r *http.Request, d payout.ApprovalDecision) {
	id := r.PathValue("id")
	if !plausibleID(id) {
		s.fail(w, r, payout.ErrNotFound)
		return
	}
	if s.approvals.store == nil {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server's store keeps no approvals"))
		return
	}
	body, err := s.decodeDecision(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	k := reqInfoFrom(r.Context()).key
	a := &payout.Approval{PayoutID: id, ApproverKeyID: k.ID, ApproverName: k.Name, Decision: d, Reason: body.Reason,
		CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
	if err := s.checkApprover(r, a); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.approvals.store.DecidePayout(r.Context(), a)
	if err != nil && !errors.Is(err, payout.ErrApprovalExpired) {
		s.fail(w, r, s.approvalProblem(r, id, err))
		return
	}
	s.log.InfoContext(r.Context(), "payout "+string(d)+"d", "request_id", reqInfoFrom(r.Context()).id, "payout_id", id,
		"approver_key_id", k.ID, "status", p.Status)
	if err != nil {
		s.fail(w, r, newError(payout.CodeApprovalExpired, "payout %s waited longer than %s for its approvals; it is rejected",
			id, s.approvals.cfg.Expiry))
		return
	}
	if p.Status == payout.StatusQueued && s.created != nil {
		s.created(p) // wake its sender
	}
	s.writePayoutDecided(w, r, p)
}

// decodeDecision reads {"reason": "…"}; approving needs no body.
func (s *Server) decodeDecision(r *http.Request) (decisionBody, error) {
	var b decisionBody
	if r.ContentLength == 0 && r.Header.Get("Content-Type") == "" {
		return b, nil
	}
	raw, err := readBody(r)
	if err != nil || len(bytes.TrimSpace(raw)) == 0 {
		return b, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return b, newError(payout.CodeUnknownField, "unknown field %s; the only field is reason", truncate(f, 64))
		}
		return b, newError(payout.CodeMalformedJSON, `the body must be a JSON object like {"reason": "…"}`)
	}
	return b, nil
}

// checkApprover refuses a key that cannot decide: no name, or not in the
// payout's approver group (checked for approvals only: anyone with the
// scope may stop a payout).
func (s *Server) checkApprover(r *http.Request, a *payout.Approval) error {
	if err := a.Validate(); err != nil {
		var fe *payout.FieldError
		if errors.As(err, &fe) && fe.Code == payout.CodeApproverNameRequired {
			return newError(fe.Code, "%s", fe.Message)
		}
		if fe != nil {
			return &payout.ValidationError{Errors: []*payout.FieldError{fe}}
		}
		return err
	}
	if a.Decision != payout.Approve {
		return nil
	}
	st, err := s.approvals.store.ApprovalState(r.Context(), a.PayoutID)
	if errors.Is(err, payout.ErrNotFound) {
		return nil // the store answers: not found, or not pending
	}
	if err != nil {
		return err
	}
	if st.Request.Kind == payout.ApprovalQuorum && !s.approvals.cfg.inGroup(st.Request.Group, a.ApproverName) {
		return newError(payout.CodeNotInApproverGroup, "API key %q is not in approver group %q", a.ApproverName, st.Request.Group)
	}
	return nil
}

// approvalProblem explains a refused decision.
func (s *Server) approvalProblem(r *http.Request, id string, err error) error {
	switch {
	case errors.Is(err, payout.ErrNotPendingApproval):
		return s.refused(r, id, payout.CodeNotPendingApproval, "only a payout in pending_approval can be approved or rejected")
	case errors.Is(err, payout.ErrSelfApproval):
		return newError(payout.CodeSelfApproval, "the API key that created payout %s cannot approve it", id)
	case errors.Is(err, payout.ErrAlreadyDecided):
		return newError(payout.CodeAlreadyDecided, "this API key has already approved or rejected payout %s", id)
	case errors.Is(err, payout.ErrHeld):
		return newError(codePayoutHeld, "payout %s is held by its policy until its delay passes; it can only be rejected", id)
	}
	return err
}

// approvalJSON returns a payout's approval request and approvals as the
// API shows them, or nil when it has none.
func (s *Server) approvalJSON(r *http.Request, id string) (json.RawMessage, error) {
	if s.approvals.store == nil {
		return nil, nil
	}
	st, err := s.approvals.store.ApprovalState(r.Context(), id)
	if errors.Is(err, payout.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	view := struct {
		*payout.ApprovalRequest
		Object    string            `json:"object"`
		HoldUntil *time.Time        `json:"hold_until"`
		Approved  int               `json:"approved"`
		Approvals []payout.Approval `json:"approvals"`
	}{ApprovalRequest: st.Request, Object: "approval", Approved: st.Approved(), Approvals: st.Approvals}
	if !st.Request.HoldUntil.IsZero() {
		t := st.Request.HoldUntil.UTC()
		view.HoldUntil = &t
	}
	return json.Marshal(view)
}

// batchApprovalView is POST /v1/batches/{id}/approve's answer.
type batchApprovalView struct {
	Object string          `json:"object"` // "batch_approval"
	Batch  json.RawMessage `json:"batch"`
	payout.BatchApproval
}

// batchRejectionView is POST /v1/batches/{id}/reject's answer.
type batchRejectionView struct {
	Object   string          `json:"object"` // "batch_rejection"
	Batch    json.RawMessage `json:"batch"`
	Rejected []string        `json:"rejected"` // now rejected (approval_rejected)
	Skipped  []string        `json:"skipped"`  // decided by this key already
	Expired  []string        `json:"expired"`  // their approvals had expired: rejected (approval_expired)
}

// approveBatch handles POST /v1/batches/{id}/approve: the calling key
// approves every payout of the batch that waits for approval, in one
// transaction.
func (s *Server) approveBatch(w http.ResponseWriter, r *http.Request) {
	s.decideBatchApproval(w, r, payout.Approve)
}

// rejectBatch handles POST /v1/batches/{id}/reject: the calling key
// rejects every payout of the batch that waits for approval (held ones
// too), with a reason, in one transaction.
func (s *Server) rejectBatch(w http.ResponseWriter, r *http.Request) {
	s.decideBatchApproval(w, r, payout.Reject)
}

func (s *Server) decideBatchApproval(w http.ResponseWriter, r *http.Request, d payout.ApprovalDecision) {
	id := r.PathValue("id")
	if s.approvals.store == nil {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server's store keeps no approvals"))
		return
	}
	body, err := s.decodeDecision(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	k := reqInfoFrom(r.Context()).key
	a := &payout.Approval{PayoutID: id, ApproverKeyID: k.ID, ApproverName: k.Name, Decision: d, Reason: body.Reason,
		CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
	if err := a.Validate(); err != nil {
		var fe *payout.FieldError
		switch {
		case errors.As(err, &fe) && fe.Code == payout.CodeApproverNameRequired:
			err = newError(fe.Code, "%s", fe.Message)
		case fe != nil:
			err = &payout.ValidationError{Errors: []*payout.FieldError{fe}}
		}
		s.fail(w, r, err)
		return
	}
	b, err := s.lookupBatch(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.approvals.store.DecideBatch(r.Context(), b.ID, a, func(g string) bool { return s.approvals.cfg.inGroup(g, k.Name) })
	switch {
	case errors.Is(err, payout.ErrNotPendingApproval):
		err = newError(payout.CodeNotPendingApproval, "no payout of batch %s waits for approval", id)
	case errors.Is(err, payout.ErrSelfApproval):
		err = newError(payout.CodeSelfApproval, "the API key that created batch %s cannot approve it", id)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "batch "+string(d)+"d", "request_id", reqInfoFrom(r.Context()).id, "batch_id", id,
		"approver_key_id", k.ID, "decided", len(res.Approved), "queued", len(res.Queued), "skipped", len(res.Skipped),
		"expired", len(res.Expired))
	if len(res.Queued) > 0 && s.created != nil {
		s.created(&payout.Payout{}) // wake every sender: the sender of each row is not at hand
	}
	if b, err = s.batches.GetBatch(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	bj, err := b.MarshalJSON()
	if err != nil {
		s.fail(w, r, fmt.Errorf("marshal batch: %w", err))
		return
	}
	for _, l := range []*[]string{&res.Approved, &res.Queued, &res.Skipped, &res.Expired} {
		if *l == nil {
			*l = []string{}
		}
	}
	if d == payout.Reject {
		writeJSON(w, "application/json", http.StatusOK, batchRejectionView{Object: "batch_rejection", Batch: bj,
			Rejected: res.Approved, Skipped: res.Skipped, Expired: res.Expired})
		return
	}
	writeJSON(w, "application/json", http.StatusOK, batchApprovalView{Object: "batch_approval", Batch: bj, BatchApproval: res})
}
