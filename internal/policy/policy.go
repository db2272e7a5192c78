package policy

import (
	"fmt"
	"sort"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

// Policy is a compiled, type-checked document, ready to decide.
type Policy struct {
	Doc   *Document
	rules []compiled
	// windows are the velocity facts the rules read, "scope/window".
	windows []velocityNeed
	// readsKey: a rule reads the initiating key (its id, name, labels or
	// api_key velocity), which a recheck must then look up.
	readsKey bool
}

// ReadsKey reports whether a rule reads facts of the initiating API key:
// api_key_id, api_key_name, api_key_labels or api_key velocity.
func (p *Policy) ReadsKey() bool { return p.readsKey }

type compiled struct {
	rule *Rule
	prg  cel.Program
}

type velocityNeed struct {
	scope, window string
	d             time.Duration
}

// Windows lists the velocity facts the policy reads as "scope/window".
func (p *Policy) Windows() []string {
	out := make([]string, len(p.windows))
	for i, w := range p.windows {
		out[i] = w.scope + "/" + w.window
	}
	return out
}

// Longest returns the longest velocity window the policy reads (0: none).
func (p *Policy) Longest() time.Duration {
	var d time.Duration
	for _, w := range p.windows {
		d = max(d, w.d)
	}
	return d
}

var velocityType = cel.OpaqueType("sluice.Velocity")

// newEnv declares the facts and functions a condition may use.
func newEnv() (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.Variable("amount", unitsType),
		cel.Variable("amount_decimal", cel.DoubleType),
		cel.Variable("asset", cel.StringType),
		cel.Variable("chain", cel.StringType),
		cel.Variable("destination", cel.StringType),
		cel.Variable("allow_listed", cel.BoolType),
		cel.Variable("lists", cel.ListType(cel.StringType)),
		cel.Variable("destination_age_seconds", cel.IntType),
		cel.Variable("balance_share", cel.DoubleType),
		cel.Variable("api_key_id", cel.StringType),
		cel.Variable("api_key_name", cel.StringType),
		cel.Variable("api_key_labels", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("metadata", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("velocity", velocityType),
		cel.Function("sum", cel.MemberOverload("velocity_sum", []*cel.Type{velocityType, cel.StringType, cel.StringType}, unitsType,
			cel.FunctionBinding(func(args ...ref.Val) ref.Val { return args[0].(*velocityVal).get(args[1], args[2], true) }))),
		cel.Function("count", cel.MemberOverload("velocity_count", []*cel.Type{velocityType, cel.StringType, cel.StringType}, cel.IntType,
			cel.FunctionBinding(func(args ...ref.Val) ref.Val { return args[0].(*velocityVal).get(args[1], args[2], false) }))),
	}
	return cel.NewEnv(append(opts, unitsOptions()...)...)
}

var env = func() *cel.Env {
	e, err := newEnv()
	if err != nil {
		panic(fmt.Sprintf("policy: CEL environment: %v", err))
	}
	return e
}()

// Compile checks a document and type-checks its conditions. Its error is an
// *Error listing every problem by rule.
func Compile(doc *Document) (*Policy, error) {
	issues := doc.check()
	p := &Policy{Doc: doc}
	needs := map[string]velocityNeed{}
	for i := range doc.Rules {
		r := &doc.Rules[i]
		if r.When == "" {
			continue
		}
		bad := func(msg string) { issues = append(issues, Issue{Rule: r.Name, Index: i, Message: msg}) }
		a, iss := env.Compile(r.When)
		if iss != nil && iss.Err() != nil {
			bad("when: " + iss.Err().Error())
			continue
		}
		if a.OutputType() != cel.BoolType {
			bad(fmt.Sprintf("when must be a bool condition, it is a %s", a.OutputType()))
			continue
		}
		p.readsKey = p.readsKey || readsKey(a)
		if err := collectVelocity(a, needs); err != nil {
			bad("when: " + err.Error())
			continue
		}
		prg, err := env.Program(a, cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			bad("when: " + err.Error())
			continue
		}
		p.rules = append(p.rules, compiled{rule: r, prg: prg})
	}
	if len(issues) > 0 {
		return nil, &Error{Issues: issues}
	}
	for _, n := range needs {
		p.windows = append(p.windows, n)
		p.readsKey = p.readsKey || n.scope == ScopeAPIKey
	}
	sort.Slice(p.windows, func(i, j int) bool {
		return p.windows[i].scope+p.windows[i].window < p.windows[j].scope+p.windows[j].window
	})
	return p, nil
}

// Parse reads and compiles a YAML document.
func Parse(b []byte) (*Policy, error) {
	d, err := ParseDocument(b)
	if err != nil {
		return nil, err
	}
	return Compile(d)
}

// collectVelocity finds velocity.sum and velocity.count calls; their scope
// and window must be literal strings, so that the facts are known before
// evaluation (and recorded with the decision).
func collectVelocity(a *cel.Ast, needs map[string]velocityNeed) error {
	root := ast.NavigateAST(a.NativeRep())
	calls := ast.MatchDescendants(root, func(e ast.NavigableExpr) bool {
		if e.Kind() != ast.CallKind {
			return false
		}
		c := e.AsCall()
		return c.IsMemberFunction() && (c.FunctionName() == "sum" || c.FunctionName() == "count")
	})
	for _, e := range calls {
		args := e.AsCall().Args()
		lit := func(x ast.Expr) (string, bool) {
			if x.Kind() != ast.LiteralKind {
				return "", false
			}
			s, ok := x.AsLiteral().(types.String)
			return string(s), ok
		}
		scope, ok1 := lit(args[0])
		window, ok2 := lit(args[1])
		if !ok1 || !ok2 {
			return fmt.Errorf("velocity.%s takes a literal scope and window, like velocity.sum(\"destination\", \"24h\")", e.AsCall().FunctionName())
		}
		if !validScope(scope) {
			return fmt.Errorf("velocity scope %q is not one of wallet, asset, destination, api_key", scope)
		}
		d, err := ParseWindow(window)
		if err != nil {
			return err
		}
		needs[scope+"/"+window] = velocityNeed{scope: scope, window: window, d: d}
	}
	return nil
}

// readsKey reports whether a condition names a fact of the initiating key.
func readsKey(a *cel.Ast) bool {
	return len(ast.MatchDescendants(ast.NavigateAST(a.NativeRep()), func(e ast.NavigableExpr) bool {
		if e.Kind() != ast.IdentKind {
			return false
		}
		switch e.AsIdent() {
		case "api_key_id", "api_key_name", "api_key_labels":
			return true
		}
		return false
	})) > 0
}

func validScope(s string) bool {
	for _, v := range velocityScopes {
		if v == s {
			return true
		}
	}
	return false
}

// Decision is what a policy decided, and on which facts.
type Decision struct {
	PolicyVersion int64      `json:"policy_version"`
	Rule          string     `json:"rule"` // "" for a hard deny or the default
	Action        Action     `json:"action"`
	Code          string     `json:"code,omitempty"` // set when denied (and for approvals/holds)
	Reason        string     `json:"reason"`
	Approvals     *Approvals `json:"-"`
	HoldFor       string     `json:"-"`
	Facts         *Facts     `json:"facts"`
}

// Decide applies the hard denies, then the rules in order, then the
// default. A condition that fails to evaluate denies (fail closed) with the
// error as the reason.
func (p *Policy) Decide(version int64, f *Facts) Decision {
	d := Decision{PolicyVersion: version, Facts: f}
	for _, h := range f.hits {
		if h.sanctions {
			d.Action, d.Code = Deny, "sanctioned_destination"
			d.Reason = fmt.Sprintf("destination %s is on sanctions list %q", f.Destination, h.name)
			return d
		}
	}
	for _, h := range f.hits {
		if h.deny {
			d.Action, d.Code = Deny, "denied_destination"
			d.Reason = fmt.Sprintf("destination %s is on deny list %q", f.Destination, h.name)
			return d
		}
	}
	act := f.activation()
	for _, c := range p.rules {
		out, _, err := c.prg.Eval(act)
		if err != nil {
			d.Rule, d.Action, d.Code = c.rule.Name, Deny, "policy_denied"
			d.Reason = fmt.Sprintf("rule %q could not be evaluated: %v", c.rule.Name, err)
			return d
		}
		if out != types.True {
			continue
		}
		d.Rule, d.Action = c.rule.Name, c.rule.Action
		d.Reason = fmt.Sprintf("rule %q matched: %s", c.rule.Name, c.rule.When)
		switch c.rule.Action {
		case Deny:
			d.Code = "policy_denied"
		case RequireApproval:
			d.Code, d.Approvals = "approval_required", c.rule.Approvals
		case Hold:
			d.Code, d.HoldFor = "approval_required", c.rule.HoldFor
		}
		return d
	}
	d.Action, d.Code, d.Reason = Deny, "policy_denied", "no rule matched; the default is deny"
	return d
}

var _ interpreter.Activation = (*activation)(nil)
