package fees

import (
	"errors"
	"fmt"
	"math"
)

// Schedule says when a transaction not yet mined is replaced. The wait
// doubles with every attempt (After, 2×After, 4×After, ...) up to MaxWait.
//
// Doubling rather than a fixed step: every replacement already catches up
// with the current quote (which follows the base fee and the tips paid), so
// a transaction still not mined after that is usually waiting on a market
// that is slow, not on a fee that is stale. Doubling keeps the number of
// replacements, each at least +10%, logarithmic in the wait, where a fixed
// step (Chainlink: +20% every 3 blocks) compounds the fee quickly into the
// cap. Waits are in blocks so one schedule fits any block time.
type Schedule struct {
	// After is the blocks to wait for the first attempt to be mined before
	// replacing it. Required (at least 1).
	After uint64
	// MaxWait caps the doubling wait, in blocks. 0 means After × 16.
	MaxWait uint64
}

func (s Schedule) validate() error {
	if s.After == 0 {
		return errors.New("After must be at least 1 block")
	}
	if s.MaxWait != 0 && s.MaxWait < s.After {
		return fmt.Errorf("MaxWait (%d) must not be below After (%d)", s.MaxWait, s.After)
	}
	return nil
}

// Wait returns the blocks to wait for attempt (1 is the first broadcast)
// before replacing it.
func (s Schedule) Wait(attempt int) uint64 {
	limit := s.MaxWait
	if limit == 0 {
		limit = math.MaxUint64
		if s.After <= math.MaxUint64/16 {
			limit = s.After * 16
		}
	}
	w := max(s.After, 1)
	for i := 1; i < attempt && w < limit; i++ {
		if w > limit/2 {
			return limit
		}
		w *= 2
	}
	return min(w, limit)
}

// Due says whether attempt (1 is the first broadcast), broadcast
// blocksSince blocks ago and not mined, should now be replaced.
func (s Schedule) Due(blocksSince uint64, attempt int) bool {
	return blocksSince >= s.Wait(attempt)
}
