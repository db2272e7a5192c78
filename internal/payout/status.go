package payout

// Status is where a payout is in its life. The happy path is
// queued → submitted → confirming → completed.
type Status string

// The statuses a payout can have.
const (
	// StatusQueued: accepted and stored, waiting for its sender to sign it.
	StatusQueued Status = "queued"
	// StatusSubmitted: a signed transaction is stored and being broadcast.
	StatusSubmitted Status = "submitted"
	// StatusConfirming: mined; waiting for the chain's confirmations.
	StatusConfirming Status = "confirming"
	// StatusCompleted: mined, successful and confirmed. Terminal.
	StatusCompleted Status = "completed"
	// StatusFailed: will never be paid; FailureCode says why. Terminal.
	StatusFailed Status = "failed"
	// StatusCancelled: cancelled before anything was signed. Terminal.
	StatusCancelled Status = "cancelled"
)

// Statuses lists every status, in life order.
var Statuses = []Status{StatusQueued, StatusSubmitted, StatusConfirming, StatusCompleted, StatusFailed, StatusCancelled}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// Terminal reports whether a payout in s will never change again.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// transitions lists the moves the state machine allows.
var transitions = map[Status][]Status{
	StatusQueued:     {StatusSubmitted, StatusFailed, StatusCancelled},
	StatusSubmitted:  {StatusConfirming},
	StatusConfirming: {StatusCompleted, StatusFailed, StatusSubmitted},
}

// CanMove reports whether a payout may go from one status to another.
func CanMove(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// EventType names the event written when a payout enters a status.
func (s Status) EventType() string { return "payout." + string(s) }

// EventCreated is the type of the event written when a payout is accepted.
const EventCreated = "payout.created"

// EventReorged is the type of the event written when a mined payout's block
// left the canonical chain and the payout went back to submitted.
const EventReorged = "payout.reorged"
