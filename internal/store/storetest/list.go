package storetest

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
)

func testListPayouts(t *testing.T, s payout.Store) {
	ps := mustCreate(t, s, 25)
	newest := slices.Clone(idsOf(ps))
	slices.Reverse(newest) // newest[0] is the newest payout
	tests := []struct {
		name     string
		f        payout.ListFilter
		want     []string
		wantMore bool
	}{
		{"first page", payout.ListFilter{Limit: 10}, newest[0:10], true},
		{"second page", payout.ListFilter{Limit: 10, StartingAfter: newest[9]}, newest[10:20], true},
		{"last page", payout.ListFilter{Limit: 10, StartingAfter: newest[19]}, newest[20:25], false},
		{"exact end", payout.ListFilter{Limit: 5, StartingAfter: newest[19]}, newest[20:25], false},
		{"after the oldest", payout.ListFilter{Limit: 10, StartingAfter: newest[24]}, nil, false},
		{"back from the last page", payout.ListFilter{Limit: 10, EndingBefore: newest[20]}, newest[10:20], true},
		{"back to the first page", payout.ListFilter{Limit: 10, EndingBefore: newest[10]}, newest[0:10], false},
		{"back, short", payout.ListFilter{Limit: 10, EndingBefore: newest[3]}, newest[0:3], false},
		{"before the newest", payout.ListFilter{Limit: 10, EndingBefore: newest[0]}, nil, false},
		{"both cursors", payout.ListFilter{Limit: 3, StartingAfter: newest[2], EndingBefore: newest[10]}, newest[3:6], true},
		{"all", payout.ListFilter{Limit: 100}, newest, false},
		{"default limit", payout.ListFilter{}, newest[0:10], true},
		{"limit clamped", payout.ListFilter{Limit: 1000}, newest, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, more, err := s.ListPayouts(ctx(t), tc.f)
			if err != nil {
				t.Fatalf("ListPayouts: %v", err)
			}
			if diff := cmp.Diff(tc.want, idsOf(got), cmpEmpty); diff != "" {
				t.Errorf("ids mismatch (-want +got):\n%s", diff)
			}
			if more != tc.wantMore {
				t.Errorf("hasMore = %v, want %v", more, tc.wantMore)
			}
		})
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.Transformer("empty", func(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
})

func testListPayoutsFilters(t *testing.T, s payout.Store) {
	ps := mustCreate(t, s, 6)
	ext := mustCreate(t, s, 1, withExternalID("inv-find-me"))[0]
	for _, p := range ps[:3] {
		if _, err := s.CancelPayout(ctx(t), p.ID); err != nil {
			t.Fatal(err)
		}
	}
	cancelled := []string{ps[2].ID, ps[1].ID, ps[0].ID}
	queued := []string{ext.ID, ps[5].ID, ps[4].ID, ps[3].ID}
	tests := []struct {
		name     string
		f        payout.ListFilter
		want     []string
		wantMore bool
	}{
		{"cancelled", payout.ListFilter{Status: payout.StatusCancelled, Limit: 10}, cancelled, false},
		{"queued page", payout.ListFilter{Status: payout.StatusQueued, Limit: 2}, queued[:2], true},
		{"queued next", payout.ListFilter{Status: payout.StatusQueued, Limit: 2, StartingAfter: queued[1]}, queued[2:], false},
		{"queued back", payout.ListFilter{Status: payout.StatusQueued, Limit: 2, EndingBefore: queued[3]}, queued[1:3], true},
		{"external id", payout.ListFilter{ExternalID: "inv-find-me", Limit: 10}, []string{ext.ID}, false},
		{"external id and status", payout.ListFilter{ExternalID: "inv-find-me", Status: payout.StatusCancelled, Limit: 10}, nil, false},
		{"unknown external id", payout.ListFilter{ExternalID: "nope", Limit: 10}, nil, false},
		{"completed", payout.ListFilter{Status: payout.StatusCompleted, Limit: 10}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, more, err := s.ListPayouts(ctx(t), tc.f)
			if err != nil {
				t.Fatalf("ListPayouts: %v", err)
			}
			if diff := cmp.Diff(tc.want, idsOf(got), cmpEmpty); diff != "" {
				t.Errorf("ids mismatch (-want +got):\n%s", diff)
			}
			if more != tc.wantMore {
				t.Errorf("hasMore = %v, want %v", more, tc.wantMore)
			}
			for _, p := range got {
				if tc.f.Status != "" && p.Status != tc.f.Status {
					t.Errorf("payout %s has status %s, filter %s", p.ID, p.Status, tc.f.Status)
				}
			}
		})
	}
}
