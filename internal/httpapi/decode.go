package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// MaxBodyBytes bounds a request body: 1 MiB.
const MaxBodyBytes = 1 << 20

// readBody checks the Content-Type and reads at most MaxBodyBytes.
func readBody(r *http.Request) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return nil, newError(payout.CodeUnsupportedMediaType, "Content-Type must be application/json, got %q", truncate(ct, 64))
	}
	if r.ContentLength > MaxBodyBytes {
		return nil, tooLarge()
	}
	body, err := readAll(io.LimitReader(r.Body, MaxBodyBytes+1), r.ContentLength)
	if err != nil {
		return nil, newError(payout.CodeMalformedJSON, "the body could not be read")
	}
	if len(body) > MaxBodyBytes {
		return nil, tooLarge()
	}
	return body, nil
}

// readAll reads r into a buffer of the announced size (plus one byte, to
// see the end without growing), growing only when the size was unknown.
func readAll(r io.Reader, size int64) ([]byte, error) {
	buf := make([]byte, 0, max(size, 512)+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func tooLarge() error {
	return newError(payout.CodeBodyTooLarge, "the body is larger than %d bytes", MaxBodyBytes)
}

// createBody is the wire form of a create request. Amount stays raw so a
// JSON number can be refused with a clear message instead of a type error.
type createBody struct {
	Chain      string            `json:"chain"`
	Asset      string            `json:"asset"`
	To         string            `json:"to"`
	Amount     json.RawMessage   `json:"amount"`
	ExternalID string            `json:"external_id"`
	Metadata   map[string]string `json:"metadata"`
	Priority   string            `json:"priority"`
}

// fieldTypeCode is the code of a field that has the wrong JSON type.
var fieldTypeCode = map[string]payout.Code{
	"chain": payout.CodeUnknownChain, "asset": payout.CodeUnknownAsset, "to": payout.CodeInvalidAddress,
	"external_id": payout.CodeInvalidExternalID, "metadata": payout.CodeInvalidMetadata,
	"priority": payout.CodeInvalidPriority,
}

// decodeCreate parses a create request strictly: one JSON object, with
// only the known fields, each spelled exactly and given once, and nothing
// after it. Syntax problems are *apiError (400); fields of the wrong JSON
// type come back as field errors, to be reported with whatever validation
// finds in the others.
func decodeCreate(body []byte) (*payout.CreateRequest, []*payout.FieldError, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, nil, newError(payout.CodeMalformedJSON, "the body is empty; send a JSON object")
	}
	if trimmed[0] != '{' {
		return nil, nil, newError(payout.CodeMalformedJSON, "the body must be a JSON object")
	}
	var b createBody
	var fields []*payout.FieldError
	if err := json.Unmarshal(body, &b); err != nil {
		if fields, err = decodeProblem(body, err); err != nil {
			return nil, nil, err
		}
	}
	// encoding/json matches keys case-insensitively and lets the last of
	// two equal keys win; checkKeys refuses both (and unknown keys).
	if err := checkKeys(body); err != nil {
		return nil, nil, err
	}
	amount, fe := rawAmount(b.Amount)
	if fe != nil {
		fields = append(fields, fe)
	}
	req := &payout.CreateRequest{Chain: b.Chain, Asset: b.Asset, To: b.To, Amount: amount,
		ExternalID: b.ExternalID, Metadata: b.Metadata, Priority: b.Priority}
	return req, fields, nil
}

// fieldNames are the create request's fields, as they must be spelled.
var fieldNames = [...]string{"chain", "asset", "to", "amount", "external_id", "metadata", "priority"}

var knownFields = strings.Join(fieldNames[:], ", ")

func unknownField(name string) error {
	name = truncate(name, 64)
	return &apiError{code: payout.CodeUnknownField,
		detail: fmt.Sprintf("unknown field %q; the fields are %s", name, knownFields),
		fields: []fieldProblem{{Pointer: "/" + name, Code: payout.CodeUnknownField, Detail: fmt.Sprintf("unknown field %q", name)}}}
}

func duplicateField(name string) error {
	return &apiError{code: payout.CodeMalformedJSON, detail: fmt.Sprintf("field %q appears more than once", name),
		fields: []fieldProblem{{Pointer: "/" + name, Code: payout.CodeMalformedJSON, Detail: "this field appears more than once"}}}
}

// decodeProblem explains a decoding error: a type error is a field error,
// anything else an *apiError.
func decodeProblem(body []byte, err error) ([]*payout.FieldError, error) {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return nil, syntaxProblem(body, syn)
	case errors.As(err, &typ) && typ.Field != "":
		field, _, _ := strings.Cut(typ.Field, ".")
		code, ok := fieldTypeCode[field]
		if !ok {
			code = payout.CodeInvalidRequest
		}
		msg := fmt.Sprintf("%s must be a JSON string, not a %s", field, typ.Value)
		if field == "metadata" {
			msg = fmt.Sprintf("metadata must be an object of string values, not a %s", typ.Value)
		}
		return []*payout.FieldError{{Field: field, Code: code, Message: msg}}, nil
	default:
		return nil, newError(payout.CodeMalformedJSON, "the body is not a valid create request")
	}
}

