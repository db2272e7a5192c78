package main

import (
	"context"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// retiredWallets says which hot wallets are rotated away (a rotation from
// them exists), read from the store at most once a second: new payouts
// are not assigned to them and no payout is handed to them. A payout that
// lands on one in that second is handed on by its sender.
type retiredWallets struct {
	store payout.RotationStore

	mu   sync.Mutex
	at   time.Time
	from map[walletKey]bool
}

func (r *retiredWallets) retired(chain string, w common.Address) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.at) >= time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		rs, err := r.store.Rotations(ctx)
		cancel()
		if err == nil { // on error keep what was known; the senders still hand payouts on
			r.from, r.at = map[walletKey]bool{}, time.Now()
			for _, rot := range rs {
				r.from[walletKey{rot.Chain, rot.From}] = true
			}
		}
	}
	return r.from[walletKey{chain, w}]
}

// forget makes the next question read the store again (a rotation was
// just made).
func (r *retiredWallets) forget() {
	r.mu.Lock()
	r.at = time.Time{}
	r.mu.Unlock()
}
