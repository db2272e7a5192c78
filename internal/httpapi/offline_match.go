package httpapi

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluicepay/sluice/internal/payout"
)

// mismatchError says why a signed transaction does not match its planned
// attempt.
type mismatchError struct {
	Index  int    // in the signed file, from 0
	Nonce  uint64 // the planned nonce, when known
	Reason string
}

func (e *mismatchError) Error() string {
	return fmt.Sprintf("signed transaction %d (nonce %d): %s", e.Index, e.Nonce, e.Reason)
}

// matchSigned checks a signed transaction against the plan's item it
// claims to be: it must decode, be signed by the plan's wallet, and have
// exactly the planned signing hash (which covers chain id, nonce, fees,
// gas, destination, value and data). It returns the decoded transaction.
func matchSigned(pl *payout.OfflinePlan, index int, raw []byte) (*types.Transaction, *payout.OfflineItem, error) {
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(raw); err != nil {
		return nil, nil, &mismatchError{Index: index, Reason: "not a signed transaction: " + err.Error()}
	}
	var item *payout.OfflineItem
	for i := range pl.Items {
		if pl.Items[i].Nonce == tx.Nonce() {
			item = &pl.Items[i]
		}
	}
	if item == nil {
		return nil, nil, &mismatchError{Index: index, Nonce: tx.Nonce(), Reason: fmt.Sprintf("plan %s has no transaction at this nonce", pl.ID)}
	}
	if tx.ChainId() == nil || tx.ChainId().Cmp(new(big.Int).SetUint64(pl.ChainID)) != 0 {
		return nil, nil, &mismatchError{Index: index, Nonce: item.Nonce, Reason: fmt.Sprintf("chain id %v, planned %d", tx.ChainId(), pl.ChainID)}
	}
	signer := types.LatestSignerForChainID(new(big.Int).SetUint64(pl.ChainID))
	if got := signer.Hash(tx); got != item.Digest {
		return nil, nil, &mismatchError{Index: index, Nonce: item.Nonce, Reason: "its fields (to, value, data, gas or fees) differ from the planned transaction's"}
	}
	from, err := types.Sender(signer, tx)
	if err != nil {
		return nil, nil, &mismatchError{Index: index, Nonce: item.Nonce, Reason: "bad signature: " + err.Error()}
	}
	if from != pl.Wallet {
		return nil, nil, &mismatchError{Index: index, Nonce: item.Nonce, Reason: fmt.Sprintf("signed by %s, not by the wallet %s", from.Hex(), pl.Wallet.Hex())}
	}
	return tx, item, nil
}
