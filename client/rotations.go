package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// WalletRotation moves a chain's sending from one hot wallet to another:
// From gets no new payouts, hands its queued ones to To, finishes what it
// has in flight, then sweeps its assets to To. Status: draining →
// sweeping → completed.
type WalletRotation struct {
	ID             string    `json:"id"`
	Chain          string    `json:"chain"`
	ChainID        uint64    `json:"chain_id"`
	From           string    `json:"from"`
	To             string    `json:"to"`
	Status         string    `json:"status"`
	SweepPayoutIDs []string  `json:"sweep_payout_ids"`
	Note           string    `json:"note,omitempty"`
	CreatedBy      string    `json:"created_by"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Rotation statuses.
const (
	RotationDraining  = "draining"
	RotationSweeping  = "sweeping"
	RotationCompleted = "completed"
)

// WalletRotationList is a page of rotations.
type WalletRotationList struct {
	Data []WalletRotation `json:"data"`
}

// CreateWalletRotation retires from in favour of to (both hot wallets of
// chain in the engine's config). Needs the admin scope.
func (c *Client) CreateWalletRotation(ctx context.Context, chain, from, to string) (*WalletRotation, error) {
	body, err := json.Marshal(map[string]string{"chain": chain, "from": from, "to": to})
	if err != nil {
		return nil, fmt.Errorf("sluice: encode rotation: %w", err)
	}
	return call[WalletRotation](ctx, c, http.MethodPost, "/v1/wallet_rotations", body)
}

// GetWalletRotation returns a rotation.
func (c *Client) GetWalletRotation(ctx context.Context, id string) (*WalletRotation, error) {
	return call[WalletRotation](ctx, c, http.MethodGet, "/v1/wallet_rotations/"+url.PathEscape(id), nil)
}

// ListWalletRotations returns every rotation, oldest first.
func (c *Client) ListWalletRotations(ctx context.Context) (*WalletRotationList, error) {
	return call[WalletRotationList](ctx, c, http.MethodGet, "/v1/wallet_rotations", nil)
}
