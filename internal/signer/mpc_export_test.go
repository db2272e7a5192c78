package signer

// MPCPreParamsOf are the pre-parameters inside a party's share (tests:
// a pool without minutes of safe-prime search).
func MPCPreParamsOf(p *MPCLocalParty) *MPCPreParams {
	return &MPCPreParams{p: p.data.LocalPreParams}
}
