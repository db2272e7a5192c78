package signer

import "os"

// MPCPreParamsOf are the pre-parameters inside a party's share (tests:
// a pool without minutes of safe-prime search).
func MPCPreParamsOf(p *MPCLocalParty) *MPCPreParams {
	return &MPCPreParams{p: p.data.LocalPreParams}
}

// BreakLimitsState swaps the server's open state file for a read-only
// handle on it, so that the next write fails (tests: a full or broken
// disk).
func BreakLimitsState(s *Server) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.Open(s.state.path)
	if err != nil {
		return err
	}
	_ = s.state.f.Close()
	s.state.f = f
	return nil
}
