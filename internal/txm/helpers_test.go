package txm_test

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/payout"
)

func ethereumCall(to common.Address, data []byte) ethereum.CallMsg {
	return ethereum.CallMsg{To: &to, Data: data}
}

// erc20Call is an ERC-20 call with an address and an amount argument; an
// empty selector returns just the arguments.
func erc20Call(selector string, to common.Address, amount *big.Int) []byte {
	out := common.FromHex(selector)
	out = append(out, common.LeftPadBytes(to.Bytes(), 32)...)
	return append(out, common.LeftPadBytes(amount.Bytes(), 32)...)
}

func gwei(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1_000_000_000)) }

// send signs a transaction from key at its pending nonce with the given
// tip and broadcasts it straight to the node, as a wallet other than
// Sluice would; it returns the transaction.
func (e *env) send(key *ecdsa.PrivateKey, to common.Address, value *big.Int, data []byte, tip *big.Int) *types.Transaction {
	e.t.Helper()
	ctx := context.Background()
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := e.eth.PendingNonceAt(ctx, from)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.sendAt(key, nonce, to, value, data, tip)
}

// sendAt is send at a given nonce.
func (e *env) sendAt(key *ecdsa.PrivateKey, nonce uint64, to common.Address, value *big.Int, data []byte, tip *big.Int) *types.Transaction {
	e.t.Helper()
	ctx := context.Background()
	head, err := e.eth.HeaderByNumber(ctx, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	id := new(big.Int).SetUint64(e.dom.ChainID)
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(id), &types.DynamicFeeTx{
		ChainID: id, Nonce: nonce, GasTipCap: tip, GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip),
		Gas: 200_000, To: &to, Value: value, Data: data,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.eth.SendTransaction(ctx, tx); err != nil {
		e.t.Fatalf("send: %v", err)
	}
	return tx
}

// direct sends a transaction from key and mines it before returning.
func (e *env) direct(key *ecdsa.PrivateKey, to common.Address, value *big.Int, data []byte) {
	e.t.Helper()
	tx := e.send(key, to, value, data, gwei(1))
	e.waitPending(crypto.PubkeyToAddress(key.PublicKey), 0)
	e.chain.Commit()
	r, err := e.eth.TransactionReceipt(context.Background(), tx.Hash())
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		e.t.Fatalf("direct transaction %s: receipt %+v, %v", tx.Hash().Hex(), r, err)
	}
}

// waitPending waits until the node's pool holds n transactions of from
// beyond its mined nonce (0: whatever was sent, i.e. pending > latest).
func (e *env) waitPending(from common.Address, n uint64) {
	e.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		latest, err1 := e.eth.NonceAt(ctx, from, nil)
		pending, err2 := e.eth.PendingNonceAt(ctx, from)
		if err1 == nil && err2 == nil && pending > latest && (n == 0 || pending-latest >= n) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("the node's pool does not hold %d transaction(s) of %s", n, from.Hex())
}

// waitStatus waits until a payout has a status, and returns it.
func (e *env) waitStatus(id string, want payout.Status, timeout time.Duration) *payout.Payout {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p, err := e.store.GetPayout(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if p.Status == want {
			return p
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("payout %s is %s (%s: %s) after %s, want %s", id, p.Status, p.Reason, p.ReasonDetail, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond every 10 ms until it holds, or fails after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// gate holds a test double's call until the test opens it, at the latest
// when the test ends.
type gate struct {
	ch      chan struct{}
	once    sync.Once
	arrived atomic.Bool // a call has come to the gate
}

func newGate(t *testing.T) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// reached reports whether a call has come to the gate.
func (g *gate) reached() bool { return g.arrived.Load() }

// wait returns once the gate is open, or with ctx's error.
func (g *gate) wait(ctx context.Context) error {
	g.arrived.Store(true)
	select {
	case <-g.ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// createNative queues n native payouts, to consecutive addresses from
// firstTo, and returns their ids.
func (e *env) createNative(n int, firstTo int64, amount *big.Int) []string {
	e.t.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = e.create("ETH", common.BigToAddress(big.NewInt(firstTo+int64(i))), amount).ID
	}
	return ids
}

// gathered sums what reg holds of the metric name, over the series whose
// labels include match: counters' values, histograms' sample counts.
func gathered(t *testing.T, reg *prometheus.Registry, name string, match map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range match {
				if labels[k] != v {
					continue series
				}
			}
			n += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return n
}
