package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/signer"
)

// BenchmarkSignOfflinePlan times `sluice sign --offline` of a 1,000-
// transaction plan (the most one plan holds): open the keystore (scrypt),
// check every planned transaction, sign it, write the file.
func BenchmarkSignOfflinePlan(b *testing.B) {
	dir := b.TempDir()
	key, _ := crypto.GenerateKey()
	keyFile, _, err := signer.WriteKeystore(filepath.Join(dir, "keys"), key, "pass", signer.ChosenPassphrase)
	if err != nil {
		b.Fatal(err)
	}
	b.Setenv("SLUICE_KEYSTORE_PASSPHRASE", "pass")
	chainID := big.NewInt(1337)
	txSigner := types.LatestSignerForChainID(chainID)
	pl := client.OfflinePlan{ID: "ofp_bench", Chain: "sandbox", ChainID: 1337, Wallet: crypto.PubkeyToAddress(key.PublicKey).Hex()}
	for i := range 1000 {
		to := common.BigToAddress(big.NewInt(int64(0xB0000 + i)))
		tx := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: uint64(i), GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(3e9),
			Gas: 21000, To: &to, Value: big.NewInt(int64(1000 + i))})
		raw, _ := tx.MarshalBinary()
		pl.Items = append(pl.Items, client.OfflineItem{PayoutID: "po_" + to.Hex(), Nonce: uint64(i), To: to.Hex(), Asset: "ETH",
			Amount: tx.Value().String(), UnsignedTx: hexutil.Encode(raw), Digest: txSigner.Hash(tx).Hex()})
	}
	planFile := filepath.Join(dir, "plan.json")
	pb, _ := json.Marshal(pl)
	if err := os.WriteFile(planFile, pb, 0o600); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		out := filepath.Join(dir, "signed-"+string(rune('a'+i%26))+big.NewInt(int64(i)).String()+".json")
		var stdout, stderr bytes.Buffer
		if err := runSign(context.Background(), []string{"--offline", "--keystore", keyFile, "--in", planFile, "--out", out}, &stdout, &stderr); err != nil {
			b.Fatal(err, stderr.String())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/plan")
}
