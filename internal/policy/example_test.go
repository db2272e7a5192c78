package policy_test

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/policy"
)

// A policy decides from facts: here built by hand, as `sluice policy
// test` does; the engine computes them from the store.
func ExamplePolicy_Explain() {
	p, err := policy.Parse([]byte(`
version: 1
rules:
  - name: large
    when: amount > units("10000000000000000000")
    action: deny
  - name: daily
    when: velocity.sum("destination", "24h") + amount <= units("20000000000000000000")
    action: allow
default: deny
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	f := policy.NewFacts(policy.Input{Chain: "sandbox", Asset: "ETH", Decimals: 18,
		To: common.HexToAddress("0x2222222222222222222222222222222222222222"), Amount: big.NewInt(3e18)})
	sum, _ := new(big.Int).SetString("18000000000000000000", 10)
	_ = f.SetVelocity("destination/24h", sum, 4)
	d, steps := p.Explain(1, f)
	for _, s := range steps {
		fmt.Println(s.Rule, s.Result)
	}
	fmt.Println(d.Action, d.Code, d.Reason)

	f.AddList(payout.ListHit{Name: "ofac", Kind: payout.ListDeny, Sanctions: true})
	d, _ = p.Explain(1, f)
	fmt.Println(d.Action, d.Code)
	// Output:
	// large false
	// daily false
	// deny policy_denied no rule matched; the default is deny
	// deny sanctioned_destination
}

// A document that does not check names each problem by its rule.
func ExampleParse() {
	_, err := policy.Parse([]byte(`
version: 1
rules:
  - name: typo
    when: amout > 5
    action: allow
  - name: nowhere
    when: velocity.count("planet", "1h") > 1
    action: deny
default: allow
`))
	for _, is := range err.(*policy.Error).Issues {
		fmt.Println(is.Rule, is.Index)
	}
	// Output:
	//  -1
	// typo 0
	// nowhere 1
}
