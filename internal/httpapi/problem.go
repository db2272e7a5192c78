package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/sluicepay/sluice/internal/batchfile"
	"github.com/sluicepay/sluice/internal/payout"
)

// codeInfo is the one table that maps error codes to HTTP statuses and
// titles. A code missing here answers 500.
var codeInfo = map[payout.Code]struct {
	status int
	title  string
}{
	payout.CodeInvalidRequest:        {http.StatusUnprocessableEntity, "The request is invalid"},
	payout.CodeMalformedJSON:         {http.StatusBadRequest, "The body is not valid JSON"},
	payout.CodeUnknownField:          {http.StatusBadRequest, "The body has an unknown field"},
	payout.CodeBodyTooLarge:          {http.StatusRequestEntityTooLarge, "The body is too large"},
	payout.CodeUnsupportedMediaType:  {http.StatusUnsupportedMediaType, "The body must be JSON"},
	payout.CodeUnauthorized:          {http.StatusUnauthorized, "Authentication failed"},
	payout.CodeForbidden:             {http.StatusForbidden, "Not allowed for this API key"},
	payout.CodeNotFound:              {http.StatusNotFound, "Not found"},
	payout.CodeMethodNotAllowed:      {http.StatusMethodNotAllowed, "Method not allowed"},
	payout.CodeInvalidAddress:        {http.StatusUnprocessableEntity, "Invalid address"},
	payout.CodeInvalidChecksum:       {http.StatusUnprocessableEntity, "Invalid address checksum"},
	payout.CodeZeroAddress:           {http.StatusUnprocessableEntity, "Zero address"},
	payout.CodeInvalidAmount:         {http.StatusUnprocessableEntity, "Invalid amount"},
	payout.CodeAmountTooLarge:        {http.StatusUnprocessableEntity, "Amount too large"},
	payout.CodeUnknownChain:          {http.StatusUnprocessableEntity, "Unknown chain"},
	payout.CodeUnknownAsset:          {http.StatusUnprocessableEntity, "Unknown asset"},
	payout.CodeInvalidExternalID:     {http.StatusUnprocessableEntity, "Invalid external_id"},
	payout.CodeInvalidMetadata:       {http.StatusUnprocessableEntity, "Invalid metadata"},
	payout.CodeIdempotencyKeyMissing: {http.StatusBadRequest, "Idempotency-Key is missing"},
	payout.CodeIdempotencyKeyInvalid: {http.StatusBadRequest, "Idempotency-Key is invalid"},
	payout.CodeIdempotencyInFlight:   {http.StatusConflict, "Idempotency-Key is in use"},
	payout.CodeIdempotencyMismatch:   {http.StatusUnprocessableEntity, "Idempotency-Key was used with another request"},
	payout.CodeDuplicateExternalID:   {http.StatusConflict, "Duplicate external_id"},
	payout.CodeNotCancellable:        {http.StatusConflict, "Payout cannot be cancelled"},
	payout.CodeNotRebroadcastable:    {http.StatusConflict, "Payout has nothing to re-broadcast"},
	payout.CodeNotInFlight:           {http.StatusConflict, "Payout has no transaction in flight"},
	payout.CodeInvalidPriority:       {http.StatusUnprocessableEntity, "Invalid priority"},
	payout.CodeInvalidFee:            {http.StatusUnprocessableEntity, "Invalid fee"},
	payout.CodeInvalidCursor:         {http.StatusBadRequest, "Invalid cursor"},
	payout.CodeInvalidLimit:          {http.StatusBadRequest, "Invalid limit"},
	payout.CodeInvalidStatus:         {http.StatusBadRequest, "Invalid status"},
	payout.CodeUnknownEventType:      {http.StatusUnprocessableEntity, "Unknown event type"},
	payout.CodeInvalidWebhookURL:     {http.StatusUnprocessableEntity, "Invalid webhook URL"},
	payout.CodeInternal:              {http.StatusInternalServerError, "Internal error"},
	payout.CodeUnavailable:           {http.StatusServiceUnavailable, "Service unavailable"},
	payout.CodeInvalidScope:          {http.StatusUnprocessableEntity, "Unknown scope"},
	payout.CodeInvalidAPIVersion:     {http.StatusBadRequest, "Unknown API version"},
	payout.CodeSignatureMissing:      {http.StatusUnauthorized, "Request signature missing"},
	payout.CodeSignatureMalformed:    {http.StatusUnauthorized, "Request signature malformed"},
	payout.CodeSignatureExpired:      {http.StatusUnauthorized, "Request signature expired"},
	payout.CodeSignatureInvalid:      {http.StatusUnauthorized, "Request signature invalid"},
	payout.CodeSignatureReplayed:     {http.StatusUnauthorized, "Request signature replayed"},
	payout.CodeRateLimited:           {http.StatusTooManyRequests, "Rate limit exceeded"},
	payout.CodeInvalidPause:          {http.StatusUnprocessableEntity, "Invalid pause"},
	payout.CodePauseResumed:          {http.StatusConflict, "Pause was resumed already"},
	payout.CodeInvalidBatch:          {http.StatusUnprocessableEntity, "Rows of the batch are invalid"},
	batchfile.CodeFileTooLarge:       {http.StatusRequestEntityTooLarge, "The batch is too large"},
	batchfile.CodeTooManyRows:        {http.StatusUnprocessableEntity, "The batch has too many rows"},
	batchfile.CodeEmptyFile:          {http.StatusUnprocessableEntity, "The batch is empty"},
	batchfile.CodeMissingColumn:      {http.StatusUnprocessableEntity, "A required column is missing"},
	batchfile.CodeUnknownColumn:      {http.StatusUnprocessableEntity, "The file has an unknown column"},
	batchfile.CodeDuplicateColumn:    {http.StatusUnprocessableEntity, "The file names a column twice"},
	batchfile.CodeNotUTF8:            {http.StatusUnprocessableEntity, "The file is not UTF-8"},
	batchfile.CodeMalformedCSV:       {http.StatusUnprocessableEntity, "The file is not valid CSV"},
}

