package evm

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"
)

// transferSelector is the first four bytes of keccak256("transfer(address,uint256)").
var transferSelector = []byte{0xa9, 0x05, 0x9c, 0xbb}

// ERC20TransferData encodes transfer(to, amount) call data.
func ERC20TransferData(to common.Address, amount *big.Int) []byte {
	data := make([]byte, 4+32+32)
	copy(data, transferSelector)
	copy(data[4+12:4+32], to.Bytes())
	amount.FillBytes(data[4+32:])
	return data
}

// Call is what a payout asks the chain to do: the account and value the
// transaction targets, and its call data.
type Call struct {
	From  common.Address
	To    common.Address
	Value *big.Int
	Data  []byte
	// Delegate, when set, makes the transaction also delegate From's code
	// to this contract (EIP-7702, a set-code transaction whose
	// authorization the wallet signs); it is estimated as if delegated.
	Delegate *common.Address
}

// TransferCall builds the call for paying amount of an asset to a
// recipient: a plain value transfer for the native coin (token nil), or an
// ERC-20 transfer on the token contract.
func TransferCall(from common.Address, token *common.Address, to common.Address, amount *big.Int) Call {
	if token == nil {
		return Call{From: from, To: to, Value: new(big.Int).Set(amount)}
	}
	return Call{From: from, To: *token, Value: new(big.Int), Data: ERC20TransferData(to, amount)}
}

// Fees are the EIP-1559 fee fields of a transaction. Legacy marks a chain
// without EIP-1559: the transaction is then signed as an EIP-155 legacy
// one whose gas price is MaxFeePerGas (both fields hold it).
type Fees struct {
	MaxFeePerGas         *big.Int
	MaxPriorityFeePerGas *big.Int
	Legacy               bool
}

// FeesOf returns the fee fields of a signed transaction.
func FeesOf(tx *types.Transaction) Fees {
	if tx.Type() == types.LegacyTxType {
		return Fees{MaxFeePerGas: tx.GasPrice(), MaxPriorityFeePerGas: tx.GasPrice(), Legacy: true}
	}
	return Fees{MaxFeePerGas: tx.GasFeeCap(), MaxPriorityFeePerGas: tx.GasTipCap()}
}

// CallOf returns the call a signed transaction makes, from sender.
func CallOf(from common.Address, tx *types.Transaction) Call {
	c := Call{From: from, Value: tx.Value(), Data: tx.Data()}
	if to := tx.To(); to != nil {
		c.To = *to
	}
	if auths := tx.SetCodeAuthorizations(); len(auths) > 0 {
		target := auths[0].Address
		c.Delegate = &target
	}
	return c
}

// DigestSigner signs a 32-byte digest, returning [R || S || V] with V in {0, 1}.
type DigestSigner interface {
	SignDigest(ctx context.Context, digest [32]byte) ([]byte, error)
}

// txSigner is a signer that must see the transaction, not only its digest
// (signer.TxSigner: a remote signer re-checks what it signs).
type txSigner interface {
	SignTransaction(ctx context.Context, chainID *big.Int, unsigned []byte, digest [32]byte) ([]byte, error)
}

// InProcessKey is implemented by signers that sign in this process with
// the private key of the address they report (a decrypted keystore,
// KeySigner) and say so with true: their signatures recover to that
// address by construction, so SignTransfer does not spend a signature
// recovery (it costs more than signing) to check them. Every other
// signer's signature (remote, HSM, MPC, failover) is recovered and checked.
type InProcessKey interface {
	InProcessKey() bool
	Address() common.Address
}

// ErrWrongSender means a signature recovered to another address than the
// wallet's: the signer holds a different key. Nothing may be stored.
var ErrWrongSender = errors.New("signature recovers to the wrong sender")

