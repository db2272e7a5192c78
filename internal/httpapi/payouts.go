package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// createPayout handles POST /v1/payouts. The happy path makes one Store
// call, which stores the payout, its event and the idempotency record with
// the response body marshalled here once.
func (s *Server) createPayout(w http.ResponseWriter, r *http.Request) {
	c, ok := s.beginCreate(w, r, func() ([]byte, error) { return readBody(r) })
	if !ok {
		return
	}
	defer c.release()
	scope, key, body := c.scope, c.key, c.body

	fp := fingerprint(r.Method, r.URL.Path, body)
	now := s.now().UTC().Truncate(time.Microsecond) // as the store keeps it
	p, err := s.parseCreate(body, now)
	if err != nil {
		s.refuseCreate(w, r, scope, key, fp, err)
		return
	}
	if !s.decide(w, r, p, scope, key, fp) {
		return
	}
	s.storeCreate(w, r, p, &payout.IdempotencyRecord{
		Scope: scope, Key: key, Fingerprint: fp, ResponseStatus: http.StatusCreated, CreatedAt: now,
	})
}

// createCall is a create request under way: its Idempotency-Key (scoped
// by the API key), its body, and the key's in-flight slot, which release
// frees.
type createCall struct {
	scope, key string
	body       []byte
	release    func()
}

// beginCreate reads a create request's Idempotency-Key and body (with
// read) and takes the key's in-flight slot, so that one key is worked on
// by one request at a time; ok false: the request was answered.
func (s *Server) beginCreate(w http.ResponseWriter, r *http.Request, read func() ([]byte, error)) (createCall, bool) {
	key, err := idempotencyKey(r.Header)
	if err == nil {
		var c createCall
		if c.body, err = read(); err == nil {
			c.scope, c.key = reqInfoFrom(r.Context()).key.ID, key
			slot := c.scope + "\x00" + key
			if !s.inflight.acquire(slot) {
				s.fail(w, r, errInFlight)
				return c, false
			}
			c.release = func() { s.inflight.release(slot) }
			return c, true
		}
	}
	s.fail(w, r, err)
	return createCall{}, false
}

// storeCreate stores a valid payout and answers 201, or the stored answer
// when the key turns out to be used (e.g. by another instance).
func (s *Server) storeCreate(w http.ResponseWriter, r *http.Request, p *payout.Payout, rec *payout.IdempotencyRecord) {
	out, err := p.MarshalJSON()
	if err != nil {
		s.fail(w, r, fmt.Errorf("marshal payout: %w", err))
		return
	}
	rec.ResponseBody = append(out, '\n')
	ctx := r.Context()
	if s.created != nil {
		// Wake the sender as soon as the payout is committed: on SQLite
		// the answer waits for the commit's sync to disk, the sender need
		// not (it syncs its own write before it broadcasts).
		ctx = payout.WhenVisible(ctx, func() { s.created(p) })
	}
	err = s.store.CreatePayout(ctx, p, rec)
	var conflict *payout.IdempotencyConflictError
	switch {
	case errors.As(err, &conflict):
		s.answerRecord(w, r, conflict.Existing, rec.Fingerprint)
	case err != nil:
		s.fail(w, r, err)
	default:
		w.Header().Set("Location", "/v1/payouts/"+p.ID)
		writeBody(w, "application/json", http.StatusCreated, rec.ResponseBody)
	}
}

// refuseCreate answers a request that cannot be stored as it is. A key
// that already has a record is answered from it; otherwise the problem is
// answered and nothing is recorded, so the client may fix the request and
// retry with the same key.
func (s *Server) refuseCreate(w http.ResponseWriter, r *http.Request, scope, key, fp string, cause error) {
	rec, err := s.priorRecord(r.Context(), scope, key)
	switch {
	case err != nil:
		s.fail(w, r, err)
	case rec != nil:
		s.answerRecord(w, r, rec, fp)
	default:
		s.fail(w, r, cause)
	}
}

