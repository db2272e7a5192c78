package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Error is an error answer from the server: an RFC 9457 problem with
// Sluice's stable code. Branch on Code, never on Detail.
type Error struct {
	Status           int    // HTTP status
	Code             string // stable snake_case code, e.g. "invalid_amount"
	Title            string
	Detail           string // a human explanation, safe to show
	Type             string
	Instance         string
	RequestID        string       // quote it when reporting a problem
	Errors           []FieldError // the fields that are wrong, when several may be
	ExistingPayoutID string       // for duplicate_external_id: the payout that has it
}

// FieldError says what is wrong with one field of a request.
type FieldError struct {
	Pointer string `json:"pointer"` // JSON pointer, e.g. "/amount" ("" for a CSV row)
	Code    string `json:"code"`
	Detail  string `json:"detail"`
	// A refused batch row: its number (a CSV's header is row 1), column
	// and value as given.
	Row    int    `json:"row"`
	Column string `json:"column"`
	Value  string `json:"value"`
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d %s: %s", e.Status, e.Code, e.Detail)
	for _, f := range e.Errors {
		if f.Detail != e.Detail {
			fmt.Fprintf(&b, "; %s", f.Detail)
		}
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.RequestID)
	}
	return b.String()
}

// parseError reads an error answer. One that is not a problem document
// (e.g. from a proxy) gets the code "unexpected_response".
func parseError(resp *http.Response, body []byte) *Error {
	var p struct {
		Type             string       `json:"type"`
		Title            string       `json:"title"`
		Detail           string       `json:"detail"`
		Instance         string       `json:"instance"`
		Code             string       `json:"code"`
		RequestID        string       `json:"request_id"`
		Errors           []FieldError `json:"errors"`
		ExistingPayoutID string       `json:"existing_payout_id"`
	}
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("Request-Id")}
	if err := json.Unmarshal(body, &p); err != nil || p.Code == "" {
		e.Code, e.Title = "unexpected_response", http.StatusText(resp.StatusCode)
		e.Detail = fmt.Sprintf("unexpected %s answer: %.200s", resp.Status, strings.TrimSpace(string(body)))
		return e
	}
	e.Code, e.Title, e.Detail, e.Type, e.Instance = p.Code, p.Title, p.Detail, p.Type, p.Instance
	e.Errors, e.ExistingPayoutID = p.Errors, p.ExistingPayoutID
	if p.RequestID != "" {
		e.RequestID = p.RequestID
	}
	return e
}
