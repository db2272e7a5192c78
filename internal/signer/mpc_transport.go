package signer

import (
	"context"
	"fmt"
)

// MPCMessage is one protocol message of a session, addressed by share
// index. Payload is tss-lib's wire encoding.
type MPCMessage struct {
	From      int
	To        []int // empty: every other party of the session
	Broadcast bool
	Payload   []byte
}

// MPCTransport carries one party's messages in one session. A networked
// transport must authenticate the peers and bind every message to the
// session id; the in-memory one needs neither.
type MPCTransport interface {
	Send(ctx context.Context, m MPCMessage) error
	Inbox() <-chan MPCMessage
}

// MPCRouter routes the messages of one session between parties in this
// process.
type MPCRouter struct {
	inboxes map[int]chan MPCMessage
}

// NewMPCRouter makes a router for the parties with these share indexes.
// Inboxes are buffered for a whole session (GG20 signing sends nine
// rounds of a few messages), so a sender never waits on a slow receiver.
func NewMPCRouter(indexes []int) *MPCRouter {
	r := &MPCRouter{inboxes: map[int]chan MPCMessage{}}
	for _, i := range indexes {
		r.inboxes[i] = make(chan MPCMessage, 64*len(indexes))
	}
	return r
}

// Transport is party index's end of the router.
func (r *MPCRouter) Transport(index int) MPCTransport {
	return routerEnd{r: r, self: index}
}

type routerEnd struct {
	r    *MPCRouter
	self int
}

func (e routerEnd) Inbox() <-chan MPCMessage { return e.r.inboxes[e.self] }

func (e routerEnd) Send(ctx context.Context, m MPCMessage) error {
	to := m.To
	if len(to) == 0 {
		for i := range e.r.inboxes {
			if i != e.self {
				to = append(to, i)
			}
		}
	}
	for _, i := range to {
		box, ok := e.r.inboxes[i]
		if !ok || i == e.self {
			return fmt.Errorf("mpc: party %d sent to party %d, not a peer in this session", e.self, i)
		}
		select {
		case box <- m:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
