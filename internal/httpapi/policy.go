package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/policy"
)

// The policy codes' statuses, in the one code table.
func init() {
	for code, title := range map[payout.Code]string{
		payout.CodeSanctionedDestination: "Destination is sanctioned",
		payout.CodeDeniedDestination:     "Destination is on a deny list",
		payout.CodePolicyDenied:          "Denied by policy",
		payout.CodeApprovalRequired:      "Policy requires approval",
		payout.CodeInvalidPolicy:         "Invalid policy",
		payout.CodeInvalidList:           "Invalid list",
	} {
		codeInfo[code] = struct {
			status int
			title  string
		}{http.StatusUnprocessableEntity, title}
	}
	codeInfo[codeListExists] = struct {
		status int
		title  string
	}{http.StatusConflict, "List exists"}
}

const codeListExists payout.Code = "list_exists"

// policyState decides payouts with the active policy. Without a
// PolicyStore (or with no active policy) every payout is allowed, as
// before policies existed.
type policyState struct {
	store  payout.PolicyStore // nil: no policies
	engine *policy.Engine
	policy *policy.Active

	labelsMu sync.Mutex
	labels   map[string]map[string]string // API key id → its labels, which never change
}

// maxCachedLabels bounds the label cache; it is emptied when full.
const maxCachedLabels = 10_000

// initiatorLabels returns the labels of the key with id, read once per
// key: labels are fixed when a key is made. A key from the config file
// has those the file gives it.
func (s *Server) initiatorLabels(ctx context.Context, id string) (map[string]string, error) {
	if l, configured := s.configKeys[id]; configured {
		return l, nil
	}
	ps := s.policy
	ps.labelsMu.Lock()
	l, ok := ps.labels[id]
	ps.labelsMu.Unlock()
	if ok {
		return l, nil
	}
	m, err := s.keyLabels(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("labels of api key %s: %w", id, err)
	}
	l = m[id]
	if l == nil {
		l = map[string]string{}
	}
	ps.labelsMu.Lock()
	if ps.labels == nil || len(ps.labels) >= maxCachedLabels {
		ps.labels = map[string]map[string]string{}
	}
	ps.labels[id] = l
	ps.labelsMu.Unlock()
	return l, nil
}

func newPolicyState(st payout.Store, balance policy.BalanceFunc) *policyState {
	ps, ok := st.(payout.PolicyStore)
	if !ok {
		return &policyState{}
	}
	return &policyState{store: ps, engine: policy.NewEngine(ps, balance), policy: policy.NewActive(ps)}
}

// active returns the active policy compiled, or nil when none is active.
func (ps *policyState) active(ctx context.Context) (*policy.Policy, *payout.PolicyVersion, error) {
	if ps.store == nil {
		return nil, nil, nil
	}
	return ps.policy.Get(ctx)
}

// decide applies the active policy to a payout about to be stored. It
// answers the request itself (and returns false) when the payout must not
// be stored: a replayed Idempotency-Key or a denial. A payout held for
// approval or a hold is stored pending_approval. An allowed or held
// payout's decision is stored before the payout, so no payout is ever
// without it.
func (s *Server) decide(w http.ResponseWriter, r *http.Request, p *payout.Payout, scope, key, fp string) bool {
	if s.policy.store == nil {
		return true
	}
	if v, err := s.policy.store.ActivePolicy(r.Context()); errors.Is(err, payout.ErrNoPolicy) {
		return true
	} else if err == nil && v != nil {
		// A replay is answered as it was, not decided again.
		if rec, err := s.priorRecord(r.Context(), scope, key); err != nil || rec != nil {
			if err != nil {
				s.fail(w, r, err)
			} else {
				s.answerRecord(w, r, rec, fp)
			}
			return false
		}
	}
	if err := s.decideOne(r, p, true); err != nil {
		s.fail(w, r, err)
		return false
	}
	return true
}

// decidePayout decides one payout with the active policy: nil when it is
// allowed (its decision then stored, keyed by p.ID) or no policy is
// active; otherwise the problem to answer (a refusal is audited). A batch
// can call it for each row before storing.
func (s *Server) decidePayout(r *http.Request, p *payout.Payout) error {
	return s.decideOne(r, p, false)
}

