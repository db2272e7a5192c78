package fees

import (
	"math"
	"testing"
)

func TestScheduleWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s       Schedule
		attempt int
		want    uint64
	}{
		{Schedule{After: 3, MaxWait: 48}, 1, 3},
		{Schedule{After: 3, MaxWait: 48}, 2, 6},
		{Schedule{After: 3, MaxWait: 48}, 3, 12},
		{Schedule{After: 3, MaxWait: 48}, 5, 48},
		{Schedule{After: 3, MaxWait: 48}, 6, 48},
		{Schedule{After: 3, MaxWait: 20}, 4, 20},
		{Schedule{After: 2}, 10, 32},                               // MaxWait 0 is After × 16
		{Schedule{After: 1 << 61}, 9, math.MaxUint64},              // After × 16 would overflow: no cap, and no overflow
		{Schedule{After: 1 << 62, MaxWait: 1 << 63}, 200, 1 << 63}, // no overflow
		{Schedule{After: 6, MaxWait: 48}, 0, 6},                    // attempt 0 counts as the first
	}
	for _, tt := range tests {
		if got := tt.s.Wait(tt.attempt); got != tt.want {
			t.Errorf("%+v.Wait(%d) = %d, want %d", tt.s, tt.attempt, got, tt.want)
		}
	}
}

func TestScheduleDue(t *testing.T) {
	t.Parallel()
	levels := defaultLevels()
	tests := []struct {
		p       Priority
		blocks  uint64
		attempt int
		want    bool
	}{
		{Low, 5, 1, false},
		{Low, 6, 1, true},
		{Low, 11, 2, false},
		{Low, 12, 2, true},
		{Standard, 2, 1, false},
		{Standard, 3, 1, true},
		{Standard, 6, 2, true},
		{Standard, 11, 3, false},
		{Standard, 48, 9, true},
		{High, 1, 1, false},
		{High, 2, 1, true},
		{High, 4, 2, true},
	}
	for _, tt := range tests {
		if got := levels[tt.p].Replace.Due(tt.blocks, tt.attempt); got != tt.want {
			t.Errorf("%s Due(%d blocks, attempt %d) = %v, want %v", tt.p, tt.blocks, tt.attempt, got, tt.want)
		}
	}
}

func TestOracleReplaceDue(t *testing.T) {
	t.Parallel()
	o, err := New(nil, Config{Chain: "c", Levels: map[Priority]Level{High: {Percentile: 90, Headroom: 6, Replace: Schedule{After: 1, MaxWait: 4}}}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		p       Priority
		blocks  uint64
		attempt int
		want    bool
	}{
		{High, 1, 1, true}, // configured: after 1 block
		{High, 3, 3, false},
		{High, 4, 9, true}, // capped at MaxWait 4
		{Standard, 2, 1, false},
		{Standard, 3, 1, true}, // defaults kept for the others
		{"", 3, 1, true},       // unknown: standard's schedule
	}
	for _, tt := range tests {
		if got := o.ReplaceDue(tt.p, tt.blocks, tt.attempt); got != tt.want {
			t.Errorf("ReplaceDue(%q, %d, %d) = %v, want %v", tt.p, tt.blocks, tt.attempt, got, tt.want)
		}
	}
}
