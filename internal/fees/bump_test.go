package fees

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/sluicepay/sluice/internal/evm"
)

func wei(v string) *big.Int {
	n, ok := new(big.Int).SetString(v, 10)
	if !ok {
		panic("bad wei " + v)
	}
	return n
}

// fees builds evm.Fees from decimal strings: max fee, tip.
func fees(maxFee, tip string) evm.Fees {
	return evm.Fees{MaxFeePerGas: wei(maxFee), MaxPriorityFeePerGas: wei(tip)}
}

func feesString(f evm.Fees) string {
	return fmt.Sprintf("max=%v tip=%v", f.MaxFeePerGas, f.MaxPriorityFeePerGas)
}

func quoteOf(f evm.Fees) Quote { return Quote{Dynamic: true, Fees: f} }

func TestMinReplacement(t *testing.T) {
	t.Parallel()
	tests := []struct{ old, want string }{
		{"0", "1"},   // geth needs a strict increase even where 10% rounds to 0
		{"1", "2"},   // 1.1 rounded up
		{"9", "10"},  // 9.9 rounded up
		{"10", "11"}, // exact
		{"15", "17"}, // 16.5 rounded up (geth's own threshold floors to 16)
		{"1000000001", "1100000002"},
		{"123456789012345678901234567890", "135802467913580246791358024679"},
	}
	for _, tt := range tests {
		if got := MinReplacement(wei(tt.old)); got.String() != tt.want {
			t.Errorf("MinReplacement(%s) = %s, want %s", tt.old, got, tt.want)
		}
	}
}

// gethAccepts is geth's legacypool rule (core/txpool/legacypool/list.go
// Add), restated: strictly higher, and at least old × 110 / 100 floored.
func gethAccepts(old, repl *big.Int) bool {
	threshold := new(big.Int).Mul(old, big.NewInt(110))
	threshold.Quo(threshold, big.NewInt(100))
	return repl.Cmp(old) > 0 && repl.Cmp(threshold) >= 0
}

func TestMinReplacementSatisfiesGethRule(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for range 10_000 {
		old := new(big.Int).SetUint64(r.Uint64N(1 << 40))
		if r.IntN(4) == 0 {
			old.SetUint64(r.Uint64N(100)) // small values are where rounding bites
		}
		got := MinReplacement(old)
		if !gethAccepts(old, got) {
			t.Fatalf("geth would reject %s replacing %s", got, old)
		}
		// Minimal up to rounding: one wei less fails geth or our ceiling.
		less := new(big.Int).Sub(got, big.NewInt(1))
		exact := new(big.Int).Mod(new(big.Int).Mul(old, big.NewInt(110)), big.NewInt(100)).Sign() == 0
		if exact && gethAccepts(old, less) && less.Cmp(old) > 0 {
			t.Fatalf("MinReplacement(%s) = %s, but geth accepts %s", old, got, less)
		}
	}
}

