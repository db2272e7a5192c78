package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// controlStores are the stores of pauses and the audit log; the Server
// takes them from Config.Store when it implements them.
type controlStores struct {
	pauses payout.PauseStore
	audit  payout.AuditStore
}

func newControlStores(st payout.Store) controlStores {
	var c controlStores
	c.pauses, _ = st.(payout.PauseStore)
	c.audit, _ = st.(payout.AuditStore)
	return c
}

// actor names who makes a request, for the audit log: the API key's id.
func actor(ctx context.Context) string {
	if ri := reqInfoFrom(ctx); ri != nil && ri.key != nil {
		return ri.key.ID
	}
	return "unknown"
}

// audited appends an audit entry for an action that has just succeeded. The
// action is done and cannot be undone, so a failure to append is logged
// (and counted), not answered: the request's answer stays true.
func (s *Server) audited(r *http.Request, action, object string, details any) {
	if s.controls.audit == nil {
		return
	}
	e, err := payout.NewAuditEntry(actor(r.Context()), action, object, details)
	if err == nil {
		// The request may be over; the entry must still be written.
		err = s.controls.audit.AppendAudit(context.WithoutCancel(r.Context()), e)
	}
	if err != nil {
		s.metrics.auditFailures.Inc()
		s.log.ErrorContext(r.Context(), "audit entry not written", "request_id", reqInfoFrom(r.Context()).id,
			"action", action, "object", object, "err", err)
	}
}

// createPauseBody is POST /v1/pauses's body.
type createPauseBody struct {
	Scope  string `json:"scope"`
	Chain  string `json:"chain"`
	Asset  string `json:"asset"`
	Wallet string `json:"wallet"`
	Reason string `json:"reason"`
	// CancelInFlight also asks a cancel of every payout in the pause's
	// scope whose transaction is broadcast and not yet mined (each races a
	// zero-value self-transfer for its nonce, as POST …/cancel does).
	CancelInFlight bool `json:"cancel_in_flight"`
}

// pauseCreated is POST /v1/pauses's answer: the pause, and with
// cancel_in_flight how many cancels were asked.
type pauseCreated struct {
	Pause            *payout.Pause
	CancelsRequested *int
}

// MarshalJSON writes the pause as the API shows it, with
// cancels_requested added when set.
func (c pauseCreated) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(c.Pause)
	if err != nil || c.CancelsRequested == nil {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["cancels_requested"], _ = json.Marshal(*c.CancelsRequested)
	return json.Marshal(m)
}

// createPause handles POST /v1/pauses: an emergency pause, in force for
// every instance from its commit.
func (s *Server) createPause(w http.ResponseWriter, r *http.Request) {
	if s.controls.pauses == nil {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server's store keeps no pauses"))
		return
	}
	body, err := readBody(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var in createPauseBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			s.fail(w, r, newError(payout.CodeUnknownField, "unknown field %s", truncate(f, 64)))
			return
		}
		s.fail(w, r, newError(payout.CodeMalformedJSON, "the body is not a pause request: %s", truncate(err.Error(), 200)))
		return
	}
	p := &payout.Pause{ID: s.ids.New("pse_", s.now()), Scope: payout.PauseScope(in.Scope), Chain: in.Chain,
		Asset: in.Asset, Reason: in.Reason, CreatedBy: actor(r.Context())}
	if in.Wallet != "" {
		if !common.IsHexAddress(in.Wallet) {
			s.fail(w, r, &payout.ValidationError{Errors: []*payout.FieldError{{Field: "wallet", Code: payout.CodeInvalidAddress,
				Message: "wallet must be a 0x-prefixed 20-byte hex address"}}})
			return
		}
		p.Wallet = common.HexToAddress(in.Wallet)
	}
	if err := s.checkPauseTarget(p); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.controls.pauses.CreatePause(r.Context(), p); err != nil {
		var fe *payout.FieldError
		if errors.As(err, &fe) {
			err = &payout.ValidationError{Errors: []*payout.FieldError{fe}}
		}
		s.fail(w, r, err)
		return
	}
	s.log.WarnContext(r.Context(), "payouts paused", "request_id", reqInfoFrom(r.Context()).id, "pause_id", p.ID,
		"scope", p.Scope, "chain", p.Chain, "asset", p.Asset, "wallet", in.Wallet, "reason", p.Reason, "by_api_key_id", p.CreatedBy)
	out := pauseCreated{Pause: p}
	if in.CancelInFlight {
		n, err := s.cancelInFlight(r, p)
		if err != nil {
			s.fail(w, r, err) // the pause is in force; the cancels asked so far stand
			return
		}
		out.CancelsRequested = &n
	}
	writeJSON(w, "application/json", http.StatusCreated, out)
}

