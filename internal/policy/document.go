package policy

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Action is what a rule does with the payouts it matches.
type Action string

// The actions of a rule.
const (
	Allow           Action = "allow"
	Deny            Action = "deny"
	RequireApproval Action = "require_approval"
	Hold            Action = "hold"
)

// Document is a policy as written: YAML, checked by Compile.
//
//	version: 1
//	rules:
//	  - name: big-to-new
//	    when: amount > units("10000000000000000000") && destination_age_seconds < 86400
//	    action: require_approval
//	    approvals: {quorum: 2, group: treasury}
//	  - name: everything-else
//	    when: "true"
//	    action: allow
//	default: deny
type Document struct {
	// Version is the document format's version; 1.
	Version int    `yaml:"version"`
	Rules   []Rule `yaml:"rules"`
	// Default is what happens when no rule matches: deny, the only value.
	Default Action `yaml:"default"`
}

// Rule is a condition and what to do when it holds.
type Rule struct {
	Name      string     `yaml:"name"`
	When      string     `yaml:"when"` // CEL; must be a bool
	Action    Action     `yaml:"action"`
	Approvals *Approvals `yaml:"approvals,omitempty"` // require_approval only
	HoldFor   string     `yaml:"hold_for,omitempty"`  // hold only: a duration, e.g. "30m", "2h", "1d"
}

// Approvals says who must approve a payout a rule holds for approval.
type Approvals struct {
	Quorum int    `yaml:"quorum"`
	Group  string `yaml:"group"`
}

// Issue is one problem of a document, named by its rule where it has one.
type Issue struct {
	Rule    string // "" for the document itself
	Index   int    // the rule's position, from 0; -1 for the document
	Message string
}

func (i Issue) String() string {
	if i.Index < 0 {
		return i.Message
	}
	name := i.Rule
	if name == "" {
		name = "(unnamed)"
	}
	return fmt.Sprintf("rule %d %q: %s", i.Index+1, name, i.Message)
}

// Error lists every problem of a document.
type Error struct{ Issues []Issue }

func (e *Error) Error() string {
	s := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		s[i] = is.String()
	}
	return "policy: " + strings.Join(s, "; ")
}

// ParseDocument reads a YAML document strictly: unknown fields are errors.
func ParseDocument(b []byte) (*Document, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var d Document
	if err := dec.Decode(&d); err != nil {
		return nil, &Error{Issues: []Issue{{Index: -1, Message: "not a policy document: " + err.Error()}}}
	}
	return &d, nil
}

// ParseWindow reads a window length: a Go duration ("90m", "24h") or whole
// days ("7d").
func ParseWindow(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err = fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n {
			d = time.Duration(days) * 24 * time.Hour
		} else {
			err = fmt.Errorf("bad day count")
		}
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 || d > 366*24*time.Hour {
		return 0, fmt.Errorf("window %q must be a duration from 1s to 366d, like \"1h\", \"24h\" or \"7d\"", s)
	}
	return d, nil
}

// check reports the structural problems of the document, not its CEL.
func (d *Document) check() []Issue {
	var is []Issue
	if d.Version != 1 {
		is = append(is, Issue{Index: -1, Message: fmt.Sprintf("version must be 1, got %d", d.Version)})
	}
	if d.Default != Deny {
		is = append(is, Issue{Index: -1, Message: fmt.Sprintf("default must be deny, got %q", d.Default)})
	}
	seen := map[string]bool{}
	for i, r := range d.Rules {
		bad := func(format string, args ...any) {
			is = append(is, Issue{Rule: r.Name, Index: i, Message: fmt.Sprintf(format, args...)})
		}
		switch {
		case r.Name == "":
			bad("name is required")
		case seen[r.Name]:
			bad("name is used by an earlier rule")
		}
		seen[r.Name] = true
		if strings.TrimSpace(r.When) == "" {
			bad("when is required (a CEL condition; \"true\" matches every payout)")
		}
		switch r.Action {
		case Allow, Deny:
			if r.Approvals != nil || r.HoldFor != "" {
				bad("approvals and hold_for go only with require_approval and hold")
			}
		case RequireApproval:
			if r.Approvals == nil || r.Approvals.Quorum < 1 || r.Approvals.Group == "" {
				bad("require_approval needs approvals: {quorum: N (1 or more), group: NAME}")
			}
		case Hold:
			if _, err := ParseWindow(r.HoldFor); err != nil {
				bad("hold needs hold_for: %v", err)
			}
		default:
			bad("action must be allow, deny, require_approval or hold, got %q", r.Action)
		}
	}
	return is
}
