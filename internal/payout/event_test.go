package payout

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEventTypesCoverEveryStatusChange(t *testing.T) {
	types := EventTypes()
	if !slices.IsSorted(types) {
		t.Fatalf("EventTypes not sorted: %v", types)
	}
	for from, tos := range transitions {
		for _, to := range tos {
			if !KnownEventType(to.EventType()) {
				t.Errorf("moving %s → %s writes %s, which EventTypes does not list", from, to, to.EventType())
			}
		}
	}
	for _, bad := range []string{"payout.queued", "payout", "", "PAYOUT.CREATED", "payout.created "} {
		if KnownEventType(bad) {
			t.Errorf("KnownEventType(%q) = true", bad)
		}
	}
}

func TestEventWireForm(t *testing.T) {
	at := time.Date(2026, 11, 24, 3, 0, 0, 5, time.FixedZone("x", 3600))
	ev := Event{Seq: 99, ID: "evt_1", Type: "payout.completed", ObjectID: "po_1", ObjectSeq: 4,
		Data: json.RawMessage(`{"id":"po_1","object":"payout"}`), CreatedAt: at}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"evt_1","object":"event","type":"payout.completed","created_at":"2026-11-24T02:00:00.000000005Z","object_id":"po_1","sequence":4,"data":{"id":"po_1","object":"payout"}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != ev.ID || back.ObjectSeq != 4 || !back.CreatedAt.Equal(at) || string(back.Data) != string(ev.Data) || back.Seq != 0 {
		t.Fatalf("round trip: %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"object":"payout"}`), &back); err == nil || !strings.Contains(err.Error(), "not an event") {
		t.Fatalf("a payout decoded as an event: %v", err)
	}
}
