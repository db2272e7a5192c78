package doctor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sluicepay/sluice/internal/store"
)

// checkPauses reports the emergency pauses in force: a paused payout waits
// on purpose, and the first thing to know when payouts do not move is
// that someone stopped them, who, when and why.
func checkPauses(ctx context.Context, db *store.DB, now time.Time) Result {
	r := Result{Check: "emergency pauses", Status: OK, Detail: "none in force"}
	ps, err := db.ActivePauses(ctx)
	if err != nil {
		return fail(r, err.Error(), "the pauses cannot be read: check the database")
	}
	if len(ps) == 0 {
		return r
	}
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s, by %s %s ago", p.Describe(), p.CreatedBy, now.Sub(p.CreatedAt).Round(time.Second)))
	}
	r.Status = Warn
	r.Detail = fmt.Sprintf("%d in force: %s", len(ps), strings.Join(parts, "; "))
	r.Advice = fmt.Sprintf("payouts in their scope wait with reason paused; resume when it is safe: sluice resume %s", ps[0].ID)
	return r
}
