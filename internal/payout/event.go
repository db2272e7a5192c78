package payout

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// EventWebhookEndpointDisabled: a webhook endpoint was disabled, because it
// answered 410 Gone or failed every delivery for the disable window; the
// data is the endpoint (without its secret).
const EventWebhookEndpointDisabled = "webhook_endpoint.disabled"

// EventBreakerTripped is the alert written when an automatic circuit
// breaker paused a scope; the object is the pause, the data names the
// breaker and its figures.
const EventBreakerTripped = "breaker.tripped"

// EventTypes lists every event type Sluice writes, sorted. A webhook
// endpoint's filter may name only these (or "*" for all).
func EventTypes() []string {
	types := []string{
		EventCreated, EventReorged, EventReplaced, EventWaiting, EventCancelRequested, EventFeeCapRaised, EventReassigned,
		EventWalletLowBalance, EventWalletForeignNonce, EventWalletDrift, EventWebhookEndpointDisabled, EventPauseCreated, EventPauseResumed,
		EventBatchCreated, EventBatchCompleted, EventRequeued,
		EventApproved, EventApprovalAdded, EventReleased, EventBreakerTripped,
		EventOfflinePlanOpened, EventOfflinePlanSubmitted, EventOfflinePlanVoided,
		EventRotationStarted, EventRotationSweeping, EventRotationCompleted,
	}
	for _, s := range []Status{StatusSigningOffline, StatusSubmitted, StatusStuck, StatusConfirming, StatusCompleted, StatusFailed, StatusCancelled, StatusRejected} {
		types = append(types, s.EventType())
	}
	slices.Sort(types)
	return slices.Compact(types)
}

// KnownEventType reports whether t is one of EventTypes.
func KnownEventType(t string) bool {
	_, found := slices.BinarySearch(EventTypes(), t)
	return found
}

// EventFilter selects events for ListEventPage. Results are newest first.
type EventFilter struct {
	Types         []string // any of these types; empty for all
	ObjectID      string   // "" for any object
	StartingAfter string   // an event id: return older events
	EndingBefore  string   // an event id: return newer events
	Limit         int      // 1..100
}

// wireEvent is an event as the API, the event stream and webhooks show it.
type wireEvent struct {
	ID        string          `json:"id"`
	Object    string          `json:"object"`
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"created_at"`
	ObjectID  string          `json:"object_id"`
	Sequence  int64           `json:"sequence"`
	Data      json.RawMessage `json:"data"`
}

// MarshalJSON writes the event as every consumer sees it: id, type,
// created_at, the object's id, its per-object sequence number (1, 2, … for
// each change of that object, so a consumer can drop stale or repeated
// deliveries) and, as data, the object as the API showed it then.
func (e Event) MarshalJSON() ([]byte, error) {
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	return json.Marshal(wireEvent{ID: e.ID, Object: "event", Type: e.Type, CreatedAt: e.CreatedAt.UTC(),
		ObjectID: e.ObjectID, Sequence: e.ObjectSeq, Data: data})
}

// UnmarshalJSON reads the wire form back (Seq, the store's position, is not
// part of it).
func (e *Event) UnmarshalJSON(b []byte) error {
	var w wireEvent
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.Object != "event" {
		return fmt.Errorf("payout: object %q is not an event", w.Object)
	}
	*e = Event{ID: w.ID, Type: w.Type, CreatedAt: w.CreatedAt, ObjectID: w.ObjectID, ObjectSeq: w.Sequence, Data: w.Data}
	return nil
}