// cancelInFlight asks a cancel of every payout in flight (submitted or
// stuck) that pause p stops, and says how many it asked. A payout paid by
// a batch transaction with others is left alone (its carrier's cancel
// would race the whole batch), and so is one asked already. Each cancel is
// audited like POST /v1/payouts/{id}/cancel.
func (s *Server) cancelInFlight(r *http.Request, p *payout.Pause) (int, error) {
	n := 0
	for _, status := range []payout.Status{payout.StatusSubmitted, payout.StatusStuck} {
		f := payout.ListFilter{Status: status, Limit: 100}
		for {
			ps, more, err := s.store.ListPayouts(r.Context(), f)
			if err != nil {
				return n, err
			}
			for _, po := range ps {
				if !p.Matches(po.Chain, po.Asset, po.Sender) || po.CancelRequested || po.CarrierID != "" || po.ChunkAmount != nil {
					continue
				}
				c, err := s.store.CancelPayout(r.Context(), po.ID)
				if errors.Is(err, payout.ErrNotCancellable) {
					continue // mined meanwhile
				}
				if err != nil {
					return n, err
				}
				n++
				s.audited(r, payout.AuditPayoutCancel, c.ID, map[string]any{"status": c.Status, "chain": c.Chain, "asset": c.Asset,
					"pause_id": p.ID})
				s.wakeSender(c)
			}
			if !more || len(ps) == 0 {
				break
			}
			f.StartingAfter = ps[len(ps)-1].ID
		}
	}
	return n, nil
}

// checkPauseTarget refuses a pause of a chain or an asset the catalog does
// not know: a typo would otherwise pause nothing while looking in force.
func (s *Server) checkPauseTarget(p *payout.Pause) error {
	if p.Chain == "" {
		return nil
	}
	ch, ok := s.catalog.Chains[p.Chain]
	if !ok {
		return &payout.ValidationError{Errors: []*payout.FieldError{{Field: "chain", Code: payout.CodeUnknownChain,
			Message: "no chain is named " + strconv.Quote(truncate(p.Chain, 64))}}}
	}
	if _, ok := ch.Assets[p.Asset]; p.Asset != "" && !ok {
		return &payout.ValidationError{Errors: []*payout.FieldError{{Field: "asset", Code: payout.CodeUnknownAsset,
			Message: "chain " + p.Chain + " has no asset " + strconv.Quote(truncate(p.Asset, 32))}}}
	}
	return nil
}

// resumePause handles POST and DELETE /v1/pauses/{id}(/resume).
func (s *Server) resumePause(w http.ResponseWriter, r *http.Request) {
	if s.controls.pauses == nil {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server's store keeps no pauses"))
		return
	}
	id := r.PathValue("id")
	p, err := s.controls.pauses.ResumePause(r.Context(), id, actor(r.Context()))
	switch {
	case errors.Is(err, payout.ErrNotFound):
		s.fail(w, r, newError(payout.CodeNotFound, "no pause has id %q", truncate(id, 64)))
		return
	case errors.Is(err, payout.ErrPauseResumed):
		s.fail(w, r, newError(payout.CodePauseResumed, "pause %s was resumed already", truncate(id, 64)))
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	s.log.WarnContext(r.Context(), "pause resumed", "request_id", reqInfoFrom(r.Context()).id, "pause_id", p.ID,
		"by_api_key_id", p.ResumedBy)
	writeJSON(w, "application/json", http.StatusOK, p)
}

type pauseList struct {
	Object  string          `json:"object"`
	Data    []*payout.Pause `json:"data"`
	HasMore bool            `json:"has_more"`
	URL     string          `json:"url"`
}

// listPauses handles GET /v1/pauses: the pauses in force.
func (s *Server) listPauses(w http.ResponseWriter, r *http.Request) {
	if s.controls.pauses == nil {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server's store keeps no pauses"))
		return
	}
	ps, err := s.controls.pauses.ActivePauses(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ps == nil {
		ps = []*payout.Pause{}
	}
	writeJSON(w, "application/json", http.StatusOK, pauseList{Object: "list", Data: ps, URL: "/v1/pauses"})
}

type auditList struct {
	Object  string               `json:"object"`
	Data    []*payout.AuditEntry `json:"data"`
	HasMore bool                 `json:"has_more"`
	URL     string               `json:"url"`
}

// listAudit handles GET /v1/audit?after=SEQ&limit=N: entries in seq order
// (oldest first), so a verifier or an exporter pages forward with the last
// seq it got.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	if s.controls.audit == nil {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server's store keeps no audit log"))
		return
	}
	q := r.URL.Query()
	var after int64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.fail(w, r, newError(payout.CodeInvalidCursor, "after must be an entry's seq (a whole number), got %q", truncate(v, 32)))
			return
		}
		after = n
	}
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.fail(w, r, newError(payout.CodeInvalidLimit, "limit must be a whole number from 1 to 1000, got %q", truncate(v, 32)))
			return
		}
		limit = n
	}
	es, more, err := s.controls.audit.ListAudit(r.Context(), after, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if es == nil {
		es = []*payout.AuditEntry{}
	}
	writeJSON(w, "application/json", http.StatusOK, auditList{Object: "list", Data: es, HasMore: more, URL: "/v1/audit"})
}
