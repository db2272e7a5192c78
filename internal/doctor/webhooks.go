package doctor

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

// checkWebhooks reports webhook endpoints that get nothing: disabled ones
// (FAIL: their receivers miss every event until enabled again) and those
// failing since their last success (WARN: deliveries are being retried).
func checkWebhooks(ctx context.Context, db *store.DB, now time.Time) Result {
	r := Result{Check: "webhook endpoints", Status: OK}
	var all []*payout.WebhookEndpoint
	page := payout.Page{Limit: 100}
	for {
		eps, more, err := db.ListWebhookEndpoints(ctx, page)
		if err != nil {
			return fail(r, err.Error(), "the webhook endpoints cannot be read: check the database")
		}
		all = append(all, eps...)
		if !more || len(eps) == 0 {
			break
		}
		page.StartingAfter = eps[len(eps)-1].ID
	}
	var disabled, failing []*payout.WebhookEndpoint
	for _, e := range all {
		switch {
		case !e.Enabled && e.DisabledReason != payout.DisabledByUser:
			disabled = append(disabled, e)
		case e.Enabled && !e.FailingSince.IsZero():
			failing = append(failing, e)
		}
	}
	switch {
	case len(disabled) > 0:
		e := disabled[0]
		r.Status = Fail
		r.Detail = fmt.Sprintf("%d of %d disabled by Sluice, e.g. %s (%s): %s", len(disabled), len(all), e.ID, e.URL, e.DisabledReason)
		r.Advice = fmt.Sprintf("its receiver misses every event: fix it, then enable it (sluice webhook update %s --enable) and redeliver what it missed", e.ID)
	case len(failing) > 0:
		e := failing[0]
		r.Status = Warn
		r.Detail = fmt.Sprintf("%d of %d failing, e.g. %s (%s) since %s ago", len(failing), len(all), e.ID, e.URL, now.Sub(e.FailingSince).Round(time.Second))
		r.Advice = fmt.Sprintf("deliveries are retried; see sluice webhook deliveries %s for the receiver's answers", e.ID)
	case len(all) == 0:
		r.Detail = "none configured"
	default:
		r.Detail = fmt.Sprintf("%d, all delivering", len(all))
	}
	return r
}
