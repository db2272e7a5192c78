package fees

import (
	"errors"
	"math/big"
	"strings"
	"testing"
)

func TestCapsCheck(t *testing.T) {
	t.Parallel()
	caps := Caps{MaxFeePerGas: wei("100000000000"), MaxFeePerPayout: wei("2000000000000000")} // 100 gwei; 0.002 ETH
	tests := []struct {
		name     string
		maxFee   string
		gas      uint64
		override string
		want     Reason // "" is within the caps
		wantNeed string
	}{
		{name: "within", maxFee: "50000000000", gas: 21_000},
		{name: "at both caps", maxFee: "100000000000", gas: 20_000},
		{name: "per gas", maxFee: "100000000001", gas: 21_000, want: ReasonMaxFeePerGas, wantNeed: "100000000001"},
		{name: "per payout", maxFee: "50000000000", gas: 60_000, want: ReasonPayoutFee, wantNeed: "3000000000000000"},
		{name: "override lifts both", maxFee: "200000000000", gas: 60_000, override: "12000000000000000"},
		{name: "override exceeded", maxFee: "200000000000", gas: 60_000, override: "11999999999999999", want: ReasonPayoutFee, wantNeed: "12000000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var override *big.Int
			if tt.override != "" {
				override = wei(tt.override)
			}
			err := caps.Check(quoteOf(fees(tt.maxFee, "1")), tt.gas, override)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check: %v, want nil", err)
				}
				return
			}
			var over *OverCapError
			if !errors.As(err, &over) || !errors.Is(err, ErrOverCap) {
				t.Fatalf("Check err = %v, want an *OverCapError", err)
			}
			if over.Reason != tt.want || over.Need.String() != tt.wantNeed {
				t.Errorf("Check = %s needing %s, want %s needing %s", over.Reason, over.Need, tt.want, tt.wantNeed)
			}
			if !strings.Contains(err.Error(), string(tt.want)) {
				t.Errorf("error %q does not name its reason", err)
			}
		})
	}
}

func TestCapsLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		caps     Caps
		gas      uint64
		override string
		want     string // "<nil>" is no limit
	}{
		{"none", Caps{}, 21_000, "", "<nil>"},
		{"per gas", Caps{MaxFeePerGas: wei("100")}, 21_000, "", "100"},
		{"per payout is lower", Caps{MaxFeePerGas: wei("100"), MaxFeePerPayout: wei("1050000")}, 21_000, "", "50"},
		{"per gas is lower", Caps{MaxFeePerGas: wei("40"), MaxFeePerPayout: wei("1050000")}, 21_000, "", "40"},
		{"per payout floors", Caps{MaxFeePerPayout: wei("1049999")}, 21_000, "", "49"},
		{"override", Caps{MaxFeePerGas: wei("40")}, 21_000, "2100000", "100"},
	}
	for _, tt := range tests {
		var override *big.Int
		if tt.override != "" {
			override = wei(tt.override)
		}
		if got := tt.caps.Limit(tt.gas, override); got.String() != tt.want {
			t.Errorf("%s: Limit = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string // the field the error names
	}{
		{"no chain", Config{}, "Config.Chain"},
		{"percentile", Config{Chain: "c", Levels: map[Priority]Level{High: {Percentile: 100, Headroom: 6, Replace: Schedule{After: 2}}}}, "Levels[high].Percentile"},
		{"headroom", Config{Chain: "c", Levels: map[Priority]Level{Low: {Percentile: 10, Headroom: -1, Replace: Schedule{After: 2}}}}, "Levels[low].Headroom"},
		{"schedule", Config{Chain: "c", Levels: map[Priority]Level{Low: {Percentile: 10, Headroom: 1}}}, "Levels[low].Replace"},
		{"priority", Config{Chain: "c", Levels: map[Priority]Level{"urgent": {Percentile: 10, Headroom: 1, Replace: Schedule{After: 1}}}}, `"urgent"`},
		{"window", Config{Chain: "c", Window: 2000}, "Config.Window"},
		{"cap", Config{Chain: "c", Caps: Caps{MaxFeePerGas: big.NewInt(0)}}, "Caps.MaxFeePerGas"},
		{"min tip", Config{Chain: "c", MinTip: big.NewInt(-1)}, "Config.MinTip"},
	}
	for _, tt := range tests {
		_, err := New(nil, tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New err = %v, want it to name %s", tt.name, err, tt.want)
		}
	}
	if _, err := New(nil, Config{Chain: "c", Levels: map[Priority]Level{High: {Percentile: 95, Headroom: 8, Replace: Schedule{After: 1}}}}); err != nil {
		t.Errorf("New with one level overridden: %v", err)
	}
}
