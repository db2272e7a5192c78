package contracts_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/sluicepay/sluice/contracts"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// token drives SUSD on a dev chain over HTTP JSON-RPC.
type token struct {
	t     *testing.T
	chain *sandbox.Chain
	cl    *ethclient.Client
	hot   *ecdsa.PrivateKey
	addr  common.Address
	nonce map[common.Address]uint64
}

func newToken(t *testing.T) *token {
	t.Helper()
	hot, _ := crypto.GenerateKey()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	chain, err := sandbox.Start(ctx, sandbox.Config{RPCAddr: "127.0.0.1:0", HotWalletKey: hot})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.Close() })
	cl, err := ethclient.Dial(chain.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	// The hot wallet's nonce 0 deployed SUSD.
	return &token{t: t, chain: chain, cl: cl, hot: hot, addr: chain.SUSD(), nonce: map[common.Address]uint64{chain.HotWallet(): 1}}
}

// send signs and sends a call to the token from key, with a fixed gas limit
// so that calls expected to revert are mined rather than refused by gas
// estimation.
func (k *token) send(key *ecdsa.PrivateKey, to common.Address, value *big.Int, data []byte) *types.Transaction {
	k.t.Helper()
	from := crypto.PubkeyToAddress(key.PublicKey)
	tx := types.NewTx(&types.DynamicFeeTx{
		ChainID: big.NewInt(sandbox.ChainID), Nonce: k.nonce[from], To: &to, Value: value, Data: data,
		GasTipCap: big.NewInt(params.GWei), GasFeeCap: big.NewInt(50 * params.GWei), Gas: 200_000,
	})
	signed, err := types.SignTx(tx, types.LatestSignerForChainID(big.NewInt(sandbox.ChainID)), key)
	if err != nil {
		k.t.Fatal(err)
	}
	if err := k.cl.SendTransaction(context.Background(), signed); err != nil {
		k.t.Fatalf("send: %v", err)
	}
	k.nonce[from]++
	return signed
}

// mine commits a block and returns the receipt of tx.
func (k *token) mine(tx *types.Transaction) *types.Receipt {
	k.t.Helper()
	if _, err := k.chain.Commit(); err != nil {
		k.t.Fatal(err)
	}
	r, err := k.cl.TransactionReceipt(context.Background(), tx.Hash())
	if err != nil {
		k.t.Fatal(err)
	}
	return r
}

func (k *token) pack(method string, args ...any) []byte {
	k.t.Helper()
	data, err := contracts.SUSDABI().Pack(method, args...)
	if err != nil {
		k.t.Fatal(err)
	}
	return data
}

// call runs a read-only call and returns the first output.
func (k *token) call(method string, args ...any) any {
	k.t.Helper()
	out, err := k.cl.CallContract(context.Background(), ethereum.CallMsg{To: &k.addr, Data: k.pack(method, args...)}, nil)
	if err != nil {
		k.t.Fatalf("%s: %v", method, err)
	}
	vals, err := contracts.SUSDABI().Unpack(method, out)
	if err != nil {
		k.t.Fatal(err)
	}
	return vals[0]
}

func (k *token) balance(who common.Address) int64 {
	k.t.Helper()
	return k.call("balanceOf", who).(*big.Int).Int64()
}

// account makes a key funded with 1 ETH for gas.
func (k *token) account() (*ecdsa.PrivateKey, common.Address) {
	k.t.Helper()
	key, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(key.PublicKey)
	if r := k.mine(k.send(k.hot, addr, big.NewInt(params.Ether), nil)); r.Status != 1 {
		k.t.Fatal("funding failed")
	}
	return key, addr
}

// checkLog checks that r holds exactly one log: SUSD's event(from, to,
// value), where event is Transfer or Approval.
func (k *token) checkLog(r *types.Receipt, event string, from, to common.Address, value int64) {
	k.t.Helper()
	if len(r.Logs) != 1 {
		k.t.Fatalf("%d logs, want 1", len(r.Logs))
	}
	l := r.Logs[0]
	ev := contracts.SUSDABI().Events[event]
	want := []common.Hash{ev.ID, common.BytesToHash(from.Bytes()), common.BytesToHash(to.Bytes())}
	if l.Address != k.addr || len(l.Topics) != 3 || l.Topics[0] != want[0] || l.Topics[1] != want[1] || l.Topics[2] != want[2] {
		k.t.Errorf("%s log = %v at %s, want topics %v", event, l.Topics, l.Address, want)
	}
	if got := new(big.Int).SetBytes(l.Data).Int64(); got != value {
		k.t.Errorf("%s value = %d, want %d", event, got, value)
	}
}

