package policy

import (
	"fmt"
	"math/big"
	"strings"

	"cel.dev/cel-go/common/types"

	"github.com/sluicepay/sluice/internal/payout"
)

// NewFacts returns the facts of in alone: on no list, never paid before
// (destination_age_seconds -1), balance unknown, no velocity. Set the rest
// with AddList, SetVelocity and the exported fields.
func NewFacts(in Input) *Facts {
	amt := in.Amount
	if amt == nil {
		amt = new(big.Int)
	}
	return &Facts{Amount: amt.String(), AmountDecimal: decimal(amt, in.Decimals), Asset: in.Asset, Chain: in.Chain,
		Destination: in.To.Hex(), Lists: []string{}, DestinationAgeSeconds: -1, BalanceShare: -1, APIKeyID: in.APIKeyID,
		APIKeyName: in.APIKeyName, APIKeyLabels: labelsOrEmpty(in.APIKeyLabels), Metadata: in.Metadata, amount: amt}
}

// labelsOrEmpty keeps api_key_labels an object in recorded facts.
func labelsOrEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// AddList records that a list holds the destination.
func (f *Facts) AddList(h payout.ListHit) {
	f.Lists = append(f.Lists, h.Name)
	f.AllowListed = f.AllowListed || h.Kind == payout.ListAllow
	f.hits = append(f.hits, hit{name: h.Name, sanctions: h.Sanctions && h.Kind == payout.ListDeny, deny: h.Kind == payout.ListDeny})
}

// SetVelocity sets a velocity fact, key "scope/window" (e.g.
// "destination/24h").
func (f *Facts) SetVelocity(key string, sum *big.Int, count int64) error {
	scope, window, ok := strings.Cut(key, "/")
	if !ok || !validScope(scope) {
		return fmt.Errorf("velocity %q: want scope/window with scope wallet, asset, destination or api_key", key)
	}
	if _, err := ParseWindow(window); err != nil {
		return fmt.Errorf("velocity %q: %w", key, err)
	}
	if sum == nil || sum.Sign() < 0 || count < 0 {
		return fmt.Errorf("velocity %q: sum and count must not be negative", key)
	}
	if f.vel == nil {
		f.vel, f.Velocity = map[string]Window{}, map[string]VelocityFact{}
	}
	f.vel[key] = Window{Sum: sum, Count: count}
	f.Velocity[key] = VelocityFact{Sum: sum.String(), Count: count}
	return nil
}

// Step is one rule's outcome in an explanation.
type Step struct {
	Rule   string `json:"rule"`
	When   string `json:"when"`
	Result string `json:"result"` // "true", "false" or "error: …"
}

// Explain decides like Decide and also says what each rule evaluated to,
// up to the one that matched. Velocity facts the rules read but f lacks
// count as zero.
func (p *Policy) Explain(version int64, f *Facts) (Decision, []Step) {
	for _, w := range p.windows {
		if _, ok := f.vel[w.scope+"/"+w.window]; !ok {
			_ = f.SetVelocity(w.scope+"/"+w.window, new(big.Int), 0)
		}
	}
	var steps []Step
	if len(f.hits) == 0 {
		act := f.activation()
		for _, c := range p.rules {
			s := Step{Rule: c.rule.Name, When: c.rule.When, Result: "false"}
			out, _, err := c.prg.Eval(act)
			switch {
			case err != nil:
				s.Result = "error: " + err.Error()
			case out == types.True:
				s.Result = "true"
			}
			steps = append(steps, s)
			if s.Result != "false" {
				break
			}
		}
	}
	return p.Decide(version, f), steps
}
