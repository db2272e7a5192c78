package events

import (
	"math/rand/v2"
	"time"
)

// DefaultSchedule is how long a failed delivery waits before each retry:
// after the 1st attempt 5 s, then 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
// 20 h and 24 h: ten attempts over 75 to 91 hours (3 days and a bit). Each wait is
// lengthened by 0-20 % jitter so a recovering receiver is not hit by every
// delivery at once.
var DefaultSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// jitter lengthens d by 0-20 %. Never shortening keeps the tenth attempt
// at least 75 h after the first, past the 72 h after which an endpoint
// with no success is disabled: a receiver that fails every delivery is
// disabled by that attempt at the latest.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (1 + 0.2*rand.Float64()))
}