// UnsignedTransfer builds the transaction for a call at a nonce
// (dynamic-fee, or legacy when fees.Legacy), unsigned: what offline
// signing exports. A call that delegates the wallet (EIP-7702) needs an
// authorization signed with the transaction and is refused.
func UnsignedTransfer(chainID *big.Int, nonce, gas uint64, fees Fees, c Call) (*types.Transaction, error) {
	to := c.To
	switch {
	case c.Delegate != nil:
		return nil, errors.New("a delegation (EIP-7702) cannot be planned unsigned: its authorization is signed with it")
	case fees.Legacy:
		return types.NewTx(&types.LegacyTx{
			Nonce: nonce, GasPrice: fees.MaxFeePerGas, Gas: gas, To: &to, Value: c.Value, Data: c.Data,
		}), nil
	default:
		return types.NewTx(&types.DynamicFeeTx{
			ChainID: chainID, Nonce: nonce, GasTipCap: fees.MaxPriorityFeePerGas, GasFeeCap: fees.MaxFeePerGas,
			Gas: gas, To: &to, Value: c.Value, Data: c.Data,
		}), nil
	}
}

// SignTransfer builds the transaction for a call at a nonce (dynamic-fee,
// or legacy when fees.Legacy), signs its digest and checks that the
// signature recovers to call.From.
func SignTransfer(ctx context.Context, s DigestSigner, chainID *big.Int, nonce, gas uint64, fees Fees, c Call) (*types.Transaction, error) {
	to := c.To
	var tx *types.Transaction
	switch {
	case c.Delegate != nil:
		if fees.Legacy {
			return nil, errors.New("a delegation (EIP-7702) needs a chain with EIP-1559 fees")
		}
		auth, err := signAuthorization(ctx, s, chainID, *c.Delegate, nonce+1)
		if err != nil {
			return nil, err
		}
		tx = types.NewTx(&types.SetCodeTx{
			ChainID: uint256.MustFromBig(chainID), Nonce: nonce, GasTipCap: uint256.MustFromBig(fees.MaxPriorityFeePerGas),
			GasFeeCap: uint256.MustFromBig(fees.MaxFeePerGas), Gas: gas, To: to, Value: uint256.MustFromBig(c.Value),
			Data: c.Data, AuthList: []types.SetCodeAuthorization{auth},
		})
	default:
		var err error
		if tx, err = UnsignedTransfer(chainID, nonce, gas, fees, c); err != nil {
			return nil, err
		}
	}
	signer := types.LatestSignerForChainID(chainID)
	digest := signer.Hash(tx)
	var sig []byte
	var err error
	if ts, ok := s.(txSigner); ok { // it checks the transaction itself before signing
		var unsigned []byte
		if unsigned, err = tx.MarshalBinary(); err != nil {
			return nil, fmt.Errorf("encode transaction: %w", err)
		}
		sig, err = ts.SignTransaction(ctx, chainID, unsigned, digest)
	} else {
		sig, err = s.SignDigest(ctx, digest)
	}
	if err != nil {
		return nil, fmt.Errorf("sign nonce %d: %w", nonce, err)
	}
	signed, err := tx.WithSignature(signer, sig)
	if err != nil {
		return nil, fmt.Errorf("attach signature: %w", err)
	}
	if k, ok := s.(InProcessKey); ok && k.InProcessKey() {
		if a := k.Address(); a != c.From {
			return nil, fmt.Errorf("%w: the key is of %s, want %s", ErrWrongSender, a.Hex(), c.From.Hex())
		}
		return signed, nil
	}
	from, err := types.Sender(signer, signed)
	if err != nil {
		return nil, fmt.Errorf("recover sender: %w", err)
	}
	if from != c.From {
		return nil, fmt.Errorf("%w: got %s, want %s", ErrWrongSender, from.Hex(), c.From.Hex())
	}
	return signed, nil
}

// KeySigner signs with an in-memory private key. The keystore backend uses
// it after decrypting; tests use it directly.
type KeySigner struct {
	Key *ecdsa.PrivateKey
}

// SignDigest signs with secp256k1; go-ethereum's signatures are low-S.
func (k KeySigner) SignDigest(_ context.Context, digest [32]byte) ([]byte, error) {
	return crypto.Sign(digest[:], k.Key)
}

// InProcessKey says that the key signs in this process (see InProcessKey).
func (KeySigner) InProcessKey() bool { return true }

// Address is the key's account.
func (k KeySigner) Address() common.Address { return crypto.PubkeyToAddress(k.Key.PublicKey) }