// decideOne is decidePayout; with pending, a payout the policy holds for
// approval or a hold is allowed to be stored as pending_approval (p.Status
// is set), its approval request stored beside its decision.
func (s *Server) decideOne(r *http.Request, p *payout.Payout, pending bool) error {
	pol, v, err := s.policy.active(r.Context())
	if err != nil || pol == nil {
		return err
	}
	k := reqInfoFrom(r.Context()).key
	in := policy.Input{Chain: p.Chain, Asset: p.Asset, Sender: p.Sender, To: p.To, Amount: p.Amount,
		Metadata: p.Metadata, APIKeyID: k.ID, APIKeyName: k.Name, Now: p.CreatedAt}
	if in.APIKeyLabels, err = s.initiatorLabels(r.Context(), k.ID); err != nil {
		return err
	}
	if ch, ok := s.catalog.Chains[p.Chain]; ok {
		in.Decimals = ch.Assets[p.Asset].Decimals
	}
	d, err := s.policy.engine.Decide(r.Context(), pol, v.Version, in, p.ID)
	if err != nil {
		return err
	}
	facts, err := json.Marshal(d.Facts)
	if err != nil {
		return fmt.Errorf("encode facts: %w", err)
	}
	if pending && s.approvals.store != nil {
		req, err := s.pendingRequest(d, p, k.ID)
		if err != nil {
			return err
		}
		if req != nil {
			if err := s.approvals.store.SaveApprovalRequest(r.Context(), req); err != nil {
				return err
			}
			p.Status = payout.StatusPendingApproval
			return s.saveDecision(r, p, d, k.ID, facts)
		}
	}
	if d.Action != policy.Allow {
		s.audited(r, payout.AuditPolicyDeny, p.ID, map[string]any{"policy_version": d.PolicyVersion, "rule": d.Rule,
			"action": d.Action, "code": d.Code, "reason": d.Reason, "facts": json.RawMessage(facts)})
		return newError(payout.Code(d.Code), "%s; the payout was not stored", d.Reason)
	}
	return s.saveDecision(r, p, d, k.ID, facts)
}

// saveDecision stores the decision of a payout about to be stored.
func (s *Server) saveDecision(r *http.Request, p *payout.Payout, d policy.Decision, keyID string, facts []byte) error {
	return s.policy.store.SaveDecision(r.Context(), &payout.PolicyDecision{PayoutID: p.ID, PolicyVersion: d.PolicyVersion,
		Rule: d.Rule, Action: string(d.Action), Code: d.Code, Reason: d.Reason, APIKeyID: keyID, Facts: facts, DecidedAt: p.CreatedAt})
}

// writePayoutDecided answers a payout with its policy decision, when it
// has one, as "decision", and its approvals, when it was held for them,
// as "approval".
func (s *Server) writePayoutDecided(w http.ResponseWriter, r *http.Request, p *payout.Payout) {
	if s.policy.store == nil {
		s.writePayout(w, r, http.StatusOK, p)
		return
	}
	d, err := s.policy.store.PayoutDecision(r.Context(), p.ID)
	if errors.Is(err, payout.ErrNotFound) {
		s.writePayout(w, r, http.StatusOK, p)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out, err := p.MarshalJSON()
	if err != nil {
		s.fail(w, r, fmt.Errorf("marshal payout: %w", err))
		return
	}
	dj, err := json.Marshal(d)
	if err != nil {
		s.fail(w, r, fmt.Errorf("marshal decision: %w", err))
		return
	}
	out = bytes.TrimRight(out, " \n")
	out = append(append(out[:len(out)-1], `,"decision":`...), dj...)
	// A payout held for approval shows what it waits for and who decided.
	if aj, err := s.approvalJSON(r, p.ID); err != nil {
		s.fail(w, r, err)
		return
	} else if aj != nil {
		out = append(append(out, `,"approval":`...), aj...)
	}
	out = append(out, "}\n"...)
	writeBody(w, "application/json", http.StatusOK, out)
}

// policyView is GET and PUT /v1/policy's answer.
type policyView struct {
	Object string `json:"object"` // "policy"
	*payout.PolicyVersion
	Windows []string `json:"velocity_windows"`
	// Status, Quorum and Approvals say whether the version waits for
	// approvals (see ApprovalConfig.PolicyChanges).
	Status    string                  `json:"status"`
	Quorum    int                     `json:"quorum"`
	Approvals []policy.ChangeApproval `json:"approvals"`
}

// policyChangeStore keeps policy versions that wait for approvals (the
// SQL stores do).
type policyChangeStore interface {
	ProposePolicy(ctx context.Context, v *payout.PolicyVersion, quorum int) error
	DecidePolicy(ctx context.Context, version int64, a policy.ChangeApproval, maxAge time.Duration) (*payout.PolicyVersion, *policy.Change, error)
	PolicyChanges(ctx context.Context, versions ...int64) (map[int64]*policy.Change, error)
}

// newPolicyView shows v with its velocity windows (when it compiles) and
// its approval state.
func newPolicyView(v *payout.PolicyVersion, ch *policy.Change) *policyView {
	out := &policyView{Object: "policy", PolicyVersion: v, Windows: []string{}, Status: policy.StatusApplied,
		Approvals: []policy.ChangeApproval{}}
	if p, err := policy.Parse([]byte(v.Document)); err == nil {
		out.Windows = p.Windows()
	}
	if ch != nil {
		out.Status, out.Quorum = ch.Status, ch.Quorum
		if ch.Approvals != nil {
			out.Approvals = ch.Approvals
		}
	}
	return out
}

// policyChanges returns the approval state of versions, none when the
// store keeps none.
func (s *Server) policyChanges(ctx context.Context, versions ...int64) (map[int64]*policy.Change, error) {
	cs, ok := s.policy.store.(policyChangeStore)
	if !ok {
		return map[int64]*policy.Change{}, nil
	}
	return cs.PolicyChanges(ctx, versions...)
}

// getPolicy handles GET /v1/policy: the active version.
func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) {
	if s.policy.store == nil {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server's store keeps no policies"))
		return
	}
	p, v, err := s.policy.active(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if p == nil {
		s.fail(w, r, newError(payout.CodeNotFound, "no policy is active: every payout is allowed"))
		return
	}
	cs, err := s.policyChanges(r.Context(), v.Version)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, "application/json", http.StatusOK, newPolicyView(v, cs[v.Version]))
}

