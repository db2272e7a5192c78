package httpapi

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/sluicepay/sluice/internal/payout"
)

// FuzzEventFilter feeds arbitrary queries to the event list's filter
// parser: it must never panic; what it accepts names only known types and
// well-formed cursors; what it refuses carries one of the filter's codes.
func FuzzEventFilter(f *testing.F) {
	f.Add("type=payout.completed&limit=5")
	f.Add("type=payout.created,payout.failed&type=wallet.low_balance&starting_after=evt_1")
	f.Add("type=nope&ending_before=po_1")
	f.Add("limit=0&starting_after=evt_a&ending_before=evt_b")
	f.Add("object_id=" + strings.Repeat("x", 200))
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		fl, err := eventFilter(q)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				t.Fatalf("refused without a code: %v", err)
			}
			switch ae.code {
			case payout.CodeUnknownEventType, payout.CodeInvalidLimit, payout.CodeInvalidCursor, payout.CodeInvalidRequest:
			default:
				t.Fatalf("refused with code %s: %v", ae.code, err)
			}
			return
		}
		for _, typ := range fl.Types {
			if !payout.KnownEventType(typ) {
				t.Fatalf("accepted unknown type %q", typ)
			}
		}
		if len(fl.Types) > maxTypeFilter || fl.Limit < 1 || fl.Limit > maxLimit || len(fl.ObjectID) > 128 {
			t.Fatalf("accepted %+v", fl)
		}
		if fl.StartingAfter != "" && fl.EndingBefore != "" {
			t.Fatalf("accepted both cursors: %+v", fl)
		}
		for _, c := range []string{fl.StartingAfter, fl.EndingBefore} {
			if c != "" && !plausibleEventID(c) {
				t.Fatalf("accepted cursor %q", c)
			}
		}
	})
}
