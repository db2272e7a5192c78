package doctor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

// checkHandovers reports the wallets an operator has taken out of the
// usual flow: an active offline plan (the wallet signs nothing new until
// its signed file is submitted or the plan voided) and a rotation not yet
// completed (the wallet drains, then sweeps to its successor).
func checkHandovers(ctx context.Context, db *store.DB, now time.Time) Result {
	r := Result{Check: "offline plans and rotations", Status: OK, Detail: "no active offline plan, no rotation under way"}
	plans, err := db.ActiveOfflinePlans(ctx)
	if err != nil {
		return fail(r, err.Error(), "the offline plans cannot be read: check the database and its migrations")
	}
	rots, err := db.Rotations(ctx)
	if err != nil {
		return fail(r, err.Error(), "the wallet rotations cannot be read: check the database and its migrations")
	}
	var parts, advice []string
	for _, pl := range plans {
		parts = append(parts, fmt.Sprintf("offline plan %s of %s on %s is %s with %d transaction(s), for %s",
			pl.ID, pl.Wallet.Hex(), pl.Chain, pl.Status, len(pl.Items), now.Sub(pl.CreatedAt).Round(time.Second)))
		advice = append(advice, fmt.Sprintf("%s signs nothing new until plan %s is submitted (sluice tx submit-signed FILE) or voided (sluice tx void-unsigned %s)",
			pl.Wallet.Hex(), pl.ID, pl.ID))
	}
	var retired []string
	for _, rot := range rots {
		if rot.Status == payout.RotationCompleted {
			retired = append(retired, rot.From.Hex())
			continue
		}
		parts = append(parts, fmt.Sprintf("rotation %s of %s to %s on %s is %s, for %s", rot.ID, rot.From.Hex(), rot.To.Hex(), rot.Chain,
			rot.Status, now.Sub(rot.CreatedAt).Round(time.Second)))
		advice = append(advice, fmt.Sprintf("follow it: sluice wallet rotation %s", rot.ID))
	}
	if len(parts) == 0 {
		if len(retired) > 0 {
			r.Detail = fmt.Sprintf("no active offline plan, no rotation under way; retired (rotated away): %s", strings.Join(retired, ", "))
		}
		return r
	}
	r.Status = Warn
	r.Detail = strings.Join(parts, "; ")
	r.Advice = strings.Join(advice, "; ")
	return r
}
