package payout

import (
	"fmt"
	"strings"
	"time"
)

// CreateRequest is what a client asks for when it creates a payout.
type CreateRequest struct {
	Chain      string            `json:"chain"`
	Asset      string            `json:"asset"`
	To         string            `json:"to"`
	Amount     string            `json:"amount"`
	ExternalID string            `json:"external_id,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	Priority   string            `json:"priority,omitempty"`
}

// Limits on metadata, as Stripe has them.
const (
	MaxMetadataKeys     = 50
	MaxMetadataKeyLen   = 40
	MaxMetadataValueLen = 500
	MaxExternalIDLen    = 255
)

// Validate checks a request against the catalog and returns a new queued
// payout, or every problem found as []*FieldError (the first error returned
// is a *ValidationError holding them all).
func (r *CreateRequest) Validate(c *Catalog, ids *IDGenerator, now time.Time) (*Payout, error) {
	var errs []*FieldError
	add := func(err error) {
		if fe, ok := err.(*FieldError); ok {
			errs = append(errs, fe)
		}
	}
	ch, asset, err := c.Lookup(r.Chain, r.Asset)
	add(err)
	to, err := ParseAddress("to", r.To)
	add(err)
	amount, err := ParseAmount(r.Amount)
	add(err)
	if err := ValidateExternalID(r.ExternalID); err != nil {
		add(err)
	}
	if err := validateMetadata(r.Metadata); err != nil {
		add(err)
	}
	priority, err := ParsePriority(r.Priority)
	if err != nil {
		add(&FieldError{Field: "priority", Code: CodeInvalidPriority, Message: err.Error()})
	}
	if len(errs) > 0 {
		return nil, &ValidationError{Errors: errs}
	}
	return &Payout{
		ID: ids.New("po_", now), Status: StatusQueued, Chain: ch.Name, ChainID: ch.ChainID,
		Asset: asset.Symbol, To: to, Amount: amount, ExternalID: r.ExternalID,
		Metadata: r.Metadata, Sender: c.Assign(ch, asset.Symbol, amount), Priority: priority, Version: 1,
		CreatedAt: now, UpdatedAt: now,
	}, nil
}

// ValidationError holds every field error of one request.
type ValidationError struct {
	Errors []*FieldError
}

func (e *ValidationError) Error() string {
	if len(e.Errors) == 1 {
		return e.Errors[0].Error()
	}
	return fmt.Sprintf("%s (and %d more)", e.Errors[0].Error(), len(e.Errors)-1)
}

// ValidateExternalID checks a client's external id: printable ASCII
// without spaces, at most MaxExternalIDLen bytes, and not starting with
// ReservedExternalIDPrefix (Sluice's own payouts, e.g. a rotation's
// sweeps). Single payouts and batch rows share it.
func ValidateExternalID(s string) error {
	if len(s) > MaxExternalIDLen {
		return &FieldError{Field: "external_id", Code: CodeInvalidExternalID, Message: fmt.Sprintf("external_id is longer than %d characters", MaxExternalIDLen)}
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return &FieldError{Field: "external_id", Code: CodeInvalidExternalID, Message: "external_id must be printable ASCII without spaces"}
		}
	}
	if strings.HasPrefix(s, ReservedExternalIDPrefix) {
		return &FieldError{Field: "external_id", Code: CodeInvalidExternalID, Message: "external_ids starting with " + ReservedExternalIDPrefix + " are reserved for Sluice's own payouts"}
	}
	return nil
}

func validateMetadata(m map[string]string) error {
	if len(m) > MaxMetadataKeys {
		return &FieldError{Field: "metadata", Code: CodeInvalidMetadata, Message: fmt.Sprintf("metadata has %d keys; at most %d are allowed", len(m), MaxMetadataKeys)}
	}
	for k, v := range m {
		if k == "" || len(k) > MaxMetadataKeyLen {
			return &FieldError{Field: "metadata", Code: CodeInvalidMetadata, Message: fmt.Sprintf("metadata key %q must be 1 to %d characters", truncate(k, 64), MaxMetadataKeyLen)}
		}
		if len(v) > MaxMetadataValueLen {
			return &FieldError{Field: "metadata", Code: CodeInvalidMetadata, Message: fmt.Sprintf("metadata value of %q is longer than %d characters", truncate(k, 64), MaxMetadataValueLen)}
		}
	}
	return nil
}
