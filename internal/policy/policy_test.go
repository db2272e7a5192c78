package policy_test

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/policy"
)

// memSources is an in-memory policy.Sources.
type memSources struct {
	lists     map[common.Address][]payout.ListHit
	firstPaid map[common.Address]time.Time
	history   []payout.HistoryItem
}

func (m *memSources) ListsHolding(_ context.Context, a common.Address) ([]payout.ListHit, error) {
	return m.lists[a], nil
}

func (m *memSources) FirstPaid(_ context.Context, a common.Address) (time.Time, bool, error) {
	t, ok := m.firstPaid[a]
	return t, ok, nil
}

func (m *memSources) PayoutHistory(_ context.Context, since time.Time) ([]payout.HistoryItem, error) {
	var out []payout.HistoryItem
	for _, h := range m.history {
		if !h.CreatedAt.Before(since) {
			out = append(out, h)
		}
	}
	return out, nil
}

func eth(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e18)) }

var (
	now       = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	wallet    = common.HexToAddress("0x00000000000000000000000000000000000000aa")
	sanction  = common.HexToAddress("0x1111111111111111111111111111111111111111")
	denied    = common.HexToAddress("0x4444444444444444444444444444444444444444")
	friend    = common.HexToAddress("0x6666666666666666666666666666666666666666")
	oldFriend = common.HexToAddress("0x7777777777777777777777777777777777777777")
	stranger  = common.HexToAddress("0x8888888888888888888888888888888888888888")
)

func testPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	b, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDecide(t *testing.T) {
	src := &memSources{
		lists: map[common.Address][]payout.ListHit{
			sanction: {{Name: "ofac", Kind: payout.ListDeny, Sanctions: true}},
			denied:   {{Name: "fraud", Kind: payout.ListDeny}},
			friend:   {{Name: "partners", Kind: payout.ListAllow}},
		},
		firstPaid: map[common.Address]time.Time{oldFriend: now.Add(-30 * 24 * time.Hour)},
	}
	// 45 ETH to oldFriend over the last day, one 10 ETH two days ago.
	for i, at := range []time.Duration{-2 * time.Hour, -20 * time.Hour, -47 * time.Hour} {
		amt := []*big.Int{eth(20), eth(25), eth(10)}[i]
		src.history = append(src.history, payout.HistoryItem{ID: "po_" + string(rune('a'+i)), Chain: "sandbox", Asset: "ETH",
			Sender: wallet, To: oldFriend, Amount: amt, APIKeyID: "key_1", CreatedAt: now.Add(at)})
	}
	p := testPolicy(t)
	e := policy.NewEngine(src, nil)
	tests := []struct {
		name     string
		to       common.Address
		amount   *big.Int
		wantRule string
		want     policy.Action
		wantCode string
	}{
		{"sanctioned beats every rule", sanction, big.NewInt(1), "", policy.Deny, "sanctioned_destination"},
		{"deny list", denied, big.NewInt(1), "", policy.Deny, "denied_destination"},
		{"allow-listed", friend, eth(900), "allow-listed", policy.Allow, ""},
		{"new destination, large", stranger, eth(11), "new-destination-large", policy.RequireApproval, "approval_required"},
		{"daily limit reached", oldFriend, eth(6), "destination-daily-limit", policy.Deny, "policy_denied"},
		{"under the daily limit", oldFriend, eth(4), "small", policy.Allow, ""},
		{"default deny", oldFriend, eth(5), "", policy.Deny, "policy_denied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := e.Evaluate(context.Background(), p, 7, policy.Input{Chain: "sandbox", Asset: "ETH", Decimals: 18,
				Sender: wallet, To: tc.to, Amount: tc.amount, APIKeyID: "key_1", APIKeyName: "backoffice", Now: now})
			if err != nil {
				t.Fatal(err)
			}
			got := [3]string{d.Rule, string(d.Action), d.Code}
			if diff := cmp.Diff([3]string{tc.wantRule, string(tc.want), tc.wantCode}, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s\nreason: %s", diff, d.Reason)
			}
			if d.PolicyVersion != 7 || d.Facts == nil || d.Facts.Amount != tc.amount.String() {
				t.Errorf("decision = %+v, want version 7 and the facts", d)
			}
		})
	}
	d, _ := e.Evaluate(context.Background(), p, 7, policy.Input{Chain: "sandbox", Asset: "ETH", Decimals: 18,
		Sender: wallet, To: oldFriend, Amount: eth(4), APIKeyID: "key_1", Now: now})
	want := map[string]policy.VelocityFact{
		"api_key/1h":      {Sum: eth(0).String(), Count: 0},
		"destination/24h": {Sum: eth(45).String(), Count: 2},
	}
	if diff := cmp.Diff(want, d.Facts.Velocity); diff != "" {
		t.Errorf("velocity facts (-want +got):\n%s", diff)
	}
	if d.Facts.DestinationAgeSeconds != 30*24*3600 || d.Facts.BalanceShare != -1 || d.Facts.AmountDecimal != 4 {
		t.Errorf("facts = %+v", d.Facts)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // substrings, one per issue
	}{
		{"not yaml", "rules: [", []string{"not a policy document"}},
		{"unknown field", "version: 1\ndefault: deny\nrulez: []\n", []string{"field rulez not found"}},
		{"default allow", "version: 1\ndefault: allow\n", []string{"default must be deny"}},
		{"wrong version", "version: 2\ndefault: deny\n", []string{"version must be 1"}},
		{"type error", "version: 1\ndefault: deny\nrules:\n- {name: r1, when: 'amount > \"5\"', action: allow}\n",
			[]string{`rule 1 "r1": when:`}},
		{"not a bool", "version: 1\ndefault: deny\nrules:\n- {name: r1, when: 'amount_decimal + 1.0', action: allow}\n",
			[]string{`rule 1 "r1": when must be a bool`}},
		{"unknown fact", "version: 1\ndefault: deny\nrules:\n- {name: ok, when: 'true', action: allow}\n- {name: r2, when: 'amuont > 1', action: deny}\n",
			[]string{`rule 2 "r2": when: ERROR`}},
		{"bad velocity scope", "version: 1\ndefault: deny\nrules:\n- {name: v, when: 'velocity.count(\"planet\", \"1h\") > 1', action: deny}\n",
			[]string{`rule 1 "v": when: velocity scope "planet"`}},
		{"bad window", "version: 1\ndefault: deny\nrules:\n- {name: v, when: 'velocity.count(\"wallet\", \"soon\") > 1', action: deny}\n",
			[]string{`rule 1 "v": when: window "soon"`}},
		{"non-literal window", "version: 1\ndefault: deny\nrules:\n- {name: v, when: 'velocity.count(\"wallet\", asset) > 1', action: deny}\n",
			[]string{`takes a literal scope and window`}},
		{"approval without quorum", "version: 1\ndefault: deny\nrules:\n- {name: a, when: 'true', action: require_approval}\n",
			[]string{`rule 1 "a": require_approval needs approvals`}},
		{"hold without time", "version: 1\ndefault: deny\nrules:\n- {name: h, when: 'true', action: hold}\n",
			[]string{`rule 1 "h": hold needs hold_for`}},
		{"duplicate and nameless", "version: 1\ndefault: deny\nrules:\n- {name: a, when: 'true', action: allow}\n- {name: a, when: 'true', action: allow}\n- {when: 'true', action: maybe}\n",
			[]string{`rule 2 "a": name is used`, `rule 3 "(unnamed)": name is required`, `action must be`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Parse([]byte(tc.doc))
			var pe *policy.Error
			if err == nil || !asError(err, &pe) {
				t.Fatalf("Parse = %v, want a *policy.Error", err)
			}
			if len(pe.Issues) != len(tc.want) {
				t.Fatalf("issues = %v, want %d", pe.Issues, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(pe.Issues[i].String(), w) {
					t.Errorf("issue %d = %q, want it to contain %q", i, pe.Issues[i], w)
				}
			}
		})
	}
}

func asError(err error, pe **policy.Error) bool {
	e, ok := err.(*policy.Error)
	*pe = e
	return ok
}

