package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/signer"
)

// Offline signing, for when a hot wallet's signing service is down:
//
//	sluice tx export-unsigned --chain C --wallet W --out plan.json   (online: the engine plans, nonces reserved)
//	sluice sign --offline --keystore KEYFILE --in plan.json --out signed.json   (on a machine with no network)
//	sluice tx submit-signed signed.json   (online: checked against the plan, stored, broadcast)
//	sluice tx void-unsigned PLAN_ID   (give the plan up while the chain has used none of its nonces)

const signUsage = `Usage:
  sluice sign --offline --keystore FILE --in PLAN.json --out SIGNED.json [--passphrase-env SLUICE_KEYSTORE_PASSPHRASE]

Signs the transactions of an offline plan (written by sluice tx export-unsigned)
with a keystore file, on this machine, without any network. Every transaction is
checked first: its chain, its sender (the plan's wallet must be the key's
address), and that its digest is the one planned. Then submit SIGNED.json
with sluice tx submit-signed from a machine that reaches the engine.
`

// signedFile is what `sluice sign --offline` writes and
// `sluice tx submit-signed` reads.
type signedFile struct {
	PlanID             string   `json:"plan_id"`
	Chain              string   `json:"chain"`
	Wallet             string   `json:"wallet"`
	SignedTransactions []string `json:"signed_transactions"`
}

// planPoll is how often the CLI asks whether the wallet's sender has acted
// on a plan, and planWait how long it waits.
var (
	planPoll = 250 * time.Millisecond
	planWait = 2 * time.Minute
)

// waitPlan polls the plan until done says it is settled, printing its
// status as it changes.
func waitPlan(ctx context.Context, c *client.Client, id string, stderr io.Writer, done func(*client.OfflinePlan) bool) (*client.OfflinePlan, error) {
	deadline := time.Now().Add(planWait)
	last := ""
	for {
		pl, err := c.GetOfflinePlan(ctx, id)
		if err != nil {
			return nil, err
		}
		if pl.Status != last {
			fmt.Fprintf(stderr, "plan %s: %s\n", pl.ID, pl.Status)
			last = pl.Status
		}
		if done(pl) {
			return pl, nil
		}
		if time.Now().After(deadline) {
			return pl, fmt.Errorf("plan %s is still %s after %s: is the engine running, and its sender for %s up? (sluice doctor)", id, pl.Status, planWait, pl.Wallet)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(planPoll):
		}
	}
}