// getPayout handles GET /v1/payouts/{id}.
func (s *Server) getPayout(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !plausibleID(id) {
		s.fail(w, r, payout.ErrNotFound)
		return
	}
	p, err := s.store.GetPayout(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writePayoutDecided(w, r, p)
}

// cancelPayout handles POST /v1/payouts/{id}/cancel. A queued payout is
// cancelled at once (200). A payout already broadcast gets a cancel request
// (202): its sender races a zero-value self-transfer for the nonce, and the
// payout ends cancelled only if that one is mined; otherwise it completes.
func (s *Server) cancelPayout(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !plausibleID(id) {
		s.fail(w, r, payout.ErrNotFound)
		return
	}
	p, err := s.store.CancelPayout(r.Context(), id)
	if errors.Is(err, payout.ErrNotCancellable) {
		err = s.refused(r, id, payout.CodeNotCancellable, "only payouts not yet mined can be cancelled")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audited(r, payout.AuditPayoutCancel, p.ID, map[string]any{"status": p.Status, "chain": p.Chain, "asset": p.Asset,
		"amount": p.Amount.String(), "to": p.To.Hex()})
	status := http.StatusOK
	if !p.Status.Terminal() {
		status = http.StatusAccepted
	}
	s.writePayout(w, r, status, p)
}

// speedUpBody is POST /v1/payouts/{id}/speed-up's body.
type speedUpBody struct {
	FeeCap json.RawMessage `json:"fee_cap"`
}

// speedUp handles POST /v1/payouts/{id}/speed-up: it sets the payout's fee
// cap (the most its transaction may cost: gas limit × max fee, in wei), so
// its sender may bump it further; a stuck payout is replaced at once.
func (s *Server) speedUp(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !plausibleID(id) {
		s.fail(w, r, payout.ErrNotFound)
		return
	}
	body, err := readBody(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	feeCap, err := decodeSpeedUp(body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.store.RaiseFeeCap(r.Context(), id, feeCap)
	if errors.Is(err, payout.ErrNotInFlight) {
		err = s.refused(r, id, payout.CodeNotInFlight, "only a submitted or stuck payout can be sped up")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audited(r, payout.AuditPayoutFeeCapRaise, p.ID, map[string]any{"fee_cap": feeCap.String(), "status": p.Status})
	s.writePayout(w, r, http.StatusOK, p)
}

// decodeSpeedUp reads {"fee_cap": "<wei>"} strictly.
func decodeSpeedUp(body []byte) (*big.Int, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var b speedUpBody
	if err := dec.Decode(&b); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			name = truncate(strings.Trim(name, `"`), 64)
			return nil, &apiError{code: payout.CodeUnknownField, detail: fmt.Sprintf("unknown field %q; the only field is fee_cap", name),
				fields: []fieldProblem{{Pointer: "/" + name, Code: payout.CodeUnknownField, Detail: fmt.Sprintf("unknown field %q", name)}}}
		}
		return nil, newError(payout.CodeMalformedJSON, "the body must be a JSON object like {\"fee_cap\": \"1000000000000000\"}")
	}
	if dec.More() {
		return nil, newError(payout.CodeMalformedJSON, "unexpected data after the JSON object")
	}
	var raw string
	if err := json.Unmarshal(b.FeeCap, &raw); err != nil {
		return nil, invalidFee("fee_cap is required: the most the payout's transaction may cost, in wei, as a decimal string")
	}
	// The same rules as an amount: digits only, no leading zero, at most
	// 2^256-1.
	v, err := payout.ParseAmount(raw)
	if err != nil {
		var fe *payout.FieldError
		msg := err.Error()
		if errors.As(err, &fe) {
			msg = fe.Message
		}
		return nil, invalidFee(strings.Replace(msg, "amount", "fee_cap", 1) + " (wei)")
	}
	return v, nil
}

func invalidFee(msg string) error {
	return &apiError{code: payout.CodeInvalidFee, detail: msg,
		fields: []fieldProblem{{Pointer: "/fee_cap", Code: payout.CodeInvalidFee, Detail: msg}}}
}

// refused explains a refused request with the payout's status.
func (s *Server) refused(r *http.Request, id string, code payout.Code, rule string) error {
	p, err := s.store.GetPayout(r.Context(), id)
	if err != nil {
		return err
	}
	return newError(code, "payout %s is %s; %s", id, p.Status, rule)
}

func (s *Server) writePayout(w http.ResponseWriter, r *http.Request, status int, p *payout.Payout) {
	out, err := p.MarshalJSON()
	if err != nil {
		s.fail(w, r, fmt.Errorf("marshal payout: %w", err))
		return
	}
	writeBody(w, "application/json", status, append(out, '\n'))
}

// plausibleID rejects ids that cannot exist before asking the store.
func plausibleID(id string) bool {
	return strings.HasPrefix(id, "po_") && len(id) <= 64
}

// payoutList is a Stripe-style page of payouts.
type payoutList struct {
	Object  string           `json:"object"`
	Data    []*payout.Payout `json:"data"`
	HasMore bool             `json:"has_more"`
	URL     string           `json:"url"`
}

// listPayouts handles GET /v1/payouts: newest first, limit 1-100 (default
// 10), paged with starting_after (older) or ending_before (newer).
func (s *Server) listPayouts(w http.ResponseWriter, r *http.Request) {
	f, err := listFilter(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ps, more, err := s.store.ListPayouts(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ps == nil {
		ps = []*payout.Payout{}
	}
	writeJSON(w, "application/json", http.StatusOK, payoutList{Object: "list", Data: ps, HasMore: more, URL: "/v1/payouts"})
}

// Page sizes of GET /v1/payouts.
const (
	defaultLimit = 10
	maxLimit     = 100
)

// listFilter reads and checks the list query.
func listFilter(q url.Values) (payout.ListFilter, error) {
	f := payout.ListFilter{Status: payout.Status(q.Get("status")), ExternalID: q.Get("external_id"), BatchID: q.Get("batch_id"),
		StartingAfter: q.Get("starting_after"), EndingBefore: q.Get("ending_before"), Limit: defaultLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return f, newError(payout.CodeInvalidLimit, "limit must be a whole number from 1 to %d, got %q", maxLimit, truncate(v, 32))
		}
		f.Limit = n
	}
	if f.Status != "" && !f.Status.Valid() {
		return f, newError(payout.CodeInvalidStatus, "status %q is not one of %s", truncate(string(f.Status), 32), statusNames())
	}
	if f.StartingAfter != "" && f.EndingBefore != "" {
		return f, newError(payout.CodeInvalidCursor, "use starting_after or ending_before, not both")
	}
	for name, v := range map[string]string{"starting_after": f.StartingAfter, "ending_before": f.EndingBefore} {
		if v != "" && !plausibleID(v) {
			return f, newError(payout.CodeInvalidCursor, "%s must be a payout id (po_…), got %q", name, truncate(v, 64))
		}
	}
	return f, nil
}

func statusNames() string {
	names := make([]string, len(payout.Statuses))
	for i, st := range payout.Statuses {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}
