package signer

import (
	"context"

	"github.com/bnb-chain/tss-lib/v3/ecdsa/keygen"
)

// MPCKeygenReusing runs a key generation with the Paillier pre-parameters
// of existing parties, so that a test sees the protocol without minutes
// of safe-prime search. Never reuse pre-parameters outside tests.
func MPCKeygenReusing(ctx context.Context, o MPCKeygenOptions, from []*MPCLocalParty) ([]*MPCLocalParty, error) {
	pre := make([]*keygen.LocalPreParams, len(from))
	for i, p := range from {
		pp := p.data.LocalPreParams
		pre[i] = &pp
	}
	return mpcKeygen(ctx, o, pre)
}
