package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
	"github.com/sluicepay/sluice/contracts"
)

// SUSDSupply returns the SUSD supply minted to the hot wallet, in base units
// (10^15, i.e. 1,000,000,000 SUSD).
func SUSDSupply() *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(15), nil)
}

// ensureSUSD deploys SUSD on a new chain, or checks that a restored chain has
// it.
func (c *Chain) ensureSUSD(ctx context.Context) error {
	code, err := c.client.CodeAt(ctx, c.susd, nil)
	if err != nil {
		return fmt.Errorf("sandbox: read SUSD code: %w", err)
	}
	if len(code) > 0 {
		if !bytes.Equal(code, contracts.SUSDRuntimeCode()) {
			// Still a working token; only the sources changed since.
			c.log.Warn("SUSD on this chain was built from older sources", "susd", c.susd)
		}
		return nil
	}
	if n := c.eth.BlockChain().CurrentBlock().Number.Uint64(); n != 0 {
		problem := fmt.Sprintf("its chain is at block %d but has no SUSD at %s", n, c.susd)
		if c.dir != nil {
			return c.dir.refuse(problem, nil)
		}
		return fmt.Errorf("sandbox: %s", problem)
	}
	return c.deploySUSD(ctx)
}

// deploySUSD sends the hot wallet's first transaction, SUSD's deployment, in
// a block of its own, and checks the outcome.
func (c *Chain) deploySUSD(ctx context.Context) error {
	data, err := contracts.SUSDDeployData(c.hot, SUSDSupply())
	if err != nil {
		return err
	}
	tx, err := c.signDeploy(ctx, data)
	if err != nil {
		return err
	}
	if err := c.client.SendTransaction(ctx, tx); err != nil {
		return fmt.Errorf("sandbox: send SUSD deployment: %w", err)
	}
	if _, err := c.Commit(); err != nil {
		return fmt.Errorf("sandbox: mine SUSD deployment: %w", err)
	}
	rcpt, err := c.client.TransactionReceipt(ctx, tx.Hash())
	if err != nil {
		return fmt.Errorf("sandbox: SUSD deployment receipt: %w", err)
	}
	if rcpt.Status != types.ReceiptStatusSuccessful || rcpt.ContractAddress != c.susd {
		return fmt.Errorf("sandbox: SUSD deployment %s failed: status %d, address %s",
			tx.Hash(), rcpt.Status, rcpt.ContractAddress)
	}
	code, err := c.client.CodeAt(ctx, c.susd, nil)
	if err != nil || !bytes.Equal(code, contracts.SUSDRuntimeCode()) {
		return fmt.Errorf("sandbox: SUSD at %s does not have the expected code (err %v)", c.susd, err)
	}
	c.log.Info("deployed SUSD", "susd", c.susd, "tx_hash", tx.Hash(), "block_number", rcpt.BlockNumber)
	return nil
}

// signDeploy builds and signs the EIP-1559 deployment at nonce 0.
func (c *Chain) signDeploy(ctx context.Context, data []byte) (*types.Transaction, error) {
	gas, err := c.client.EstimateGas(ctx, ethereum.CallMsg{From: c.hot, Data: data})
	if err != nil {
		return nil, fmt.Errorf("sandbox: estimate SUSD deployment: %w", err)
	}
	tip := big.NewInt(params.GWei)
	baseFee := c.eth.BlockChain().CurrentBlock().BaseFee
	feeCap := new(big.Int).Add(new(big.Int).Mul(baseFee, big.NewInt(2)), tip)
	chainID := big.NewInt(ChainID)
	tx := types.NewTx(&types.DynamicFeeTx{
		ChainID:   chainID,
		Nonce:     0,
		GasTipCap: tip,
		GasFeeCap: feeCap,
		Gas:       gas,
		Data:      data,
	})
	signed, err := types.SignTx(tx, types.LatestSignerForChainID(chainID), c.cfg.HotWalletKey)
	if err != nil {
		return nil, fmt.Errorf("sandbox: sign SUSD deployment: %w", err)
	}
	return signed, nil
}