// txExportUnsigned asks the engine for an offline plan and writes it.
func txExportUnsigned(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := txFlags("export-unsigned", stderr)
	chain := fs.String("chain", "", "the chain of the hot wallet (required)")
	wallet := fs.String("wallet", "", "the hot wallet whose queued payouts to plan (required)")
	maxPayouts := fs.Int("max", 100, "plan at most this many payouts (1..1000)")
	out := fs.String("out", "", "file to write the plan to (required; refuses to overwrite)")
	if _, err := parseFlags(fs, args, 0, ""); err != nil {
		return err
	}
	switch {
	case *chain == "":
		return fmt.Errorf("%w: tx export-unsigned: --chain is required", errUsage)
	case !common.IsHexAddress(*wallet):
		return fmt.Errorf("%w: tx export-unsigned: --wallet %q is not a 0x-prefixed 20-byte hex address", errUsage, *wallet)
	case *out == "":
		return fmt.Errorf("%w: tx export-unsigned: --out FILE is required", errUsage)
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("tx export-unsigned: %s exists: refusing to overwrite a plan", *out)
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	pl, err := c.CreateOfflinePlan(ctx, client.CreateOfflinePlanParams{Chain: *chain, Wallet: *wallet, MaxPayouts: *maxPayouts})
	if err != nil {
		return err
	}
	pl, err = waitPlan(ctx, c, pl.ID, stderr, func(p *client.OfflinePlan) bool { return p.Status != client.PlanRequested })
	if err != nil {
		return err
	}
	if pl.Status == client.PlanEmpty {
		return fmt.Errorf("plan %s is empty: %s", pl.ID, pl.Note)
	}
	b, err := json.MarshalIndent(pl, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o600); err != nil {
		return err
	}
	if f.json {
		return writeJSONOut(stdout, pl)
	}
	first, last := pl.Items[0].Nonce, pl.Items[len(pl.Items)-1].Nonce
	fmt.Fprintf(stdout, "plan %s: %d transaction(s) of %s at nonces %d..%d written to %s\n", pl.ID, len(pl.Items), pl.Wallet, first, last, *out)
	fmt.Fprintf(stdout, "the wallet signs nothing else until the plan is submitted (sluice tx submit-signed) or voided (sluice tx void-unsigned %s)\n", pl.ID)
	return nil
}

// runSign runs `sluice sign --offline`.
func runSign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sluice sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, signUsage) }
	offline := fs.Bool("offline", false, "sign an offline plan with a local keystore (required: the only mode)")
	keyFile := fs.String("keystore", "", "the hot wallet's keystore file (v3, as geth and Sluice write)")
	in := fs.String("in", "", "the plan file (sluice tx export-unsigned)")
	out := fs.String("out", "", "the signed file to write (refuses to overwrite)")
	passEnv := fs.String("passphrase-env", "SLUICE_KEYSTORE_PASSPHRASE", "environment variable holding the keystore's passphrase")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: sign: %v", errUsage, err)
	}
	switch {
	case !*offline:
		return fmt.Errorf("%w: sign: only --offline signing exists: sluice sign --offline --keystore FILE --in PLAN --out SIGNED", errUsage)
	case *keyFile == "" || *in == "" || *out == "":
		return fmt.Errorf("%w: sign --offline: --keystore, --in and --out are required", errUsage)
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("sign --offline: %s exists: refusing to overwrite", *out)
	}
	b, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	var pl client.OfflinePlan
	if err := json.Unmarshal(b, &pl); err != nil {
		return fmt.Errorf("sign --offline: %s is not a plan file: %v", *in, err)
	}
	if pl.ID == "" || len(pl.Items) == 0 || !common.IsHexAddress(pl.Wallet) {
		return fmt.Errorf("sign --offline: %s is not a plan file with transactions (id, wallet and items are required)", *in)
	}
	pass, ok := os.LookupEnv(*passEnv)
	if !ok {
		return fmt.Errorf("sign --offline: $%s is not set (the keystore's passphrase; set it empty for a key without one)", *passEnv)
	}
	ks, err := signer.OpenKeystore(*keyFile, pass)
	if err != nil {
		return fmt.Errorf("sign --offline: %w", err)
	}
	wallet := common.HexToAddress(pl.Wallet)
	if ks.Address() != wallet {
		return fmt.Errorf("sign --offline: the keystore holds %s, but plan %s is for wallet %s", ks.Address().Hex(), pl.ID, wallet.Hex())
	}
	chainID := new(big.Int).SetUint64(pl.ChainID)
	txSigner := types.LatestSignerForChainID(chainID)
	sf := signedFile{PlanID: pl.ID, Chain: pl.Chain, Wallet: wallet.Hex()}
	total := map[string]*big.Int{}
	for i, it := range pl.Items {
		tx, err := checkPlanned(i, it, chainID, txSigner)
		if err != nil {
			return fmt.Errorf("sign --offline: %w; nothing was written", err)
		}
		sig, err := ks.SignDigest(ctx, txSigner.Hash(tx))
		if err != nil {
			return fmt.Errorf("sign --offline: item %d: %w", i, err)
		}
		signed, err := tx.WithSignature(txSigner, sig)
		if err != nil {
			return fmt.Errorf("sign --offline: item %d: %w", i, err)
		}
		if from, err := types.Sender(txSigner, signed); err != nil || from != wallet {
			return fmt.Errorf("sign --offline: item %d: the signature does not recover to %s", i, wallet.Hex())
		}
		raw, err := signed.MarshalBinary()
		if err != nil {
			return err
		}
		sf.SignedTransactions = append(sf.SignedTransactions, hexutil.Encode(raw))
		if amt, ok := new(big.Int).SetString(it.Amount, 10); ok {
			if total[it.Asset] == nil {
				total[it.Asset] = new(big.Int)
			}
			total[it.Asset].Add(total[it.Asset], amt)
		}
		fmt.Fprintf(stderr, "\rsigned %d/%d", i+1, len(pl.Items))
	}
	fmt.Fprintln(stderr)
	ob, err := json.MarshalIndent(sf, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, append(ob, '\n'), 0o600); err != nil {
		return err
	}
	var sums []string
	for asset, n := range total {
		sums = append(sums, fmt.Sprintf("%s %s (base units)", n, asset))
	}
	fmt.Fprintf(stdout, "signed %d transaction(s) of plan %s for %s paying %s; wrote %s\n", len(sf.SignedTransactions), pl.ID, wallet.Hex(),
		strings.Join(sums, ", "), *out)
	return nil
}

