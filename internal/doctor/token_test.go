package doctor

import (
	"context"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// TestTokenBalances checks the hot wallet's SUSD on the dev chain against
// the SUSD its pending payouts need, and a token configured at an address
// with no contract.
func TestTokenBalances(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t, f.rpcURL)
	check := "balance sandbox " + f.wallet.Hex() + " SUSD"

	rep := Run(t.Context(), cfg, Options{})
	if r := find(t, rep, check); r.Status != OK || !strings.Contains(r.Detail, "1000000000 SUSD; 0 pending payouts need 0 SUSD") {
		t.Errorf("funded, nothing pending: %+v", r)
	}

	// 1.5 SUSD pending: covered. Then 1,000,000,000.5 SUSD more: short
	// by 2 SUSD.
	f.addPayoutIn(t, "SUSD", big.NewInt(1_500_000), time.Now())
	rep = Run(t.Context(), cfg, Options{})
	if r := find(t, rep, check); r.Status != OK || !strings.Contains(r.Detail, "1 pending payouts need 1.5 SUSD") {
		t.Errorf("covered: %+v", r)
	}
	huge, _ := new(big.Int).SetString("1000000000500000", 10)
	f.addPayoutIn(t, "SUSD", huge, time.Now())
	rep = Run(t.Context(), cfg, Options{})
	r := find(t, rep, check)
	if r.Status != Fail || !strings.Contains(r.Detail, "2 pending payouts need 1000000002 SUSD") ||
		!strings.Contains(r.Advice, "short of SUSD: send it at least 2 SUSD") {
		t.Errorf("short: %+v", r)
	}
	if r := find(t, rep, "balance sandbox "+f.wallet.Hex()); r.Status != OK || !strings.Contains(r.Detail, "2 pending payouts") {
		t.Errorf("native balance covers the token payouts' gas: %+v", r)
	}

	// A token whose address holds no contract.
	cfg.Chains[0].Tokens = append(cfg.Chains[0].Tokens, config.Token{Symbol: "NOPE", Address: "0x000000000000000000000000000000000000bEEF", Decimals: 6})
	rep = Run(t.Context(), cfg, Options{})
	r = find(t, rep, "balance sandbox "+f.wallet.Hex()+" NOPE")
	if r.Status != Fail || !strings.Contains(r.Detail, "no contract") || !strings.Contains(r.Advice, "check the address of token NOPE") {
		t.Errorf("no contract: %+v", r)
	}
	if rep.ExitCode() != 2 {
		t.Errorf("exit code %d, want 2", rep.ExitCode())
	}
}

// TestEmptyTokenBalanceWarns sends all the hot wallet's SUSD away on the
// dev chain: nothing pending, but nothing to pay with either.
func TestEmptyTokenBalanceWarns(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cl := f.chain.Client()
	nonce, err := cl.PendingNonceAt(ctx, f.wallet)
	if err != nil {
		t.Fatal(err)
	}
	susd := f.chain.SUSD()
	tx, err := types.SignNewTx(ksKey, types.LatestSignerForChainID(big.NewInt(sandbox.ChainID)), &types.DynamicFeeTx{
		ChainID: big.NewInt(sandbox.ChainID), Nonce: nonce, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9),
		Gas: 100_000, To: &susd, Data: evm.ERC20TransferData(common.HexToAddress("0x000000000000000000000000000000000000dEaD"), sandbox.SUSDSupply()),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.chain.Commit(); err != nil {
		t.Fatal(err)
	}
	if rc, err := cl.TransactionReceipt(ctx, tx.Hash()); err != nil || rc.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("transfer of all SUSD: receipt %+v, %v", rc, err)
	}
	rep := Run(t.Context(), f.config(t, f.rpcURL), Options{})
	r := find(t, rep, "balance sandbox "+f.wallet.Hex()+" SUSD")
	if r.Status != Warn || !strings.Contains(r.Detail, "0 SUSD") || !strings.Contains(r.Advice, "holds no SUSD: fund it") {
		t.Errorf("empty: %+v", r)
	}
	if rep.ExitCode() != 1 {
		t.Errorf("exit code %d, want 1", rep.ExitCode())
	}
}
