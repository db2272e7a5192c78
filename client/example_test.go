package client_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/payout"
)

// startExampleServer runs a real API on a temporary SQLite database, as
// `sluice sandbox` would, and returns its URL.
func startExampleServer() (string, func()) {
	dir, err := os.MkdirTemp("", "sluice-example")
	if err != nil {
		log.Fatal(err)
	}
	s, stop, err := startServer(dir, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	return s.url, func() { stop(); _ = os.RemoveAll(dir) }
}

// Pay 1.5 SUSD: look up the asset's decimals, convert the human amount
// exactly, and create the payout with an idempotency key so that a retry
// can never pay twice.
func Example() {
	apiURL, stop := startExampleServer()
	defer stop()
	ctx := context.Background()
	c := client.New(apiURL, "sk_client_test_key")

	chains, err := c.ListChains(ctx)
	if err != nil {
		log.Fatal(err)
	}
	susd, _ := chains[0].Asset("SUSD")
	amount, err := payout.ParseDecimal("1.5", susd.Decimals)
	if err != nil {
		log.Fatal(err)
	}
	p, err := c.CreatePayout(ctx, client.CreatePayoutParams{
		Chain: "sandbox", Asset: "SUSD", To: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		Amount: amount, ExternalID: "invoice-2026-001",
	}, "invoice-2026-001")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Status, p.Asset, p.Amount, p.ExternalID)

	// The same key again answers the same payout.
	again, err := c.CreatePayout(ctx, client.CreatePayoutParams{
		Chain: "sandbox", Asset: "SUSD", To: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		Amount: amount, ExternalID: "invoice-2026-001",
	}, "invoice-2026-001")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(again.ID == p.ID)
	// Output:
	// queued SUSD 1500000 invoice-2026-001
	// true
}
