package events

import "sync"

// endpointGate keeps one stalling endpoint from holding every sender. While
// an endpoint's latest attempt failed slowly (no answer, or an error answer,
// after half the attempt timeout or more), only one attempt to it runs at a
// time: its other deliveries are left claimed, not attempted, and come back
// when their claim runs out, while the senders serve the other endpoints.
// An attempt that succeeds or fails fast opens the gate again. Endpoints
// that answer promptly, even with errors, are never limited.
type endpointGate struct {
	mu  sync.Mutex
	eps map[string]*gateState
}

type gateState struct {
	stalled bool // the latest attempt failed slowly
	running int  // attempts running now
}

func newEndpointGate() *endpointGate { return &endpointGate{eps: map[string]*gateState{}} }

// admit says whether an attempt to endpoint id may run now; each admitted
// attempt must be followed by done.
func (g *endpointGate) admit(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.eps[id]
	if st == nil {
		st = &gateState{}
		g.eps[id] = st
	}
	if st.stalled && st.running > 0 {
		return false
	}
	st.running++
	return true
}

// done records the end of an admitted attempt and whether it stalled.
func (g *endpointGate) done(id string, stalled bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.eps[id]
	if st == nil {
		return
	}
	st.running--
	st.stalled = stalled
	if !st.stalled && st.running == 0 {
		delete(g.eps, id)
	}
}
