package config

import (
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// Approvals configures the approval of payouts a policy holds (issue 8).
type Approvals struct {
	// Expiry is how long a payout waits for its quorum before it is
	// rejected with approval_expired, and a policy version for its quorum
	// (PolicyChanges) before it expires. Default 24h.
	Expiry time.Duration `yaml:"expiry"`
	// Sweep is how often holds that ended are released and expired
	// approvals rejected. Default 10s.
	Sweep time.Duration `yaml:"sweep"`
	// Groups name the approvers of a rule's approvals.group by API key
	// name. With none, every key with the approver scope is in every group.
	Groups []ApproverGroup `yaml:"groups"`
	// PolicyChanges, when above 0, is how many approvers (API keys with the
	// approver scope and a name, not the proposer) must approve a policy
	// version before it becomes active: `sluice policy apply` then stores
	// it pending, and `sluice policy approve VERSION` approves it. Default
	// 0: a policy applied is active at once.
	PolicyChanges int `yaml:"policy_changes"`
	// PolicyGroup, when set, names the group (of Groups) whose members
	// approve policy changes. Default: every approver.
	PolicyGroup string `yaml:"policy_group"`
}

// ApproverGroup is a named set of approvers.
type ApproverGroup struct {
	Name string `yaml:"name"`
	// Approvers are API key names.
	Approvers []string `yaml:"approvers"`
}

func (a *Approvals) setDefaults() {
	if a.Expiry == 0 {
		a.Expiry = 24 * time.Hour
	}
	if a.Sweep == 0 {
		a.Sweep = 10 * time.Second
	}
}

func (a *Approvals) validate() error {
	a.setDefaults()
	if a.Expiry < time.Minute {
		return fieldErr("approvals.expiry", "must be at least 1m")
	}
	if a.Sweep < 100*time.Millisecond {
		return fieldErr("approvals.sweep", "must be at least 100ms")
	}
	if a.PolicyChanges < 0 || a.PolicyChanges > 20 {
		return fieldErr("approvals.policy_changes", fmt.Sprintf("%d is not from 0 to 20", a.PolicyChanges))
	}
	seen := map[string]bool{}
	for i, g := range a.Groups {
		if g.Name == "" || seen[g.Name] {
			return fieldErr(fmt.Sprintf("approvals.groups[%d].name", i), "must be set and unique")
		}
		seen[g.Name] = true
		if len(g.Approvers) == 0 {
			return fieldErr(fmt.Sprintf("approvals.groups[%d].approvers", i), "name at least one API key")
		}
	}
	switch {
	case a.PolicyGroup != "" && !seen[a.PolicyGroup]:
		return fieldErr("approvals.policy_group", fmt.Sprintf("%q is not a group of approvals.groups", a.PolicyGroup))
	case a.PolicyGroup != "" && a.PolicyChanges == 0:
		return fieldErr("approvals.policy_group", "needs approvals.policy_changes above 0")
	}
	return nil
}

// GroupMap returns the groups as group name → approver key names.
func (a Approvals) GroupMap() map[string][]string {
	m := make(map[string][]string, len(a.Groups))
	for _, g := range a.Groups {
		m[g.Name] = g.Approvers
	}
	return m
}

// Breaker is an automatic circuit breaker: when a scope's outflow or
// failure rate over a window passes its threshold, the scope is paused
// until an operator resumes it.
type Breaker struct {
	// Name identifies the breaker in its pause's reason and its alert.
	Name string `yaml:"name"`
	// Scope is what is paused: chain, asset or wallet.
	Scope string `yaml:"scope"`
	// Chain is the chain watched (required).
	Chain string `yaml:"chain"`
	// Asset is the asset watched: required for scope asset and for
	// max_outflow (amounts of different assets do not add up).
	Asset string `yaml:"asset"`
	// Wallet is the hot wallet watched and paused (scope wallet).
	Wallet string `yaml:"wallet"`
	// Window is how far back the figures look. Default 1h.
	Window time.Duration `yaml:"window"`
	// MaxOutflow trips the breaker when the payouts of Asset that reached
	// submitted in the window add up to more, in base units.
	MaxOutflow string `yaml:"max_outflow"`
	// MaxFailureRate (0 to 1) trips it when more than this share of the
	// payouts that ended in the window failed.
	MaxFailureRate float64 `yaml:"max_failure_rate"`
	// MinCount is how many payouts must have ended in the window before
	// the failure rate counts. Default 10.
	MinCount int `yaml:"min_count"`
}

func validateBreakers(bs []Breaker) error {
	seen := map[string]bool{}
	for i := range bs {
		b := &bs[i]
		at := fmt.Sprintf("breakers[%d]", i)
		if b.Window == 0 {
			b.Window = time.Hour
		}
		if b.MinCount == 0 {
			b.MinCount = 10
		}
		switch {
		case b.Name == "" || seen[b.Name]:
			return fieldErr(at+".name", "must be set and unique")
		case b.Chain == "":
			return fieldErr(at+".chain", "is required")
		case b.Scope != "chain" && b.Scope != "asset" && b.Scope != "wallet":
			return fieldErr(at+".scope", fmt.Sprintf("%q is not chain, asset or wallet", b.Scope))
		case b.Scope == "asset" && b.Asset == "":
			return fieldErr(at+".asset", "is required for scope asset")
		case b.Scope == "wallet" && (!common.IsHexAddress(b.Wallet) || common.HexToAddress(b.Wallet) == (common.Address{})):
			return fieldErr(at+".wallet", fmt.Sprintf("%q is not an address (scope wallet needs it)", b.Wallet))
		case b.MaxOutflow == "" && b.MaxFailureRate == 0:
			return fieldErr(at, "set max_outflow, max_failure_rate or both")
		case b.MaxOutflow != "" && b.Asset == "":
			return fieldErr(at+".asset", "is required with max_outflow")
		case b.MaxFailureRate < 0 || b.MaxFailureRate >= 1:
			return fieldErr(at+".max_failure_rate", "must be above 0 and below 1")
		case b.Window < time.Second || b.MinCount < 1:
			return fieldErr(at+".window", "must be at least 1s, with min_count at least 1")
		}
		if b.MaxOutflow != "" {
			if _, err := ParseWei(b.MaxOutflow); err != nil {
				return fieldErr(at+".max_outflow", err.Error())
			}
		}
		seen[b.Name] = true
	}
	return nil
}
