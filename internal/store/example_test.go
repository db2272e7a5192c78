package store_test

import (
	"context"
	"fmt"
	"log"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

// Open a SQLite store, accept a payout and read it back with its event.
func Example() {
	dir, err := os.MkdirTemp("", "sluice-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "data", "sluice.db"), store.Options{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	now := time.Now()
	p := &payout.Payout{
		ID: payout.DefaultIDs.New("po_", now), Chain: "sandbox", ChainID: 1337, Asset: "ETH",
		To: common.HexToAddress("0x00000000000000000000000000000000000000aa"), Amount: big.NewInt(1_000_000),
		ExternalID: "invoice-1", Sender: common.HexToAddress("0x00000000000000000000000000000000000000bb"),
		CreatedAt: now,
	}
	if err := db.CreatePayout(ctx, p, nil); err != nil {
		log.Fatal(err)
	}
	err = db.CreatePayout(ctx, &payout.Payout{ID: payout.DefaultIDs.New("po_", now), Amount: big.NewInt(1),
		ExternalID: "invoice-1", CreatedAt: now}, nil)
	fmt.Println("second invoice-1:", err != nil)

	got, err := db.GetPayout(ctx, p.ID)
	if err != nil {
		log.Fatal(err)
	}
	evs, err := db.ListEvents(ctx, 0, 10)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Status, got.Amount, got.Version, evs[0].Type, evs[0].ObjectSeq)
	// Output:
	// second invoice-1: true
	// queued 1000000 1 payout.created 1
}