// syntaxProblem words a syntax error, telling trailing data (a complete
// object followed by more) from a broken object.
func syntaxProblem(body []byte, syn *json.SyntaxError) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var v json.RawMessage
	if dec.Decode(&v) == nil {
		return newError(payout.CodeMalformedJSON, "unexpected data after the JSON object at byte %d", dec.InputOffset())
	}
	if syn.Offset >= int64(len(body)) {
		return newError(payout.CodeMalformedJSON, "the JSON body ends early")
	}
	return newError(payout.CodeMalformedJSON, "invalid JSON at byte %d: %s", syn.Offset, syn.Error())
}

// rawAmount reads the amount, which must be a JSON string: numbers lose
// precision in many JSON libraries, and money must not.
func rawAmount(raw json.RawMessage) (string, *payout.FieldError) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil // Validate reports it missing
	}
	switch c := raw[0]; {
	case c == '"':
		if inner := raw[1 : len(raw)-1]; bytes.IndexAny(inner, `"\`) < 0 {
			return string(inner), nil // the usual case: no escapes
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", &payout.FieldError{Field: "amount", Code: payout.CodeInvalidAmount, Message: "amount is not a valid JSON string"}
		}
		return s, nil
	case c == '-' || c >= '0' && c <= '9':
		return "", &payout.FieldError{Field: "amount", Code: payout.CodeInvalidAmount,
			Message: fmt.Sprintf(`amount must be a JSON string of base units such as "1500000", not the JSON number %s`, truncate(string(raw), 90))}
	default:
		return "", &payout.FieldError{Field: "amount", Code: payout.CodeInvalidAmount,
			Message: `amount must be a JSON string of base units such as "1500000"`}
	}
}

// parseCreate decodes and validates a create request body: a new queued
// payout, or an error to answer (*apiError or *payout.ValidationError).
func (s *Server) parseCreate(body []byte, now time.Time) (*payout.Payout, error) {
	return parseCreate(s.catalog, s.ids, body, now)
}

func parseCreate(c *payout.Catalog, ids *payout.IDGenerator, body []byte, now time.Time) (*payout.Payout, error) {
	req, typeErrs, err := decodeCreate(body)
	if err != nil {
		return nil, err
	}
	p, err := req.Validate(c, ids, now)
	if len(typeErrs) == 0 {
		return p, err
	}
	return nil, mergeFieldErrors(typeErrs, err)
}

// mergeFieldErrors reports type errors in place of what validation said
// about the same fields (it saw them empty).
func mergeFieldErrors(typeErrs []*payout.FieldError, err error) error {
	out := &payout.ValidationError{Errors: typeErrs}
	var ve *payout.ValidationError
	if !errors.As(err, &ve) {
		return out
	}
	for _, fe := range ve.Errors {
		dup := false
		for _, te := range typeErrs {
			dup = dup || te.Field == fe.Field
		}
		if !dup {
			out.Errors = append(out.Errors, fe)
		}
	}
	return out
}
