package httpapi

import (
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/payout"
)

// offlineFixture is a plan of one transaction and that transaction signed
// by the plan's wallet.
func offlineFixture(t testing.TB) (*payout.OfflinePlan, []byte) {
	key, _ := crypto.HexToECDSA("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
	chainID := big.NewInt(1337)
	signer := types.LatestSignerForChainID(chainID)
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: 4, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(3e9), Gas: 21000,
		To: &common.Address{0xbe, 0xef}, Value: big.NewInt(12345)})
	pl := &payout.OfflinePlan{ID: "ofp_x", ChainID: 1337, Wallet: crypto.PubkeyToAddress(key.PublicKey),
		Items: []payout.OfflineItem{{PayoutID: "po_x", Nonce: 4, Digest: signer.Hash(tx)}}}
	signed, err := types.SignTx(tx, signer, key)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := signed.MarshalBinary()
	return pl, raw
}

func TestMatchSigned(t *testing.T) {
	pl, raw := offlineFixture(t)
	if _, it, err := matchSigned(pl, 0, raw); err != nil || it.PayoutID != "po_x" {
		t.Fatalf("the planned transaction, signed: %v", err)
	}
	other, _ := crypto.GenerateKey()
	tx := new(types.Transaction)
	tx.UnmarshalBinary(raw)
	byOther, _ := types.SignTx(tx, types.LatestSignerForChainID(big.NewInt(1337)), other)
	rawOther, _ := byOther.MarshalBinary()
	changed := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 4, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(3e9), Gas: 21000,
		To: tx.To(), Value: big.NewInt(12346)})
	key, _ := crypto.HexToECDSA("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
	changedSigned, _ := types.SignTx(changed, types.LatestSignerForChainID(big.NewInt(1337)), key)
	rawChanged, _ := changedSigned.MarshalBinary()
	for name, c := range map[string]struct {
		raw  []byte
		want string
	}{
		"another key":   {rawOther, "not by the wallet"},
		"another value": {rawChanged, "differ from the planned"},
		"garbage":       {[]byte{0x02, 0x01}, "not a signed transaction"},
	} {
		if _, _, err := matchSigned(pl, 0, c.raw); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// FuzzMatchSigned: any bytes submitted as a signed transaction are either
// the planned transaction signed by the wallet or refused with a reason;
// never a panic, never a match for something else.
func FuzzMatchSigned(f *testing.F) {
	pl, raw := offlineFixture(f)
	f.Add(raw)
	f.Add(raw[:len(raw)-1])
	f.Add([]byte{})
	f.Add([]byte{0xf8, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, it, err := matchSigned(pl, 0, b)
		if err != nil {
			if _, ok := err.(*mismatchError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		signer := types.LatestSignerForChainID(big.NewInt(1337))
		if from, _ := types.Sender(signer, tx); from != pl.Wallet || signer.Hash(tx) != it.Digest {
			t.Fatalf("matched a transaction from %s with digest %s", from.Hex(), signer.Hash(tx).Hex())
		}
	})
}
