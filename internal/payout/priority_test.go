package payout

import (
	"strings"
	"testing"
)

func TestParsePriority(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Priority
		wantErr string
	}{
		{"low", PriorityLow, ""},
		{"standard", PriorityStandard, ""},
		{"high", PriorityHigh, ""},
		{"", PriorityStandard, ""},
		{"urgent", "", `unknown priority "urgent"`},
		{"HIGH", "", `unknown priority "HIGH"`},
	}
	for _, tt := range tests {
		got, err := ParsePriority(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePriority(%q) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePriority(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	var p Priority
	if err := p.UnmarshalText([]byte("high")); err != nil || p != PriorityHigh {
		t.Errorf("UnmarshalText(high) = %q, %v", p, err)
	}
	if err := p.UnmarshalText([]byte("fast")); err == nil {
		t.Error("UnmarshalText(fast): got no error")
	}
}