type putPolicyBody struct {
	Document string `json:"document"`
}

// putPolicy handles PUT /v1/policy: checks the document, stores it as a
// new version and makes it active (an audited action).
func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) {
	if s.policy.store == nil {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server's store keeps no policies"))
		return
	}
	var in putPolicyBody
	if err := decodeStrict(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := policy.Parse([]byte(in.Document))
	var pe *policy.Error
	if errors.As(err, &pe) {
		ae := &apiError{code: payout.CodeInvalidPolicy, detail: pe.Error()}
		for _, is := range pe.Issues {
			ae.fields = append(ae.fields, fieldProblem{Pointer: "/document", Code: payout.CodeInvalidPolicy, Detail: is.String()})
		}
		s.fail(w, r, ae)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := &payout.PolicyVersion{Document: in.Document, CreatedBy: actor(r.Context())}
	if n := s.approvals.cfg.PolicyChanges; n > 0 {
		s.proposePolicy(w, r, v, n)
		return
	}
	if err := s.policy.store.SavePolicy(r.Context(), v, true); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.WarnContext(r.Context(), "policy applied", "request_id", reqInfoFrom(r.Context()).id, "version", v.Version,
		"rules", len(p.Doc.Rules), "by_api_key_id", v.CreatedBy)
	writeJSON(w, "application/json", http.StatusOK, newPolicyView(v, nil))
}

// proposePolicy stores v pending quorum approvals and answers 202.
func (s *Server) proposePolicy(w http.ResponseWriter, r *http.Request, v *payout.PolicyVersion, quorum int) {
	cs, ok := s.policy.store.(policyChangeStore)
	if !ok {
		s.fail(w, r, newError(payout.CodeUnavailable, "policy changes need %d approvals, and this server's store keeps none", quorum))
		return
	}
	if err := cs.ProposePolicy(r.Context(), v, quorum); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.WarnContext(r.Context(), "policy proposed; it waits for approvals", "request_id", reqInfoFrom(r.Context()).id,
		"version", v.Version, "quorum", quorum, "by_api_key_id", v.CreatedBy)
	writeJSON(w, "application/json", http.StatusAccepted, newPolicyView(v, &policy.Change{Version: v.Version,
		Status: policy.StatusPending, Quorum: quorum}))
}

// approvePolicy handles POST /v1/policy/versions/{version}/approve.
func (s *Server) approvePolicy(w http.ResponseWriter, r *http.Request) {
	s.decidePolicy(w, r, "approve")
}

// rejectPolicy handles POST /v1/policy/versions/{version}/reject.
func (s *Server) rejectPolicy(w http.ResponseWriter, r *http.Request) {
	s.decidePolicy(w, r, "reject")
}

// decidePolicy records the calling key's decision on a policy version
// that waits for approvals; the quorum-th approval makes it active.
func (s *Server) decidePolicy(w http.ResponseWriter, r *http.Request, decision string) {
	raw := r.PathValue("version")
	version, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || version < 1 {
		s.fail(w, r, newError(payout.CodeNotFound, "no policy version %q: versions are 1, 2, 3, …", truncate(raw, 32)))
		return
	}
	cs, ok := s.policy.store.(policyChangeStore)
	if !ok {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server's store keeps no policy approvals"))
		return
	}
	body, err := s.decodeDecision(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	k := reqInfoFrom(r.Context()).key
	switch {
	case strings.TrimSpace(k.Name) == "":
		err = newError(payout.CodeApproverNameRequired, "an approver's API key must have a name")
	case decision == "reject" && strings.TrimSpace(body.Reason) == "":
		err = &payout.ValidationError{Errors: []*payout.FieldError{{Field: "reason", Code: payout.CodeInvalidRequest,
			Message: "reason is required: say why the policy version is rejected"}}}
	case len(body.Reason) > 500:
		err = &payout.ValidationError{Errors: []*payout.FieldError{{Field: "reason", Code: payout.CodeInvalidRequest,
			Message: "reason is at most 500 characters"}}}
	case decision == "approve" && s.approvals.cfg.PolicyGroup != "" && !s.approvals.cfg.inGroup(s.approvals.cfg.PolicyGroup, k.Name):
		err = newError(payout.CodeNotInApproverGroup, "API key %q is not in approver group %q, which approves policy changes",
			k.Name, s.approvals.cfg.PolicyGroup)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// A version waits for its quorum as long as a payout does
	// (ApprovalConfig.Expiry); after that it expires and stays inactive.
	v, ch, err := cs.DecidePolicy(r.Context(), version, policy.ChangeApproval{ApproverKeyID: k.ID, ApproverName: k.Name,
		Decision: decision, Reason: body.Reason}, s.approvals.cfg.Expiry)
	switch {
	case errors.Is(err, policy.ErrChangeExpired):
		s.log.WarnContext(r.Context(), "policy version expired", "request_id", reqInfoFrom(r.Context()).id, "version", version,
			"approvals", ch.Approved(), "quorum", ch.Quorum)
		err = newError(payout.CodeApprovalExpired, "policy version %d waited longer than %s for its approvals; it has expired and stays inactive: propose it again",
			version, s.approvals.cfg.Expiry)
	case errors.Is(err, payout.ErrNotFound):
		err = newError(payout.CodeNotFound, "no policy version %d", version)
	case errors.Is(err, policy.ErrNotPending):
		err = newError(payout.CodeNotPendingApproval, "policy version %d does not wait for approval", version)
	case errors.Is(err, payout.ErrSelfApproval):
		err = newError(payout.CodeSelfApproval, "the API key that proposed policy version %d cannot approve it", version)
	case errors.Is(err, payout.ErrAlreadyDecided):
		err = newError(payout.CodeAlreadyDecided, "this API key has already approved or rejected policy version %d", version)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.WarnContext(r.Context(), "policy "+decision+"d", "request_id", reqInfoFrom(r.Context()).id, "version", version,
		"approver_key_id", k.ID, "status", ch.Status, "approvals", ch.Approved(), "quorum", ch.Quorum)
	writeJSON(w, "application/json", http.StatusOK, newPolicyView(v, ch))
}

// decodeStrict reads a JSON body into v, refusing unknown fields.
func decodeStrict(r *http.Request, v any) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return newError(payout.CodeUnknownField, "unknown field %s", truncate(f, 64))
		}
		return newError(payout.CodeMalformedJSON, "the body is malformed: %s", truncate(err.Error(), 200))
	}
	return nil
}

type policyVersionList struct {
	Object  string        `json:"object"`
	Data    []*policyView `json:"data"`
	HasMore bool          `json:"has_more"`
	URL     string        `json:"url"`
}

// listPolicyVersions handles GET /v1/policy/versions: every version,
// newest first.
func (s *Server) listPolicyVersions(w http.ResponseWriter, r *http.Request) {
	if s.policy.store == nil {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server's store keeps no policies"))
		return
	}
	vs, err := s.policy.store.PolicyVersions(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cs, err := s.policyChanges(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := policyVersionList{Object: "list", Data: make([]*policyView, len(vs)), URL: "/v1/policy/versions"}
	for i, v := range vs {
		out.Data[i] = newPolicyView(v, cs[v.Version])
	}
	writeJSON(w, "application/json", http.StatusOK, out)
}
