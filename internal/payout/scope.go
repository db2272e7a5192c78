package payout

import "fmt"

// Scope is one permission an API key holds. A key may do only what its
// scopes allow; ScopeAdmin allows everything.
type Scope string

// The scopes an API key may hold. They never change meaning.
const (
	ScopePayoutsRead    Scope = "payouts:read"
	ScopePayoutsWrite   Scope = "payouts:write"
	ScopeBatchesWrite   Scope = "batches:write"
	ScopeWebhooksManage Scope = "webhooks:manage"
	ScopeAdmin          Scope = "admin"
	// ScopeApprover lets a named key approve or reject payouts that wait
	// for approval, and read payouts.
	ScopeApprover Scope = "approver"
)

// Scopes lists every scope, in the order the documentation shows them.
var Scopes = []Scope{ScopePayoutsRead, ScopePayoutsWrite, ScopeBatchesWrite, ScopeWebhooksManage, ScopeAdmin, ScopeApprover}

// ParseScope returns the scope named s, or an error naming s and the
// scopes that exist.
func ParseScope(s string) (Scope, error) {
	for _, sc := range Scopes {
		if string(sc) == s {
			return sc, nil
		}
	}
	return "", fmt.Errorf("unknown scope %q; scopes are payouts:read, payouts:write, batches:write, webhooks:manage, admin, approver", s)
}

// Allows reports whether a key holding scopes may act with scope need.
// payouts:write, batches:write and approver include payouts:read.
func Allows(scopes []Scope, need Scope) bool {
	for _, s := range scopes {
		// Writing payouts or batches includes reading them back.
		// So does approving them: an approver reads what it approves.
		if s == need || s == ScopeAdmin || ((s == ScopePayoutsWrite || s == ScopeBatchesWrite || s == ScopeApprover) && need == ScopePayoutsRead) {
			return true
		}
	}
	return false
}
