package contracts_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/holiman/uint256"
	"github.com/sluicepay/sluice/contracts"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// batchGas is the gas limit of a batch transaction: just under EIP-7825's
// 2^24 per-transaction cap.
const batchGas = 16_000_000

// batchChain drives the batch contracts on a dev chain over JSON-RPC.
type batchChain struct {
	tb    testing.TB
	chain *sandbox.Chain
	cl    *ethclient.Client
	key   *ecdsa.PrivateKey // the hot wallet's
	hot   common.Address
	susd  common.Address
	nonce map[common.Address]uint64
	// executor and batch are the deployed contracts; the hot wallet is
	// delegated to executor.
	executor, batch common.Address
}

// newBatchChain starts a dev chain, deploys both batch contracts and
// delegates the hot wallet to the executor.
func newBatchChain(tb testing.TB) *batchChain {
	tb.Helper()
	key, _ := crypto.GenerateKey()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	chain, err := sandbox.Start(ctx, sandbox.Config{RPCAddr: "127.0.0.1:0", HotWalletKey: key})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { chain.Close() })
	cl, err := ethclient.Dial(chain.RPCURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	c := &batchChain{tb: tb, chain: chain, cl: cl, key: key, hot: chain.HotWallet(), susd: chain.SUSD(),
		// The hot wallet's nonce 0 deployed SUSD.
		nonce: map[common.Address]uint64{chain.HotWallet(): 1}}
	c.executor = c.deploy(contracts.BatchExecutor().Bytecode)
	c.batch = c.deploy(contracts.Batch().Bytecode)
	c.delegate()
	return c
}

func (c *batchChain) sign(key *ecdsa.PrivateKey, inner types.TxData) *types.Transaction {
	c.tb.Helper()
	signed, err := types.SignNewTx(key, types.LatestSignerForChainID(big.NewInt(sandbox.ChainID)), inner)
	if err != nil {
		c.tb.Fatal(err)
	}
	// geth's pool lets a delegated account have one transaction in flight,
	// and it learns that the last one was mined only when it has caught up
	// with the new head, shortly after Commit returns.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err := c.cl.SendTransaction(context.Background(), signed)
		if err == nil {
			return signed
		}
		if !strings.Contains(err.Error(), txpool.ErrInflightTxLimitReached.Error()) || time.Now().After(deadline) {
			c.tb.Fatalf("send: %v", err)
		}
	}
}

// send sends a transaction with a fixed gas limit, so that one expected to
// revert is mined rather than refused by gas estimation.
func (c *batchChain) send(key *ecdsa.PrivateKey, to *common.Address, value *big.Int, data []byte, gas uint64) *types.Transaction {
	c.tb.Helper()
	from := crypto.PubkeyToAddress(key.PublicKey)
	tx := c.sign(key, &types.DynamicFeeTx{
		ChainID: big.NewInt(sandbox.ChainID), Nonce: c.nonce[from], To: to, Value: value, Data: data,
		GasTipCap: big.NewInt(params.GWei), GasFeeCap: big.NewInt(50 * params.GWei), Gas: gas,
	})
	c.nonce[from]++
	return tx
}

// mine commits a block and returns the receipt of tx.
func (c *batchChain) mine(tx *types.Transaction) *types.Receipt {
	c.tb.Helper()
	if _, err := c.chain.Commit(); err != nil {
		c.tb.Fatal(err)
	}
	r, err := c.cl.TransactionReceipt(context.Background(), tx.Hash())
	if err != nil {
		c.tb.Fatal(err)
	}
	return r
}

// ok mines tx and fails unless it succeeded.
func (c *batchChain) ok(tx *types.Transaction, what string) *types.Receipt {
	c.tb.Helper()
	r := c.mine(tx)
	if r.Status != types.ReceiptStatusSuccessful {
		c.tb.Fatalf("%s reverted (gas used %d)", what, r.GasUsed)
	}
	return r
}

func (c *batchChain) deploy(code []byte) common.Address {
	c.tb.Helper()
	r := c.ok(c.send(c.key, nil, nil, code, 3_000_000), "deployment")
	return r.ContractAddress
}

// delegate makes the hot wallet's code the executor's with an EIP-7702
// authorization in a transaction the wallet sends to itself. The wallet
// sends the transaction, so its nonce has moved past the transaction's when
// the authorization is checked: the authorization carries the next one.
func (c *batchChain) delegate() {
	c.tb.Helper()
	n := c.nonce[c.hot]
	auth, err := types.SignSetCode(c.key, types.SetCodeAuthorization{
		ChainID: *uint256.NewInt(sandbox.ChainID), Address: c.executor, Nonce: n + 1,
	})
	if err != nil {
		c.tb.Fatal(err)
	}
	tx := c.sign(c.key, &types.SetCodeTx{
		ChainID: uint256.NewInt(sandbox.ChainID), Nonce: n, To: c.hot, Gas: 100_000,
		GasTipCap: uint256.NewInt(params.GWei), GasFeeCap: uint256.NewInt(50 * params.GWei),
		AuthList: []types.SetCodeAuthorization{auth},
	})
	c.nonce[c.hot] += 2
	c.ok(tx, "delegation")
	code, err := c.cl.CodeAt(context.Background(), c.hot, nil)
	if err != nil {
		c.tb.Fatal(err)
	}
	if !contracts.IsDelegatedTo(code, c.executor) {
		c.tb.Fatalf("hot wallet code = %x, want a delegation to %s", code, c.executor)
	}
}

// payExecutor sends a batch from the delegated hot wallet to itself.
func (c *batchChain) payExecutor(token *common.Address, packed []byte) *types.Transaction {
	c.tb.Helper()
	return c.send(c.key, &c.hot, nil, c.executorData(token, packed), batchGas)
}

