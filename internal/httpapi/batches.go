package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/batchfile"
	"github.com/sluicepay/sluice/internal/payout"
)

// Batch payouts: POST /v1/batches takes JSON rows or a CSV upload, checks
// every row before anything is stored, and stores the batch and one payout
// per row in one transaction.

// batchRequest is the JSON body of POST /v1/batches.
type batchRequest struct {
	Chain    string             `json:"chain"`
	Asset    string             `json:"asset"`
	Policy   payout.BatchPolicy `json:"policy"`
	Priority string             `json:"priority"`
	Rows     []batchfile.RawRow `json:"rows"`
}

// createBatch handles POST /v1/batches.
func (s *Server) createBatch(w http.ResponseWriter, r *http.Request) {
	var csvUpload bool
	c, ok := s.beginCreate(w, r, func() (body []byte, err error) {
		body, csvUpload, err = readBatchBody(r, s.batchSize)
		return body, err
	})
	if !ok {
		return
	}
	defer c.release()
	scope, key, body := c.scope, c.key, c.body
	fp := fingerprint(r.Method, r.URL.RequestURI(), body)
	now := s.now().UTC().Truncate(time.Microsecond)
	b, ps, err := s.parseBatch(r, body, csvUpload, now)
	if err == nil {
		ps, err = s.decideBatch(r, b, ps)
	}
	if err != nil {
		s.refuseCreate(w, r, scope, key, fp, err)
		return
	}
	b.Start(ps)
	out, err := b.MarshalJSON()
	if err != nil {
		s.fail(w, r, fmt.Errorf("marshal batch: %w", err))
		return
	}
	rec := &payout.IdempotencyRecord{Scope: scope, Key: key, Fingerprint: fp, ResponseStatus: http.StatusCreated,
		CreatedAt: now, ResponseBody: append(out, '\n')}
	err = s.batches.CreateBatch(r.Context(), b, ps, rec)
	var conflict *payout.IdempotencyConflictError
	switch {
	case errors.As(err, &conflict):
		s.answerRecord(w, r, conflict.Existing, fp)
	case err != nil:
		s.fail(w, r, err)
	default:
		s.wakeSenders(ps)
		w.Header().Set("Location", "/v1/batches/"+b.ID)
		writeBody(w, "application/json", http.StatusCreated, rec.ResponseBody)
	}
}

// wakeSenders tells each hot wallet of a new batch, once.
func (s *Server) wakeSenders(ps []*payout.Payout) {
	if s.created == nil {
		return
	}
	seen := map[common.Address]bool{}
	for _, p := range ps {
		if !seen[p.Sender] {
			seen[p.Sender] = true
			s.created(p)
		}
	}
}

// readBatchBody reads a JSON or CSV body of at most limit bytes.
func readBatchBody(r *http.Request, limit int64) ([]byte, bool, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && mt != "text/csv") {
		return nil, false, newError(payout.CodeUnsupportedMediaType, "Content-Type must be application/json or text/csv, got %q", truncate(ct, 64))
	}
	if r.ContentLength > limit {
		return nil, false, batchTooLarge(limit)
	}
	body, err := readAll(io.LimitReader(r.Body, limit+1), r.ContentLength)
	if err != nil {
		return nil, false, newError(payout.CodeMalformedJSON, "the body could not be read")
	}
	if int64(len(body)) > limit {
		return nil, false, batchTooLarge(limit)
	}
	return body, mt == "text/csv", nil
}

func batchTooLarge(limit int64) error {
	return newError(batchfile.CodeFileTooLarge, "a batch upload may have at most %d bytes; split it into several batches", limit)
}

