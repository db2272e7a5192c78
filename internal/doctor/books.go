package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

// recentDrift is how long a wallet.drift event keeps a wallet's books
// check failing: long enough to be seen, not forever.
const recentDrift = 24 * time.Hour

// checkBooks reports, for each hot wallet, how far the engine has
// reconciled its books with the chain and whether it found drift lately
// (FAIL: a wallet.drift event in the last 24 hours).
func checkBooks(ctx context.Context, db *store.DB, cfg *config.Config, now time.Time) []Result {
	var out []Result
	for _, ch := range cfg.Chains {
		for _, w := range ch.HotWallets {
			out = append(out, checkWalletBooks(ctx, db, cfg, ch, common.HexToAddress(w.Address), now))
		}
	}
	return out
}

func checkWalletBooks(ctx context.Context, db *store.DB, cfg *config.Config, ch config.Chain, wallet common.Address, now time.Time) Result {
	r := Result{Check: fmt.Sprintf("books %s %s", ch.Name, wallet.Hex())}
	block, open, err := db.BooksClosedAt(ctx, ch.ChainID, wallet)
	if err != nil {
		return fail(r, err.Error(), "the reconciliation marks cannot be read: check the database")
	}
	evs, _, err := db.ListEventPage(ctx, payout.EventFilter{ObjectID: payout.WalletObjectID(ch.ChainID, wallet), Types: []string{payout.EventWalletDrift}, Limit: 1})
	if err != nil {
		return fail(r, err.Error(), "the wallet's events cannot be read: check the database")
	}
	if len(evs) == 1 && now.Sub(evs[0].CreatedAt) < recentDrift {
		var d struct {
			FromBlock uint64 `json:"from_block"`
			ToBlock   uint64 `json:"to_block"`
			Detail    string `json:"detail"`
		}
		_ = json.Unmarshal(evs[0].Data, &d)
		r.Status = Fail
		r.Detail = fmt.Sprintf("drift found %s ago in blocks %d-%d: %s", now.Sub(evs[0].CreatedAt).Round(time.Second), d.FromBlock, d.ToBlock, d.Detail)
		r.Advice = fmt.Sprintf("a nonce Sluice did not sign means someone else holds the key: pause the wallet (sluice pause --wallet %s) and secure it; "+
			"sluice reconcile --config FILE --wallet %s --from-block %d --to-block %d shows the books", wallet.Hex(), wallet.Hex(), d.FromBlock-1, d.ToBlock)
		return r
	}
	switch {
	case open:
		r.Status, r.Detail = OK, fmt.Sprintf("reconciled with the chain up to block %d; no drift in the last 24 hours", block)
	case cfg.Engine.ReconcileEvery < 0:
		r.Status, r.Detail = Warn, "the engine does not reconcile (engine.reconcile_every is negative)"
		r.Advice = "run sluice reconcile --config FILE regularly, or set engine.reconcile_every"
	default:
		r.Status, r.Detail = OK, "not reconciled yet: the engine opens the books once the wallet's sender runs (sluice reconcile --config FILE reconciles any range by hand)"
	}
	return r
}
