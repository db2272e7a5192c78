package client_test

import (
	"context"
	"fmt"
	"log"
	"math/big"

	"github.com/sluicepay/sluice/client"
)

// Reconcile from the events: read what happened after the last event
// handled, then follow new events live. A restart resumes from the last
// event id kept, so nothing is missed or handled twice.
func ExampleClient_StreamEvents() {
	apiURL, stop := startExampleServer()
	defer stop()
	ctx := context.Background()
	c := client.New(apiURL, "sk_client_test_key")

	p, err := c.CreatePayout(ctx, client.CreatePayoutParams{
		Chain: "sandbox", Asset: "ETH", To: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", Amount: big.NewInt(1e15),
	}, "")
	if err != nil {
		log.Fatal(err)
	}
	page, err := c.ListEvents(ctx, client.ListEventsParams{ObjectID: p.ID})
	if err != nil {
		log.Fatal(err)
	}
	lastHandled := page.Data[0].ID // kept by the consumer, e.g. in its database
	fmt.Println(page.Data[0].Type, page.Data[0].Sequence)

	if _, err := c.CancelPayout(ctx, p.ID); err != nil {
		log.Fatal(err)
	}
	for e, err := range c.StreamEvents(ctx, client.StreamParams{LastEventID: lastHandled}) {
		if err != nil {
			log.Fatal(err)
		}
		got, _ := e.Payout()
		fmt.Println(e.Type, e.Sequence, got.Status)
		break // a real consumer keeps going, storing e.ID as it handles each event
	}
	// Output:
	// payout.created 1
	// payout.cancelled 2 cancelled
}
