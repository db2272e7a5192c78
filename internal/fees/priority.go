package fees

import (
	"fmt"

	"github.com/sluicepay/sluice/internal/payout"
)

// Priority is a payout's urgency (the domain's type): it selects the tip
// percentile, the base-fee headroom and the replacement schedule.
type Priority = payout.Priority

// The priorities. A payout without one is Standard.
const (
	Low      = payout.PriorityLow
	Standard = payout.PriorityStandard
	High     = payout.PriorityHigh
)

// Level is what one priority pays and how patiently it waits.
type Level struct {
	// Percentile is the eth_feeHistory reward percentile (1-99) whose
	// median over the window is the tip. Defaults: low 25, standard 50,
	// high 75.
	Percentile int
	// Headroom is k in maxFee = baseFee × 1.125^k + tip: the number of full
	// blocks the max fee survives. Defaults: low 2, standard 3, high 6.
	Headroom int
	// LegacyPremium is the percent added to eth_gasPrice on chains without
	// EIP-1559. Defaults: low 0, standard 10, high 25.
	LegacyPremium int
	// Replace is when a transaction of this priority that is not mined gets
	// replaced. Defaults: low after 6 blocks, standard 3, high 2, doubling
	// per attempt up to 48 blocks.
	Replace Schedule
}

// DefaultLevel returns a priority's default level, and false for an
// unknown priority.
func DefaultLevel(p Priority) (Level, bool) {
	l, ok := defaultLevels()[p]
	return l, ok
}

// defaultLevels are the defaults of Config.Levels.
func defaultLevels() map[Priority]Level {
	return map[Priority]Level{
		Low:      {Percentile: 25, Headroom: 2, LegacyPremium: 0, Replace: Schedule{After: 6, MaxWait: 48}},
		Standard: {Percentile: 50, Headroom: 3, LegacyPremium: 10, Replace: Schedule{After: 3, MaxWait: 48}},
		High:     {Percentile: 75, Headroom: 6, LegacyPremium: 25, Replace: Schedule{After: 2, MaxWait: 48}},
	}
}

func (l Level) validate(p Priority) error {
	switch {
	case l.Percentile < 1 || l.Percentile > 99:
		return fmt.Errorf("fees: Config.Levels[%s].Percentile must be 1-99, got %d", p, l.Percentile)
	case l.Headroom < 0 || l.Headroom > 64:
		return fmt.Errorf("fees: Config.Levels[%s].Headroom must be 0-64, got %d", p, l.Headroom)
	case l.LegacyPremium < 0 || l.LegacyPremium > 1000:
		return fmt.Errorf("fees: Config.Levels[%s].LegacyPremium must be 0-1000, got %d", p, l.LegacyPremium)
	}
	if err := l.Replace.validate(); err != nil {
		return fmt.Errorf("fees: Config.Levels[%s].Replace: %w", p, err)
	}
	return nil
}