func TestBump(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		old, current evm.Fees
		limit        string // "" is no limit
		want         evm.Fees
		wantNeed     evm.Fees // when the cap is reached
	}{
		{name: "1 wei", old: fees("1", "1"), current: fees("1", "1"), want: fees("2", "2")},
		{name: "zero tip", old: fees("10", "0"), current: fees("1", "0"), want: fees("11", "1")},
		{name: "odd values round up", old: fees("15", "5"), current: fees("1", "1"), want: fees("17", "6")},
		{name: "exact ten percent", old: fees("100000000000", "2000000000"), current: fees("1", "1"), want: fees("110000000000", "2200000000")},
		{name: "old below current quote", old: fees("100", "10"), current: fees("200", "20"), want: fees("200", "20")},
		{name: "quote tip above, fee below", old: fees("100", "10"), current: fees("105", "30"), want: fees("110", "30")},
		{name: "tip equal to fee", old: fees("10", "10"), current: fees("1", "1"), want: fees("11", "11")},
		{name: "quote tip above bumped fee", old: fees("100", "10"), current: fees("100", "150"), want: fees("150", "150")},
		{name: "limit clamps fee", old: fees("100", "10"), current: fees("200", "20"), limit: "150", want: fees("150", "20")},
		{name: "limit clamps tip", old: fees("100", "10"), current: fees("200", "180"), limit: "150", want: fees("150", "150")},
		{name: "limit exactly the minimum", old: fees("100", "10"), current: fees("1", "1"), limit: "110", want: fees("110", "11")},
		{name: "limit below the minimum", old: fees("100", "10"), current: fees("1", "1"), limit: "109", wantNeed: fees("110", "11")},
		{name: "limit below the old fee", old: fees("100", "10"), current: fees("300", "10"), limit: "50", wantNeed: fees("110", "11")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var limit *big.Int
			if tt.limit != "" {
				limit = wei(tt.limit)
			}
			got, err := Bump(tt.old, quoteOf(tt.current), limit)
			if tt.wantNeed.MaxFeePerGas != nil {
				var capErr *CapReachedError
				if !errors.As(err, &capErr) || !errors.Is(err, ErrCapReached) {
					t.Fatalf("Bump err = %v, want a *CapReachedError", err)
				}
				if g, w := feesString(capErr.Need), feesString(tt.wantNeed); g != w {
					t.Errorf("Need = %s, want %s", g, w)
				}
				if capErr.Cap.Cmp(limit) != 0 {
					t.Errorf("Cap = %s, want %s", capErr.Cap, limit)
				}
				return
			}
			if err != nil {
				t.Fatalf("Bump: %v", err)
			}
			if g, w := feesString(got), feesString(tt.want); g != w {
				t.Errorf("Bump = %s, want %s", g, w)
			}
			if !gethAccepts(tt.old.MaxFeePerGas, got.MaxFeePerGas) || !gethAccepts(tt.old.MaxPriorityFeePerGas, got.MaxPriorityFeePerGas) {
				t.Errorf("geth would reject %s replacing %s", feesString(got), feesString(tt.old))
			}
		})
	}
}

func TestBumpDoesNotAlias(t *testing.T) {
	t.Parallel()
	old, cur := fees("100", "10"), fees("500", "50")
	got, err := Bump(old, quoteOf(cur), nil)
	if err != nil {
		t.Fatal(err)
	}
	got.MaxFeePerGas.SetInt64(1)
	got.MaxPriorityFeePerGas.SetInt64(1)
	if g, w := feesString(cur), "max=500 tip=50"; g != w {
		t.Errorf("quote after changing the bump = %s, want %s", g, w)
	}
}

func TestBumpIncompleteFees(t *testing.T) {
	t.Parallel()
	if _, err := Bump(evm.Fees{MaxFeePerGas: big.NewInt(1)}, Quote{}, nil); err == nil {
		t.Error("Bump with a nil tip: got no error")
	}
}

func TestHeadroom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base string
		k    int
		want string
	}{
		{"0", 6, "0"},
		{"1", 0, "1"},
		{"1", 1, "2"},                     // 1.125 rounded up
		{"8", 1, "9"},                     // exact
		{"100", 2, "128"},                 // 112.5 -> 113, 113 × 9/8 = 127.125 -> 128
		{"1000000000", 3, "1423828125"},   // exact: 1e9 × 729/512
		{"1000000000", 6, "2027286531"},   // exact 2027286529.5; two steps rounded up
		{"30000000000", 2, "37968750000"}, // 30 gwei, two full blocks
	}
	for _, tt := range tests {
		got := Headroom(wei(tt.base), tt.k)
		if got.String() != tt.want {
			t.Errorf("Headroom(%s, %d) = %s, want %s", tt.base, tt.k, got, tt.want)
		}
		// Never under the exact value, and over by at most one wei per step.
		exact := new(big.Rat).Mul(new(big.Rat).SetInt(wei(tt.base)), new(big.Rat).SetFrac(
			new(big.Int).Exp(big.NewInt(9), big.NewInt(int64(tt.k)), nil),
			new(big.Int).Exp(big.NewInt(8), big.NewInt(int64(tt.k)), nil)))
		g := new(big.Rat).SetInt(got)
		if g.Cmp(exact) < 0 || new(big.Rat).Sub(g, exact).Cmp(big.NewRat(int64(tt.k), 1)) > 0 {
			t.Errorf("Headroom(%s, %d) = %s, exact %s", tt.base, tt.k, got, exact.FloatString(3))
		}
	}
}
