package storetest

import (
	"context"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
)

// BooksStore is what the books suite needs of a store: what a
// reconciliation reads (internal/reconcile.Books).
type BooksStore interface {
	payout.Store
	PaidBetween(ctx context.Context, chainID uint64, wallet common.Address, from, to uint64) ([]payout.Paid, error)
	AttemptsAtNonces(ctx context.Context, chainID uint64, wallet common.Address, from, to uint64) ([]*payout.Attempt, error)
	UnrecordedPayouts(ctx context.Context, ids []string) ([]string, error)
	BooksClosedAt(ctx context.Context, chainID uint64, wallet common.Address) (uint64, bool, error)
	OpenBooks(ctx context.Context, chainID uint64, wallet common.Address, block uint64) error
	CloseBooks(ctx context.Context, chainID uint64, wallet common.Address, from, to uint64, drift any) (bool, error)
}

// RunBooks checks what the payouts' books say a wallet paid: only payouts
// whose transaction succeeded in the block range count (not a reverted
// one, not a mined cancel, not one still in flight, not another wallet's),
// summed per asset; every attempt at a range of nonces; and the mark of
// where a wallet's books were last closed. open must return a new, empty
// store each time.
func RunBooks(t *testing.T, open func(t *testing.T) BooksStore) {
	t.Run("Paid", func(t *testing.T) {
		t.Parallel()
		testPaidBetween(t, open(t))
	})
	t.Run("Marks", func(t *testing.T) {
		t.Parallel()
		testBooksMarks(t, open(t))
	})
}

// testBooksMarks: books open once, close only from where they are, and a
// drift closes them with its event in the same transaction.
func testBooksMarks(t *testing.T, s BooksStore) {
	if _, ok, err := s.BooksClosedAt(ctx(t), chainID, sender); err != nil || ok {
		t.Fatalf("BooksClosedAt of a new wallet = %v, %v; want not open", ok, err)
	}
	for _, b := range []uint64{100, 90} { // the second open changes nothing
		if err := s.OpenBooks(ctx(t), chainID, sender, b); err != nil {
			t.Fatal(err)
		}
	}
	if b, ok, err := s.BooksClosedAt(ctx(t), chainID, sender); err != nil || !ok || b != 100 {
		t.Fatalf("BooksClosedAt = %d, %v, %v; want 100", b, ok, err)
	}
	if moved, err := s.CloseBooks(ctx(t), chainID, sender, 100, 110, nil); err != nil || !moved {
		t.Fatalf("CloseBooks(100, 110) = %v, %v", moved, err)
	}
	drift := map[string]any{"detail": "7 SUSD unexplained"}
	if moved, err := s.CloseBooks(ctx(t), chainID, sender, 100, 120, drift); err != nil || moved {
		t.Fatalf("CloseBooks from a stale mark = %v, %v; want not moved", moved, err)
	}
	object := payout.WalletObjectID(chainID, sender)
	evs, _, err := s.ListEventPage(ctx(t), payout.EventFilter{ObjectID: object, Limit: 10})
	if err != nil || len(evs) != 0 {
		t.Fatalf("events after a refused close: %d, %v; want none", len(evs), err)
	}
	if moved, err := s.CloseBooks(ctx(t), chainID, sender, 110, 120, drift); err != nil || !moved {
		t.Fatalf("CloseBooks(110, 120) with drift = %v, %v", moved, err)
	}
	evs, _, err = s.ListEventPage(ctx(t), payout.EventFilter{ObjectID: object, Limit: 10})
	if err != nil || len(evs) != 1 || evs[0].Type != payout.EventWalletDrift || !strings.Contains(string(evs[0].Data), "7 SUSD unexplained") {
		t.Fatalf("events after a drift: %+v, %v; want one wallet.drift with its data", evs, err)
	}
	if b, _, _ := s.BooksClosedAt(ctx(t), chainID, sender); b != 120 {
		t.Errorf("BooksClosedAt = %d, want 120", b)
	}
}

func testPaidBetween(t *testing.T, s BooksStore) {
	other := common.HexToAddress("0x0e")
	eth := mustCreate(t, s, 4)
	tok := mustCreate(t, s, 2, func(p *payout.Payout) { p.Asset, p.Amount = "SUSD", big.NewInt(7_000_000) })
	elsewhere := mustCreate(t, s, 1, func(p *payout.Payout) { p.Sender = other })
	ps := append(append([]*payout.Payout{}, eth...), tok...)
	as := mustSubmit(t, s, ps, 10) // nonces 10-15
	mustSubmit(t, s, elsewhere, 10)
	cancelled := receiptFor(as[2], 105, true)
	cancelled.Cancel = true
	rs := []payout.Receipt{
		receiptFor(as[0], 101, true),  // ETH, counts
		receiptFor(as[1], 104, false), // reverted: no amount
		cancelled,                     // the cancel mined: no amount
		receiptFor(as[4], 110, true),  // SUSD, counts
		receiptFor(as[5], 111, true),  // SUSD, after the range
	}
	if err := s.MarkMined(ctx(t), rs); err != nil {
		t.Fatal(err)
	}
	if err := s.Finalize(ctx(t), idsOf(ps[:5])); err != nil { // as[5]'s payout stays confirming
		t.Fatal(err)
	}
	got, err := s.PaidBetween(ctx(t), chainID, sender, 100, 110)
	if err != nil {
		t.Fatal(err)
	}
	want := []payout.Paid{{Asset: "ETH", Amount: eth[0].Amount, Payouts: 1}, {Asset: "SUSD", Amount: big.NewInt(7_000_000), Payouts: 1}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b *big.Int) bool { return a.Cmp(b) == 0 })); diff != "" {
		t.Errorf("PaidBetween(100, 110] mismatch (-want +got):\n%s", diff)
	}
	if got, err := s.PaidBetween(ctx(t), chainID, sender, 101, 111); err != nil || len(got) != 1 || got[0].Asset != "SUSD" || got[0].Payouts != 2 ||
		got[0].Amount.Cmp(big.NewInt(14_000_000)) != 0 {
		t.Errorf("PaidBetween(101, 111] = %+v, %v: want both SUSD payouts (one still confirming), block 101 excluded", got, err)
	}
	if got, err := s.UnrecordedPayouts(ctx(t), []string{ps[0].ID, ps[5].ID, elsewhere[0].ID, elsewhere[0].ID, "po_missing"}); err != nil ||
		len(got) != 1 || got[0] != elsewhere[0].ID {
		t.Errorf("UnrecordedPayouts = %v, %v; want only the payout still submitted", got, err)
	}
	attempts, err := s.AttemptsAtNonces(ctx(t), chainID, sender, 11, 14)
	if err != nil {
		t.Fatal(err)
	}
	var nonces []uint64
	for _, a := range attempts {
		nonces = append(nonces, a.Nonce)
		if a.Sender != sender || len(a.RawTx) == 0 {
			t.Errorf("attempt %+v: want the wallet's, with its signed transaction", a)
		}
	}
	if diff := cmp.Diff([]uint64{11, 12, 13}, nonces); diff != "" {
		t.Errorf("AttemptsAtNonces[11, 14) nonces mismatch (-want +got):\n%s", diff)
	}
}