// parseBatch validates every row and builds the batch and its payouts.
// Rows refused by validation fail the whole batch (all_or_nothing, the
// default) or are left out (accept_valid); either way every error is
// reported.
func (s *Server) parseBatch(r *http.Request, body []byte, csvUpload bool, now time.Time) (*payout.Batch, []*payout.Payout, error) {
	q := r.URL.Query()
	req := batchRequest{Chain: q.Get("chain"), Asset: q.Get("asset"), Policy: payout.BatchPolicy(q.Get("policy")), Priority: q.Get("priority")}
	opts := batchfile.Options{Catalog: s.catalog, MaxRows: s.batchRows, MaxBytes: s.batchSize}
	var res *batchfile.Result
	var err error
	source := "csv"
	if csvUpload {
		opts.Chain, opts.Asset = s.defaultChain(req.Chain), req.Asset
		res, err = batchfile.ReadCSV(bytes.NewReader(body), opts)
	} else {
		source = "json"
		if req, err = decodeBatchJSON(body); err != nil {
			return nil, nil, err
		}
		opts.Chain, opts.Asset = s.defaultChain(req.Chain), req.Asset
		if len(req.Rows) > s.batchRows {
			return nil, nil, newError(batchfile.CodeTooManyRows, "a batch may have at most %d rows; it has %d", s.batchRows, len(req.Rows))
		}
		res, err = batchfile.ValidateRows(req.Rows, opts)
	}
	var fe *batchfile.FileError
	if errors.As(err, &fe) {
		return nil, nil, newError(fe.Code, "%s", fe.Message)
	} else if err != nil {
		return nil, nil, err
	}
	policy, priority, err := batchOptions(req)
	if err != nil {
		return nil, nil, err
	}
	if err := s.markTakenExternalIDs(r, res); err != nil {
		return nil, nil, err
	}
	if len(res.Errors) > 0 && (policy == payout.BatchAllOrNothing || len(res.Rows) == 0) {
		return nil, nil, rowsProblem(res, csvUpload)
	}
	if len(res.Rows) == 0 {
		return nil, nil, newError(batchfile.CodeEmptyFile, "the batch has no rows")
	}
	b := &payout.Batch{ID: s.ids.New("bat_", now), Policy: policy, Source: source, Rows: len(res.Rows) + res.Invalid,
		Invalid: res.Invalid, Errors: batchErrors(res), CreatedAt: now}
	return b, s.batchPayouts(b, res.Rows, priority, now), nil
}

// decodeBatchJSON decodes the JSON body, refusing unknown fields.
func decodeBatchJSON(body []byte) (batchRequest, error) {
	var req batchRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field") {
			return req, newError(payout.CodeUnknownField, "%s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return req, newError(payout.CodeMalformedJSON, "the body is not a batch: %s", truncate(err.Error(), 200))
	}
	if dec.More() {
		return req, newError(payout.CodeMalformedJSON, "the body has more than one JSON value")
	}
	if req.Rows == nil {
		return req, &payout.ValidationError{Errors: []*payout.FieldError{{Field: "rows", Code: payout.CodeInvalidRequest, Message: "rows is required: the payouts of the batch"}}}
	}
	return req, nil
}

// batchOptions checks the batch's policy and priority.
func batchOptions(req batchRequest) (payout.BatchPolicy, payout.Priority, error) {
	policy := req.Policy
	switch policy {
	case "":
		policy = payout.BatchAllOrNothing
	case payout.BatchAllOrNothing, payout.BatchAcceptValid:
	default:
		return "", "", &payout.ValidationError{Errors: []*payout.FieldError{{Field: "policy", Code: payout.CodeInvalidRequest,
			Message: fmt.Sprintf("policy %q is not all_or_nothing or accept_valid", truncate(string(req.Policy), 40))}}}
	}
	priority, err := payout.ParsePriority(req.Priority)
	if err != nil {
		return "", "", &payout.ValidationError{Errors: []*payout.FieldError{{Field: "priority", Code: payout.CodeInvalidPriority, Message: err.Error()}}}
	}
	return policy, priority, nil
}