// problemTypeBase prefixes a code to make the problem's type URI.
const problemTypeBase = "urn:sluice:problem:"

// problem is an RFC 9457 problem details document with Sluice's members.
type problem struct {
	Type             string         `json:"type"`
	Title            string         `json:"title"`
	Status           int            `json:"status"`
	Detail           string         `json:"detail"`
	Instance         string         `json:"instance"`
	Code             payout.Code    `json:"code"`
	RequestID        string         `json:"request_id"`
	Errors           []fieldProblem `json:"errors,omitempty"`
	ExistingPayoutID string         `json:"existing_payout_id,omitempty"`
}

// fieldProblem names one wrong field by JSON pointer.
type fieldProblem struct {
	Pointer string      `json:"pointer,omitempty"`
	Code    payout.Code `json:"code"`
	Detail  string      `json:"detail"`
	// A batch's refused row: its number (a CSV's header is row 1), column
	// and value as given.
	Row    int     `json:"row,omitempty"`
	Column string  `json:"column,omitempty"`
	Value  *string `json:"value,omitempty"`
}

// apiError is an error the API answers as it is: a code, a detail safe to
// send, and optional field errors.
type apiError struct {
	code       payout.Code
	detail     string
	fields     []fieldProblem
	retryAfter string // Retry-After header value, "" for none
}

func (e *apiError) Error() string { return fmt.Sprintf("%s: %s", e.code, e.detail) }

func newError(code payout.Code, format string, args ...any) *apiError {
	return &apiError{code: code, detail: fmt.Sprintf(format, args...)}
}

// toProblem turns any error into the problem to answer, and says whether
// it was unexpected (so its cause must be logged).
func toProblem(err error) (problem, bool) {
	var (
		ae  *apiError
		ve  *payout.ValidationError
		dup *payout.DuplicateExternalIDError
	)
	switch {
	case errors.As(err, &ae):
		return problem{Code: ae.code, Detail: ae.detail, Errors: ae.fields}, false
	case errors.As(err, &ve):
		return validationProblem(ve), false
	case errors.As(err, &dup):
		return problem{Code: payout.CodeDuplicateExternalID, ExistingPayoutID: dup.ExistingID,
			Detail: fmt.Sprintf("external_id %q is already used by payout %s", dup.ExternalID, dup.ExistingID)}, false
	case errors.Is(err, payout.ErrNotFound):
		return problem{Code: payout.CodeNotFound, Detail: "no such payout"}, false
	case errors.Is(err, payout.ErrNotCancellable):
		return problem{Code: payout.CodeNotCancellable, Detail: "only payouts not yet mined can be cancelled"}, false
	case errors.Is(err, payout.ErrNotInFlight):
		return problem{Code: payout.CodeNotInFlight, Detail: "only a submitted or stuck payout has a transaction in flight"}, false
	default:
		return problem{Code: payout.CodeInternal, Detail: "an internal error occurred; quote the request id when reporting it"}, true
	}
}

// validationProblem lists every field error of a request.
func validationProblem(ve *payout.ValidationError) problem {
	p := problem{Code: payout.CodeInvalidRequest, Errors: make([]fieldProblem, len(ve.Errors))}
	for i, fe := range ve.Errors {
		p.Errors[i] = fieldProblem{Pointer: "/" + fe.Field, Code: fe.Code, Detail: fe.Message}
	}
	switch len(ve.Errors) {
	case 0:
		p.Detail = "the request is invalid"
	case 1:
		p.Code, p.Detail = ve.Errors[0].Code, ve.Errors[0].Message
	default:
		p.Detail = fmt.Sprintf("%d fields are invalid; see errors", len(ve.Errors))
	}
	return p
}

// fail answers err as a problem. Unexpected errors are logged with their
// cause and answered 500 without it; context cancellation by the client is
// logged at debug level only.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	p, unexpected := toProblem(err)
	info := codeInfo[p.Code]
	if info.status == 0 {
		info = codeInfo[payout.CodeInternal]
		p.Code, unexpected = payout.CodeInternal, true
	}
	ri := reqInfoFrom(r.Context())
	p.Type, p.Title, p.Status = problemTypeBase+string(p.Code), info.title, info.status
	p.Instance, p.RequestID = r.URL.Path, ri.id
	if unexpected {
		level := slog.LevelError
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			level = slog.LevelDebug
		}
		s.log.Log(r.Context(), level, "request failed", "request_id", ri.id,
			"method", r.Method, "path", r.URL.Path, "err", err)
	}
	var ae *apiError
	if errors.As(err, &ae) && ae.retryAfter != "" {
		w.Header().Set("Retry-After", ae.retryAfter)
	}
	writeJSON(w, "application/problem+json", p.Status, p)
}

// writeJSON encodes v straight to the response.
func writeJSON(w http.ResponseWriter, contentType string, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

// writeBody writes an already encoded JSON body.
func writeBody(w http.ResponseWriter, contentType string, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
