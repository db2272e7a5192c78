package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// fundExtraWallets gives every hot wallet beyond the first, when it holds
// nothing yet, a share of the first wallet's ETH and SUSD (half of each,
// split evenly), and waits until the transfers are mined. A restart finds
// them funded and sends nothing.
func fundExtraWallets(ctx context.Context, chain *sandbox.Chain, d *devData, log *slog.Logger) error {
	if len(d.extra) == 0 {
		return nil
	}
	client, err := evm.Dial(ctx, chain.RPCURL(), "sandbox", nil)
	if err != nil {
		return err
	}
	defer client.Close()
	calls, err := fundingCalls(ctx, client, chain, d)
	if err != nil || len(calls) == 0 {
		return err
	}
	hashes, err := signAndSend(ctx, client, chain.ChainID(), d, calls)
	if err != nil {
		return err
	}
	if err := waitMined(ctx, client, hashes); err != nil {
		return fmt.Errorf("fund extra hot wallets: %w", err)
	}
	log.Info("funded extra hot wallets", "wallets", len(d.extra), "transfers", len(hashes))
	return nil
}

type fundingCall struct {
	call evm.Call
	gas  uint64
}

// fundingCalls lists the transfers that the empty extra wallets need.
func fundingCalls(ctx context.Context, client *evm.Client, chain *sandbox.Chain, d *devData) ([]fundingCall, error) {
	share := func(total *big.Int) *big.Int {
		return new(big.Int).Div(total, big.NewInt(int64(2*len(d.extra))))
	}
	eth, susd := share(sandbox.HotWalletBalance()), share(sandbox.SUSDSupply())
	token := chain.SUSD()
	from := d.wallet.Address()
	var calls []fundingCall
	for _, w := range d.extra {
		to := w.ks.Address()
		bal, err := client.Balance(ctx, to)
		if err != nil {
			return nil, err
		}
		if bal.Sign() == 0 {
			calls = append(calls, fundingCall{evm.TransferCall(from, nil, to, eth), 21000})
		}
		tokens, err := tokenBalance(ctx, chain, token, to)
		if err != nil {
			return nil, err
		}
		if tokens.Sign() == 0 {
			calls = append(calls, fundingCall{evm.TransferCall(from, &token, to, susd), 100_000})
		}
	}
	return calls, nil
}

func tokenBalance(ctx context.Context, chain *sandbox.Chain, token, holder common.Address) (*big.Int, error) {
	data := append(common.FromHex("0x70a08231"), common.LeftPadBytes(holder.Bytes(), 32)...)
	out, err := chain.Client().CallContract(ctx, ethereum.CallMsg{To: &token, Data: data}, nil)
	if err != nil {
		return nil, fmt.Errorf("SUSD balance of %s: %w", holder.Hex(), err)
	}
	return new(big.Int).SetBytes(out), nil
}

// signAndSend signs the calls from the first wallet at consecutive nonces
// and broadcasts them.
func signAndSend(ctx context.Context, client *evm.Client, chainID uint64, d *devData, calls []fundingCall) ([]common.Hash, error) {
	from := d.wallet.Address()
	nonce, err := client.Nonce(ctx, from, "pending")
	if err != nil {
		return nil, err
	}
	head, err := client.Header(ctx, nil)
	if err != nil {
		return nil, err
	}
	tip, err := client.SuggestTip(ctx)
	if err != nil {
		return nil, err
	}
	fees := evm.Fees{MaxFeePerGas: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip), MaxPriorityFeePerGas: tip}
	var raws [][]byte
	var hashes []common.Hash
	for i, c := range calls {
		tx, err := evm.SignTransfer(ctx, d.wallet, new(big.Int).SetUint64(chainID), nonce+uint64(i), c.gas, fees, c.call)
		if err != nil {
			return nil, err
		}
		raw, _ := tx.MarshalBinary()
		raws, hashes = append(raws, raw), append(hashes, tx.Hash())
	}
	errs, err := client.SendRaw(ctx, raws)
	if err != nil {
		return nil, err
	}
	for i, e := range errs {
		if e != nil {
			return nil, fmt.Errorf("fund extra hot wallets: transfer %d: %w", i, e)
		}
	}
	return hashes, nil
}

func waitMined(ctx context.Context, client *evm.Client, hashes []common.Hash) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		rs, err := client.Receipts(ctx, hashes)
		if err != nil {
			return err
		}
		done := true
		for i, r := range rs {
			if r == nil {
				done = false
			} else if !r.Success {
				return fmt.Errorf("transfer %s reverted", hashes[i].Hex())
			}
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("transfers not mined after 2 minutes")
}