// markTakenExternalIDs moves valid rows whose external_id a stored payout
// already has to the errors.
func (s *Server) markTakenExternalIDs(r *http.Request, res *batchfile.Result) error {
	var ids []string
	for _, row := range res.Rows {
		if row.ExternalID != "" {
			ids = append(ids, row.ExternalID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	taken, err := s.batches.TakenExternalIDs(r.Context(), ids)
	if err != nil || len(taken) == 0 {
		return err
	}
	kept := res.Rows[:0]
	for _, row := range res.Rows {
		if !taken[row.ExternalID] {
			kept = append(kept, row)
			continue
		}
		res.Invalid++
		res.Errors = append(res.Errors, batchfile.RowError{Row: row.Number, Column: batchfile.ColExternalID,
			Value: row.ExternalID, Code: payout.CodeDuplicateExternalID,
			Message: fmt.Sprintf("external_id %q is already used by a stored payout", row.ExternalID)})
	}
	res.Rows = kept
	return nil
}

// rowsProblem reports every refused row: code invalid_batch, with each
// row's number, column, value, code and message (and, for JSON rows, a
// pointer).
func rowsProblem(res *batchfile.Result, csvUpload bool) error {
	e := &apiError{code: payout.CodeInvalidBatch}
	e.detail = fmt.Sprintf("%d of the batch's rows are invalid; nothing was stored; see errors", res.Invalid)
	if res.Omitted > 0 {
		e.detail += fmt.Sprintf(" (the first %d are listed)", len(res.Errors))
	}
	for _, re := range res.Errors {
		fp := fieldProblem{Code: re.Code, Detail: re.Message, Row: re.Row, Column: re.Column, Value: &re.Value}
		if !csvUpload {
			fp.Pointer = "/rows/" + strconv.Itoa(re.Row-1) + "/" + re.Column
		}
		e.fields = append(e.fields, fp)
	}
	return e
}

// batchErrors keeps the refused rows of an accept_valid batch.
func batchErrors(res *batchfile.Result) []payout.RowError {
	out := make([]payout.RowError, len(res.Errors))
	for i, re := range res.Errors {
		out[i] = payout.RowError{Row: re.Row, Column: re.Column, Value: re.Value, Code: string(re.Code), Message: re.Message}
	}
	return out
}

// batchPayouts makes one queued payout per valid row. All rows of one
// chain and asset go to one hot wallet (chosen as for a single payout of
// their total), so that they can share batch transactions.
func (s *Server) batchPayouts(b *payout.Batch, rows []batchfile.Row, priority payout.Priority, now time.Time) []*payout.Payout {
	type group struct{ chain, asset string }
	totals := map[group]*big.Int{}
	for _, row := range rows {
		g := group{row.Chain, row.Asset}
		if totals[g] == nil {
			totals[g] = new(big.Int)
		}
		totals[g].Add(totals[g], row.Amount)
	}
	senders := map[group]common.Address{}
	ps := make([]*payout.Payout, len(rows))
	for i, row := range rows {
		g := group{row.Chain, row.Asset}
		ch, _, _ := s.catalog.Lookup(row.Chain, row.Asset) // validated
		sender, ok := senders[g]
		if !ok {
			sender = s.catalog.Assign(ch, row.Asset, totals[g])
			senders[g] = sender
		}
		var meta map[string]string
		if row.Memo != "" {
			meta = map[string]string{"memo": row.Memo}
		}
		ps[i] = &payout.Payout{
			ID: s.ids.New("po_", now), Status: payout.StatusQueued, Chain: ch.Name, ChainID: ch.ChainID, Asset: row.Asset,
			To: row.To, Amount: row.Amount, ExternalID: row.ExternalID, Metadata: meta, Sender: sender, Priority: priority,
			BatchID: b.ID, BatchRow: row.Number, Version: 1, CreatedAt: now, UpdatedAt: now,
		}
	}
	return ps
}

// getBatch handles GET /v1/batches/{id}.
func (s *Server) getBatch(w http.ResponseWriter, r *http.Request) {
	b, err := s.lookupBatch(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, "application/json", http.StatusOK, b)
}

func (s *Server) lookupBatch(r *http.Request) (*payout.Batch, error) {
	id := r.PathValue("id")
	if !strings.HasPrefix(id, "bat_") || len(id) > 64 {
		return nil, newError(payout.CodeNotFound, "no such batch")
	}
	b, err := s.batches.GetBatch(r.Context(), id)
	if errors.Is(err, payout.ErrNotFound) {
		return nil, newError(payout.CodeNotFound, "no such batch")
	}
	return b, err
}

// batchStatement handles GET /v1/batches/{id}/statement.csv: one line per
// stored row, in input order, then the totals per asset.
func (s *Server) batchStatement(w http.ResponseWriter, r *http.Request) {
	b, err := s.lookupBatch(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ps, err := s.batches.BatchPayouts(r.Context(), b.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	times, err := s.blockTimes(r, ps)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+b.ID+`-statement.csv"`)
	w.WriteHeader(http.StatusOK)
	if err := payout.WriteStatement(w, b, ps, s.catalog, times); err != nil {
		s.log.Warn("statement cut short", "batch_id", b.ID, "err", err)
	}
}

// blockTimes reads the timestamps of the blocks the batch's payouts were
// mined in, when the server can (nil otherwise: the column stays empty).
func (s *Server) blockTimes(r *http.Request, ps []*payout.Payout) (map[string]map[uint64]time.Time, error) {
	if s.blockTime == nil {
		return nil, nil
	}
	out := map[string]map[uint64]time.Time{}
	for _, p := range ps {
		if p.BlockNumber == 0 || !p.Status.Terminal() {
			continue
		}
		if out[p.Chain] == nil {
			out[p.Chain] = map[uint64]time.Time{}
		}
		if _, ok := out[p.Chain][p.BlockNumber]; ok {
			continue
		}
		t, err := s.blockTime(r.Context(), p.Chain, p.BlockNumber)
		if err != nil {
			return nil, fmt.Errorf("block %d time: %w", p.BlockNumber, err)
		}
		out[p.Chain][p.BlockNumber] = t
	}
	return out, nil
}

// needBatches answers 503 when the store keeps no batches.
func (s *Server) needBatches(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.batches == nil {
			s.fail(w, r, newError(payout.CodeUnavailable, "this server's store keeps no batches"))
			return
		}
		h(w, r)
	}
}

// defaultChain is the chain rows without one are paid on: the request's,
// or the only configured chain.
func (s *Server) defaultChain(chain string) string {
	if names := s.catalog.Names(); chain == "" && len(names) == 1 {
		return names[0]
	}
	return chain
}

// decideBatch decides every payout of a batch with the active policy (as
// POST /v1/payouts does; nothing to do without one): rows it holds for
// approval are stored pending_approval (POST /v1/batches/{id}/approve
// approves them at once). Refused payouts are
// row errors: they refuse the whole batch (all_or_nothing) or are left out
// and listed (accept_valid).
func (s *Server) decideBatch(r *http.Request, b *payout.Batch, ps []*payout.Payout) ([]*payout.Payout, error) {
	if s.policy.store == nil {
		return ps, nil
	}
	var refused []batchfile.RowError
	kept := ps[:0:0]
	for _, p := range ps {
		err := s.decideOne(r, p, true) // a row the policy holds is stored pending_approval
		var ae *apiError
		switch {
		case err == nil:
			kept = append(kept, p)
		case errors.As(err, &ae):
			refused = append(refused, batchfile.RowError{Row: p.BatchRow, Column: batchfile.ColTo, Value: p.To.Hex(),
				Code: ae.code, Message: ae.detail})
		default:
			return nil, err
		}
	}
	if len(refused) == 0 {
		return ps, nil
	}
	res := &batchfile.Result{Errors: refused, Invalid: len(refused)}
	if b.Policy == payout.BatchAllOrNothing || len(kept) == 0 {
		return nil, rowsProblem(res, b.Source == "csv")
	}
	b.Invalid += len(refused)
	b.Errors = append(b.Errors, batchErrors(res)...)
	return kept, nil
}
