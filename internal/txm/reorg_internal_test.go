package txm

import (
	"context"
	"log/slog"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

// A payout mined before the session began is confirming without a flight;
// when its block is reorged away, the flight rebuilt from the store must
// carry what the payout moves (the balance reservation reads it), its
// priority, fee cap and cancel request — not only its attempts.
func TestReorgedFlightIsRebuiltWhole(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "db"), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	token := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	wallet := common.HexToAddress("0x00000000000000000000000000000000000000bb")
	chain := payout.Chain{Name: "sandbox", ChainID: 1337, HotWallet: wallet,
		Assets: map[string]payout.Asset{"ETH": {Symbol: "ETH", Decimals: 18}, "SUSD": {Symbol: "SUSD", Token: &token, Decimals: 6}}}
	now := time.Now()
	ids := &payout.IDGenerator{}
	var ps []*payout.Payout
	for i, asset := range []string{"ETH", "SUSD"} {
		p := &payout.Payout{ID: ids.New("po_", now), Status: payout.StatusQueued, Chain: "sandbox", ChainID: 1337, Asset: asset,
			To: common.BigToAddress(big.NewInt(int64(100 + i))), Amount: big.NewInt(int64(5000 + i)), Sender: wallet,
			Priority: payout.PriorityHigh, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := db.CreatePayout(ctx, p, nil); err != nil {
			t.Fatal(err)
		}
		a := &payout.Attempt{PayoutID: p.ID, ChainID: 1337, Sender: wallet, Nonce: uint64(i), TxHash: common.BigToHash(big.NewInt(int64(7 + i))),
			RawTx: []byte{1}, GasLimit: 21000, MaxFeePerGas: big.NewInt(10), MaxPriorityFeePerGas: big.NewInt(1)}
		if err := db.SubmitAttempts(ctx, []*payout.Attempt{a}); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkMined(ctx, []payout.Receipt{{PayoutID: p.ID, TxHash: a.TxHash, BlockNumber: 9, BlockHash: common.HexToHash("0x09"),
			GasUsed: 21000, EffectiveGasPrice: big.NewInt(2), Success: true}}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.RaiseFeeCap(ctx, p.ID, big.NewInt(1e15)); err == nil {
			t.Fatal("a confirming payout took a fee cap")
		}
		ps = append(ps, p)
	}
	s := &Sender{cfg: Config{Chain: chain, Store: db, Metrics: NewMetrics(nil)}, sender: wallet, log: slog.New(slog.DiscardHandler), st: newLoopState(context.Background())}
	s.st.head = 10
	var ms []*mined
	for _, p := range ps {
		ms = append(ms, &mined{payoutID: p.ID, createdAt: p.CreatedAt, blockNumber: 9, blockHash: common.HexToHash("0x09")}) // no flight: loaded at recover
	}
	if err := s.reorged(ctx, ms); err != nil {
		t.Fatal(err)
	}
	native, tok := s.st.flights[ps[0].ID], s.st.flights[ps[1].ID]
	if native == nil || tok == nil {
		t.Fatalf("reorged payouts are not in flight: %v", s.st.flights)
	}
	if native.value == nil || native.value.Int64() != 5000 || native.token != nil || native.priority != payout.PriorityHigh || len(native.attempts) != 1 {
		t.Errorf("native flight = value %v token %v priority %q attempts %d; want 5000, none, high, 1", native.value, native.token, native.priority, len(native.attempts))
	}
	if tok.value == nil || tok.value.Sign() != 0 || tok.token == nil || *tok.token != token || tok.amount.Int64() != 5001 {
		t.Errorf("token flight = value %v token %v amount %v; want 0, SUSD, 5001", tok.value, tok.token, tok.amount)
	}
	// The reservation reads every flight: it must not fail on rebuilt ones.
	f := &funds{native: big.NewInt(1e18), tokens: map[common.Address]*big.Int{}, symbol: map[common.Address]string{}}
	for _, fl := range s.st.flights {
		f.native.Sub(f.native, fl.value)
	}
}