// revertSelector runs data as an eth_call from `from` and returns the 4-byte
// error selector of its revert.
func (k *token) revertSelector(from common.Address, data []byte) string {
	k.t.Helper()
	_, err := k.cl.CallContract(context.Background(), ethereum.CallMsg{From: from, To: &k.addr, Data: data}, nil)
	var de rpc.DataError
	if !errors.As(err, &de) {
		k.t.Fatalf("call did not revert with data: %v", err)
	}
	hex, _ := de.ErrorData().(string)
	if len(hex) < 10 {
		k.t.Fatalf("revert data %q", hex)
	}
	return hex[2:10]
}

func selector(name string) string {
	id := contracts.SUSDABI().Errors[name].ID
	return common.Bytes2Hex(id[:4])
}

func TestSUSDMetadata(t *testing.T) {
	t.Parallel()
	k := newToken(t)
	if got := k.call("name"); got != contracts.SUSDName {
		t.Errorf("name = %v", got)
	}
	if got := k.call("symbol"); got != contracts.SUSDSymbol {
		t.Errorf("symbol = %v", got)
	}
	if got := k.call("decimals"); got != uint8(contracts.SUSDDecimals) {
		t.Errorf("decimals = %v", got)
	}
	if got := k.call("totalSupply").(*big.Int); got.Cmp(sandbox.SUSDSupply()) != 0 {
		t.Errorf("totalSupply = %s, want %s", got, sandbox.SUSDSupply())
	}
}

func TestSUSDTransfer(t *testing.T) {
	t.Parallel()
	k := newToken(t)
	aliceKey, alice := k.account()
	bob := common.HexToAddress("0x00000000000000000000000000000000000000b0")
	hot := k.chain.HotWallet()

	r := k.mine(k.send(k.hot, k.addr, nil, k.pack("transfer", alice, big.NewInt(1000))))
	if r.Status != types.ReceiptStatusSuccessful {
		t.Fatal("transfer from the hot wallet failed")
	}
	k.checkLog(r, "Transfer", hot, alice, 1000)
	if got := k.balance(alice); got != 1000 {
		t.Errorf("alice = %d, want 1000", got)
	}
	wantHot := new(big.Int).Sub(sandbox.SUSDSupply(), big.NewInt(1000))
	if got := k.call("balanceOf", hot).(*big.Int); got.Cmp(wantHot) != 0 {
		t.Errorf("hot wallet = %s, want %s", got, wantHot)
	}

	// One more than alice holds: reverts, moves nothing, logs nothing.
	over := k.pack("transfer", bob, big.NewInt(1001))
	if got, want := k.revertSelector(alice, over), selector("InsufficientBalance"); got != want {
		t.Errorf("revert selector = %s, want InsufficientBalance %s", got, want)
	}
	r = k.mine(k.send(aliceKey, k.addr, nil, over))
	if r.Status != types.ReceiptStatusFailed || len(r.Logs) != 0 {
		t.Errorf("overdraft: status %d with %d logs, want a revert", r.Status, len(r.Logs))
	}
	if a, b := k.balance(alice), k.balance(bob); a != 1000 || b != 0 {
		t.Errorf("after overdraft alice = %d, bob = %d; want 1000, 0", a, b)
	}
	zero := k.pack("transfer", common.Address{}, big.NewInt(1))
	if got, want := k.revertSelector(alice, zero), selector("ZeroAddress"); got != want {
		t.Errorf("transfer to 0x0 selector = %s, want %s", got, want)
	}
}

func TestSUSDAllowance(t *testing.T) {
	t.Parallel()
	k := newToken(t)
	bobKey, bob := k.account()
	carol := common.HexToAddress("0x00000000000000000000000000000000000000c0")
	// The hot wallet approves a spender, as it will approve a batch contract.
	owner := k.chain.HotWallet()
	r := k.mine(k.send(k.hot, k.addr, nil, k.pack("approve", bob, big.NewInt(500))))
	k.checkLog(r, "Approval", owner, bob, 500)
	if got := k.call("allowance", owner, bob).(*big.Int).Int64(); got != 500 {
		t.Fatalf("allowance = %d, want 500", got)
	}

	r = k.mine(k.send(bobKey, k.addr, nil, k.pack("transferFrom", owner, carol, big.NewInt(300))))
	if r.Status != types.ReceiptStatusSuccessful {
		t.Fatal("transferFrom within the allowance failed")
	}
	k.checkLog(r, "Transfer", owner, carol, 300)
	if got := k.call("allowance", owner, bob).(*big.Int).Int64(); got != 200 {
		t.Errorf("allowance after spending 300 = %d, want 200", got)
	}

	over := k.pack("transferFrom", owner, carol, big.NewInt(201))
	if got, want := k.revertSelector(bob, over), selector("InsufficientAllowance"); got != want {
		t.Errorf("revert selector = %s, want InsufficientAllowance %s", got, want)
	}
	if r := k.mine(k.send(bobKey, k.addr, nil, over)); r.Status != types.ReceiptStatusFailed {
		t.Error("transferFrom over the allowance was not reverted")
	}
	if got := k.balance(carol); got != 300 {
		t.Errorf("carol = %d, want 300", got)
	}
}
