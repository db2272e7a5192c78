package storetest

import (
	"errors"
	"testing"

	"github.com/sluicepay/sluice/internal/payout"
)

// testEventPages walks the outbox newest first and back with cursors,
// filtered by type and by object, as GET /v1/events does.
func testEventPages(t *testing.T, s payout.Store) {
	ps := mustCreate(t, s, 5)
	if _, err := s.CancelPayout(ctx(t), ps[1].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvent(ctx(t), "wallet_1", payout.EventWalletLowBalance, map[string]string{"asset": "ETH"}); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListEvents(ctx(t), 0, 100) // oldest first: 5 created, 1 cancelled, 1 wallet
	if err != nil || len(all) != 7 {
		t.Fatalf("ListEvents = %d, %v; want 7", len(all), err)
	}

	// Newest first, three at a time, down to the oldest.
	var down []payout.Event
	f := payout.EventFilter{Limit: 3}
	for {
		page, more, err := s.ListEventPage(ctx(t), f)
		if err != nil {
			t.Fatal(err)
		}
		down = append(down, page...)
		if !more {
			break
		}
		f.StartingAfter = page[len(page)-1].ID
	}
	if len(down) != len(all) {
		t.Fatalf("walked %d events newest first, want %d", len(down), len(all))
	}
	for i := range down {
		if want := all[len(all)-1-i]; down[i].ID != want.ID || down[i].Seq != want.Seq {
			t.Fatalf("event %d newest first is %s (seq %d), want %s (seq %d)", i, down[i].ID, down[i].Seq, want.ID, want.Seq)
		}
	}

	// Back up from the oldest with ending_before: pages come newest first,
	// each the events just after the cursor.
	page, more, err := s.ListEventPage(ctx(t), payout.EventFilter{EndingBefore: all[0].ID, Limit: 2})
	if err != nil || !more || len(page) != 2 || page[0].ID != all[2].ID || page[1].ID != all[1].ID {
		t.Fatalf("ending_before the oldest = %v, more %v, %v; want [%s %s] and more", eventIDs(page), more, err, all[2].ID, all[1].ID)
	}

	// Filters.
	page, _, err = s.ListEventPage(ctx(t), payout.EventFilter{Types: []string{"payout.cancelled", payout.EventWalletLowBalance}, Limit: 10})
	if err != nil || len(page) != 2 || page[0].Type != payout.EventWalletLowBalance || page[1].Type != "payout.cancelled" {
		t.Fatalf("by type = %v, %v; want the wallet event then the cancel", eventIDs(page), err)
	}
	page, _, err = s.ListEventPage(ctx(t), payout.EventFilter{ObjectID: ps[1].ID, Limit: 10})
	if err != nil || len(page) != 2 || page[0].ObjectSeq != 2 || page[1].ObjectSeq != 1 {
		t.Fatalf("by object = %v, %v; want its 2 events, newest first", eventIDs(page), err)
	}

	// One event, and cursors or ids that name none.
	got, err := s.GetEvent(ctx(t), all[3].ID)
	if err != nil || got.Seq != all[3].Seq || got.Type != all[3].Type || string(got.Data) != string(all[3].Data) {
		t.Fatalf("GetEvent = %+v, %v; want %+v", got, err, all[3])
	}
	if _, err := s.GetEvent(ctx(t), "evt_nope"); !errors.Is(err, payout.ErrNotFound) {
		t.Fatalf("GetEvent of an unknown id = %v, want ErrNotFound", err)
	}
	if _, _, err := s.ListEventPage(ctx(t), payout.EventFilter{StartingAfter: "evt_nope"}); !errors.Is(err, payout.ErrNotFound) {
		t.Fatalf("a cursor naming no event = %v, want ErrNotFound", err)
	}
}

func eventIDs(evs []payout.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID + "/" + e.Type
	}
	return out
}