func TestUnitsComparisons(t *testing.T) {
	big1 := "123456789012345678901234567890"
	src := &memSources{}
	amt, _ := new(big.Int).SetString(big1, 10)
	for _, tc := range []struct {
		when string
		want bool
	}{
		{`amount == units("` + big1 + `")`, true},
		{`amount > units("123456789012345678901234567889")`, true},
		{`amount < 5`, false},
		{`amount > 5 && amount >= 5u`, true},
		{`amount >= 9223372036854775807`, true},
		{`string(amount) == "` + big1 + `"`, true},
		{`amount != units("1")`, true},
		{`amount <= amount + units("0")`, true},
		{`amount_decimal > 1e11`, true},
	} {
		doc := "version: 1\ndefault: deny\nrules:\n- name: r\n  when: '" + tc.when + "'\n  action: allow\n"
		p, err := policy.Parse([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", tc.when, err)
		}
		d, err := policy.NewEngine(src, nil).Evaluate(context.Background(), p, 1, policy.Input{Amount: amt, Decimals: 18, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Action == policy.Allow; got != tc.want {
			t.Errorf("%s = %v, want %v (%s)", tc.when, got, tc.want, d.Reason)
		}
	}
}

func TestEvaluationErrorDenies(t *testing.T) {
	p, err := policy.Parse([]byte("version: 1\ndefault: deny\nrules:\n- {name: r, when: 'metadata[\"tier\"] == \"gold\"', action: allow}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := policy.NewEngine(&memSources{}, nil).Evaluate(context.Background(), p, 1, policy.Input{Amount: big.NewInt(1), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != policy.Deny || d.Rule != "r" || !strings.Contains(d.Reason, "could not be evaluated") {
		t.Fatalf("decision = %+v, want a deny by r, fail closed", d)
	}
}

// Payouts another instance stored reach velocity at the next refresh.
func TestVelocitySeesOtherInstances(t *testing.T) {
	src := &memSources{}
	p, err := policy.Parse([]byte("version: 1\ndefault: deny\nrules:\n- {name: r, when: 'velocity.count(\"wallet\", \"1h\") < 2', action: allow}\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := policy.NewEngine(src, nil)
	in := policy.Input{Chain: "sandbox", Asset: "ETH", Sender: wallet, To: stranger, Amount: big.NewInt(1), Now: now}
	for i := range 2 {
		src.history = append(src.history, payout.HistoryItem{ID: fmt.Sprint("po_other_", i), Chain: "sandbox", Asset: "ETH",
			Sender: wallet, To: friend, Amount: big.NewInt(1), CreatedAt: now.Add(time.Duration(i) * time.Second)})
		in.Now = now.Add(time.Duration(i)*time.Second + 1500*time.Millisecond)
		d, err := e.Evaluate(context.Background(), p, 1, in)
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(i + 1); d.Facts.Velocity["wallet/1h"].Count != want {
			t.Fatalf("after %d payouts elsewhere, count = %d", want, d.Facts.Velocity["wallet/1h"].Count)
		}
	}
	// Decide records what it allows at once.
	e2 := policy.NewEngine(&memSources{}, nil)
	in.Now = now
	for i, want := range []policy.Action{policy.Allow, policy.Allow, policy.Deny} {
		d, err := e2.Decide(context.Background(), p, 1, in, fmt.Sprint("po_", i))
		if err != nil || d.Action != want {
			t.Fatalf("Decide %d = %v, %v; want %s", i, d.Action, err, want)
		}
	}
}

// A payout decided again before signing does not count against itself;
// the payouts stored after it do.
func TestRecheckLeavesThePayoutOut(t *testing.T) {
	p, err := policy.Parse([]byte("version: 1\ndefault: deny\nrules:\n- {name: r, when: 'velocity.sum(\"destination\", \"1h\") + amount <= units(10)', action: allow}\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := policy.NewEngine(&memSources{}, nil)
	in := policy.Input{Chain: "sandbox", Asset: "ETH", Sender: wallet, To: stranger, Amount: big.NewInt(6), APIKeyID: "key_1", Now: now}
	if d, err := e.Decide(context.Background(), p, 1, in, "po_a"); err != nil || d.Action != policy.Allow {
		t.Fatalf("Decide = %v, %v", d.Action, err)
	}
	in.PayoutID, in.Now = "po_a", now.Add(time.Minute)
	d, err := e.Recheck(context.Background(), p, 1, in)
	if err != nil || d.Action != policy.Allow || d.Facts.Velocity["destination/1h"].Count != 0 {
		t.Fatalf("Recheck = %+v, %v; want allowed, counting nothing but itself out", d, err)
	}
	e.Record(payout.HistoryItem{ID: "po_b", Chain: "sandbox", Asset: "ETH", Sender: wallet, To: stranger, Amount: big.NewInt(5), CreatedAt: now.Add(time.Second)})
	if d, _ = e.Recheck(context.Background(), p, 1, in); d.Action != policy.Deny || d.Facts.Velocity["destination/1h"].Sum != "5" {
		t.Fatalf("Recheck after another payout = %+v, want denied on 5 + 6", d)
	}
	if _, err := e.Recheck(context.Background(), p, 1, policy.Input{Amount: big.NewInt(1)}); err == nil {
		t.Fatal("Recheck without a payout id succeeded")
	}
}
