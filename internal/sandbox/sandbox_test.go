package sandbox

import (
	"context"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
)

func TestStartFundsHotWalletAndDeploysSUSD(t *testing.T) {
	t.Parallel()
	c := startChain(t, Config{DataDir: t.TempDir()})
	cl := dial(t, c)
	ctx := context.Background()

	id, err := cl.ChainID(ctx)
	if err != nil || id.Uint64() != 1337 {
		t.Fatalf("chain id = %v, %v; want 1337", id, err)
	}
	bal, err := cl.BalanceAt(ctx, c.HotWallet(), big.NewInt(0))
	if err != nil {
		t.Fatal(err)
	}
	if want := new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(params.Ether)); bal.Cmp(want) != 0 {
		t.Errorf("hot wallet genesis balance = %s, want %s", bal, want)
	}
	if got := susdBalance(t, cl, c.SUSD(), c.HotWallet()); got.Cmp(SUSDSupply()) != 0 {
		t.Errorf("hot wallet SUSD = %s, want %s", got, SUSDSupply())
	}
	to := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	ethTx := sendTx(t, cl, testKey, 1, to, big.NewInt(12345), nil, 21000)
	tokTx := sendTx(t, cl, testKey, 2, c.SUSD(), nil, susdTransferData(t, to, big.NewInt(777)), 100_000)
	commit(t, c)
	for _, tx := range []*types.Transaction{ethTx, tokTx} {
		if r := receipt(t, cl, tx); r.Status != types.ReceiptStatusSuccessful {
			t.Errorf("tx %s status %d", tx.Hash(), r.Status)
		}
	}
	if got, _ := cl.BalanceAt(ctx, to, nil); got.Int64() != 12345 {
		t.Errorf("recipient ETH = %v, want 12345", got)
	}
	if got := susdBalance(t, cl, c.SUSD(), to); got.Int64() != 777 {
		t.Errorf("recipient SUSD = %v, want 777", got)
	}
}