// checkPlanned decodes a plan item's unsigned transaction and checks it is
// what the item says: its chain and its digest. A plan file altered after
// export fails here, before any key is used.
func checkPlanned(i int, it client.OfflineItem, chainID *big.Int, txSigner types.Signer) (*types.Transaction, error) {
	raw, err := hexutil.Decode(it.UnsignedTx)
	if err != nil {
		return nil, fmt.Errorf("item %d (payout %s): unsigned_tx is not 0x-hex: %v", i, it.PayoutID, err)
	}
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(raw); err != nil {
		return nil, fmt.Errorf("item %d (payout %s): unsigned_tx is not a transaction: %v", i, it.PayoutID, err)
	}
	if tx.Nonce() != it.Nonce {
		return nil, fmt.Errorf("item %d (payout %s): the transaction's nonce is %d, the plan says %d", i, it.PayoutID, tx.Nonce(), it.Nonce)
	}
	if tx.Type() != types.LegacyTxType && (tx.ChainId() == nil || tx.ChainId().Cmp(chainID) != 0) {
		return nil, fmt.Errorf("item %d (payout %s): the transaction is for chain %v, the plan for %v", i, it.PayoutID, tx.ChainId(), chainID)
	}
	if got := txSigner.Hash(tx).Hex(); !strings.EqualFold(got, it.Digest) {
		return nil, fmt.Errorf("item %d (payout %s): the transaction's digest is %s, the plan says %s: the file was altered", i, it.PayoutID, got, it.Digest)
	}
	return tx, nil
}

// txSubmitSigned submits a signed file and waits until the wallet's sender
// has stored and broadcast it.
func txSubmitSigned(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := txFlags("submit-signed", stderr)
	pos, err := parseFlags(fs, args, 1, "a signed file (sluice sign --offline)")
	if err != nil {
		return err
	}
	b, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	var sf signedFile
	if err := json.Unmarshal(b, &sf); err != nil || sf.PlanID == "" || len(sf.SignedTransactions) == 0 {
		return fmt.Errorf("tx submit-signed: %s is not a signed file (plan_id and signed_transactions are required)", pos[0])
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	if _, err := c.SubmitSignedOfflinePlan(ctx, sf.PlanID, sf.SignedTransactions); err != nil {
		return err
	}
	pl, err := waitPlan(ctx, c, sf.PlanID, stderr, func(p *client.OfflinePlan) bool { return p.Status != client.PlanSigned })
	if err != nil {
		return err
	}
	if pl.Status != client.PlanSubmitted {
		return fmt.Errorf("plan %s is %s, not submitted: %s", pl.ID, pl.Status, pl.Note)
	}
	if f.json {
		return writeJSONOut(stdout, pl)
	}
	for _, it := range pl.Items {
		fmt.Fprintf(stdout, "%s\tnonce %d\t%s\n", it.PayoutID, it.Nonce, it.TxHash)
	}
	fmt.Fprintf(stdout, "plan %s submitted: %d transaction(s) stored and broadcast; follow them with sluice payout get\n", pl.ID, len(pl.Items))
	return nil
}

// txVoidUnsigned gives a plan up.
func txVoidUnsigned(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := txFlags("void-unsigned", stderr)
	pos, err := parseFlags(fs, args, 1, "a plan id")
	if err != nil {
		return err
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	if _, err := c.VoidOfflinePlan(ctx, pos[0]); err != nil {
		return err
	}
	pl, err := waitPlan(ctx, c, pos[0], stderr, func(p *client.OfflinePlan) bool { return p.Status != client.PlanVoidRequested })
	if err != nil {
		return err
	}
	if pl.Status != client.PlanVoided {
		return errors.New("plan " + pl.ID + " was not voided: " + pl.Note)
	}
	if f.json {
		return writeJSONOut(stdout, pl)
	}
	fmt.Fprintf(stdout, "plan %s voided: its %d payout(s) are queued again\n", pl.ID, len(pl.Items))
	return nil
}
