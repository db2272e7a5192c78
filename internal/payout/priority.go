package payout

import "fmt"

// Priority is a payout's urgency: it selects what the payout bids for gas
// and how soon a transaction that is not mined gets replaced.
type Priority string

// The priorities. A payout created without one is PriorityStandard.
const (
	PriorityLow      Priority = "low"
	PriorityStandard Priority = "standard"
	PriorityHigh     Priority = "high"
)

// Priorities lists every priority, lowest first.
var Priorities = []Priority{PriorityLow, PriorityStandard, PriorityHigh}

// ParsePriority parses "low", "standard" or "high"; "" is PriorityStandard.
func ParsePriority(s string) (Priority, error) {
	switch p := Priority(s); p {
	case "":
		return PriorityStandard, nil
	case PriorityLow, PriorityStandard, PriorityHigh:
		return p, nil
	}
	return "", fmt.Errorf("unknown priority %q (want low, standard or high)", s)
}

// UnmarshalText parses a priority in config files and JSON.
func (p *Priority) UnmarshalText(b []byte) error {
	v, err := ParsePriority(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