func (c *batchChain) executorData(token *common.Address, packed []byte) []byte {
	c.tb.Helper()
	var data []byte
	var err error
	if token == nil {
		data, err = contracts.ExecutorNativeCall(packed)
	} else {
		data, err = contracts.ExecutorTokenCall(*token, packed)
	}
	if err != nil {
		c.tb.Fatal(err)
	}
	return data
}

// payBatch calls the deployed batch contract from the hot wallet. Tokens
// need an approval first (approveSUSD).
func (c *batchChain) payBatch(token *common.Address, packed []byte, value *big.Int) *types.Transaction {
	c.tb.Helper()
	var data []byte
	var err error
	if token == nil {
		data, err = contracts.BatchNativeCall(packed)
	} else {
		data, err = contracts.BatchTokenCall(*token, packed)
	}
	if err != nil {
		c.tb.Fatal(err)
	}
	return c.send(c.key, &c.batch, value, data, batchGas)
}

func (c *batchChain) susdData(method string, args ...any) []byte {
	c.tb.Helper()
	data, err := contracts.SUSDABI().Pack(method, args...)
	if err != nil {
		c.tb.Fatal(err)
	}
	return data
}

// approveSUSD sends the hot wallet's approval of the batch contract.
func (c *batchChain) approveSUSD(amount *big.Int) *types.Transaction {
	c.tb.Helper()
	return c.send(c.key, &c.susd, nil, c.susdData("approve", c.batch, amount), 100_000)
}

func (c *batchChain) susdCall(method string, args ...any) *big.Int {
	c.tb.Helper()
	out, err := c.cl.CallContract(context.Background(), ethereum.CallMsg{To: &c.susd, Data: c.susdData(method, args...)}, nil)
	if err != nil {
		c.tb.Fatalf("%s: %v", method, err)
	}
	return new(big.Int).SetBytes(out)
}

func (c *batchChain) susdBalance(who common.Address) *big.Int {
	c.tb.Helper()
	return c.susdCall("balanceOf", who)
}

func (c *batchChain) balance(who common.Address) *big.Int {
	c.tb.Helper()
	b, err := c.cl.BalanceAt(context.Background(), who, nil)
	if err != nil {
		c.tb.Fatal(err)
	}
	return b
}

// revertData runs msg as an eth_call and returns its revert data.
func (c *batchChain) revertData(msg ethereum.CallMsg) []byte {
	c.tb.Helper()
	_, err := c.cl.CallContract(context.Background(), msg, nil)
	var de rpc.DataError
	if !errors.As(err, &de) {
		c.tb.Fatalf("call did not revert with data: %v", err)
	}
	s, _ := de.ErrorData().(string)
	data, err := hexutil.Decode(s)
	if err != nil {
		c.tb.Fatalf("revert data %q: %v", s, err)
	}
	return data
}

// errorData is the revert data of a batch contract's error.
func errorData(tb testing.TB, a *contracts.Artifact, name string, args ...any) []byte {
	tb.Helper()
	e, ok := a.ABI.Errors[name]
	if !ok {
		tb.Fatalf("%s has no error %s", a.ContractName, name)
	}
	enc, err := e.Inputs.Pack(args...)
	if err != nil {
		tb.Fatal(err)
	}
	return append(e.ID[:4:4], enc...)
}

// recipients makes n fresh random addresses paid amount(i) each.
func recipients(tb testing.TB, n int, amount func(i int) int64) ([]common.Address, []*big.Int) {
	tb.Helper()
	tos, amounts := make([]common.Address, n), make([]*big.Int, n)
	for i := range n {
		if _, err := rand.Read(tos[i][:]); err != nil {
			tb.Fatal(err)
		}
		amounts[i] = big.NewInt(amount(i))
	}
	return tos, amounts
}

func pack(tb testing.TB, tos []common.Address, amounts []*big.Int) []byte {
	tb.Helper()
	packed, err := contracts.PackRecipients(tos, amounts)
	if err != nil {
		tb.Fatal(err)
	}
	return packed
}

func sum(amounts []*big.Int) *big.Int {
	total := new(big.Int)
	for _, a := range amounts {
		total.Add(total, a)
	}
	return total
}

// checkTransfers checks that r's logs are exactly one SUSD Transfer from
// `from` to each recipient, in order.
func (c *batchChain) checkTransfers(r *types.Receipt, from common.Address, tos []common.Address, amounts []*big.Int) {
	c.tb.Helper()
	if len(r.Logs) != len(tos) {
		c.tb.Fatalf("%d logs, want %d Transfers", len(r.Logs), len(tos))
	}
	topic := contracts.SUSDABI().Events["Transfer"].ID
	for i, l := range r.Logs {
		if l.Address != c.susd || len(l.Topics) != 3 || l.Topics[0] != topic ||
			common.BytesToAddress(l.Topics[1].Bytes()) != from || common.BytesToAddress(l.Topics[2].Bytes()) != tos[i] ||
			new(big.Int).SetBytes(l.Data).Cmp(amounts[i]) != 0 {
			c.tb.Errorf("log %d = %s %v %x, want Transfer(%s, %s, %s)", i, l.Address, l.Topics, l.Data, from, tos[i], amounts[i])
		}
	}
}

// checkEmpty checks that addr holds neither coin nor SUSD.
func (c *batchChain) checkEmpty(addr common.Address, name string) {
	c.tb.Helper()
	if b := c.balance(addr); b.Sign() != 0 {
		c.tb.Errorf("%s holds %s wei", name, b)
	}
	if b := c.susdBalance(addr); b.Sign() != 0 {
		c.tb.Errorf("%s holds %s SUSD units", name, b)
	}
}
