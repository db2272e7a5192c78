package signer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/bnb-chain/tss-lib/v3/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v3/tss"
	"github.com/ethereum/go-ethereum/accounts/keystore"
	ethcommon "github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// mpcShareVersion is the version of the share file format.
const mpcShareVersion = 1

// mpcShareFile is a share at rest: the group in clear (so an operator can
// see which wallet a file belongs to without its passphrase) and the
// party's tss-lib save data, Paillier pre-parameters included, encrypted
// with the keystore's scrypt and AES-128-CTR.
type mpcShareFile struct {
	Version   int                 `json:"version"`
	Scheme    string              `json:"scheme"`
	Address   ethcommon.Address   `json:"address"`
	PublicKey string              `json:"public_key"`
	Index     int                 `json:"index"`
	Parties   int                 `json:"parties"`
	Threshold int                 `json:"threshold"`
	Crypto    keystore.CryptoJSON `json:"crypto"`
}

const mpcScheme = "tss-lib/v3 ecdsa secp256k1"

// MPCKeygenOptions tune a key generation.
type MPCKeygenOptions struct {
	// Parties is n (default 3); Threshold is how many sign (default 2).
	Parties, Threshold int
	// PreParamsTimeout bounds the safe-prime search of each party's
	// Paillier pre-parameters (default 5 minutes). It is the slow part:
	// tens of seconds to minutes per party on 2 cores.
	PreParamsTimeout time.Duration
	// PreParams, when set, are the parties' pre-parameters generated
	// ahead (one per party, from a pool: `sluice mpc preparams`), so that
	// no safe prime is searched now.
	PreParams []*MPCPreParams
}

// MPCKeygen runs a distributed key generation with every party in this
// process and returns the parties (shares in memory) in index order. The
// joint private key never exists anywhere.
func MPCKeygen(ctx context.Context, o MPCKeygenOptions) ([]*MPCLocalParty, error) {
	if o.Parties == 0 {
		o.Parties = 3
	}
	if o.Threshold == 0 {
		o.Threshold = 2
	}
	if o.PreParamsTimeout == 0 {
		o.PreParamsTimeout = 5 * time.Minute
	}
	if o.Threshold < 2 || o.Threshold > o.Parties {
		return nil, fmt.Errorf("mpc keygen: threshold %d of %d parties: want 2 <= threshold <= parties", o.Threshold, o.Parties)
	}
	if len(o.PreParams) > 0 {
		if len(o.PreParams) != o.Parties {
			return nil, fmt.Errorf("mpc keygen: %d pre-parameters given for %d parties", len(o.PreParams), o.Parties)
		}
		pre := make([]*keygen.LocalPreParams, len(o.PreParams))
		for i, pp := range o.PreParams {
			pre[i] = &pp.p
		}
		return mpcKeygen(ctx, o, pre)
	}
	pre, err := mpcPreParams(ctx, o.Parties, o.PreParamsTimeout)
	if err != nil {
		return nil, err
	}
	return mpcKeygen(ctx, o, pre)
}

// mpcKeygen runs the key generation proper with pre-parameters at hand.
func mpcKeygen(ctx context.Context, o MPCKeygenOptions, pre []*keygen.LocalPreParams) ([]*MPCLocalParty, error) {
	indexes := make([]int, o.Parties)
	for i := range indexes {
		indexes[i] = i + 1
	}
	ids := partyIDs(indexes)
	router := NewMPCRouter(indexes)
	nonce := sessionID() // binds the keygen's proofs to this run
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	saves := make([]*keygen.LocalPartySaveData, o.Parties)
	errs := make([]error, o.Parties)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			params := tss.NewParameters(tss.S256(), tss.NewPeerContext(ids), id, o.Parties, o.Threshold-1)
			params.SetSessionNonce(nonce)
			out := make(chan tss.Message, 256)
			end := make(chan *keygen.LocalPartySaveData, 1)
			party := keygen.NewLocalParty(params, out, end, *pre[i])
			saves[i], errs[i] = runParty(ctx, party, ids, out, end, router.Transport(indexes[i]))
			if errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	if err := firstCause(errs); err != nil {
		return nil, fmt.Errorf("mpc keygen: %w", err)
	}
	return mpcPartiesFrom(saves, o)
}

// mpcPreParams generates each party's Paillier pre-parameters, one party
// at a time with every core, each within timeout.
func mpcPreParams(ctx context.Context, n int, timeout time.Duration) ([]*keygen.LocalPreParams, error) {
	pre := make([]*keygen.LocalPreParams, n)
	for i := range pre {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		p, err := keygen.GeneratePreParamsWithContext(pctx, runtime.NumCPU())
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("mpc keygen: pre-parameters of party %d not found within %s: %w", i+1, timeout, err)
		}
		pre[i] = p
	}
	return pre, nil
}

// mpcPartiesFrom checks that every party ended with the same group key and
// wraps the save data.
func mpcPartiesFrom(saves []*keygen.LocalPartySaveData, o MPCKeygenOptions) ([]*MPCLocalParty, error) {
	pub := crypto.FromECDSAPub(saves[0].ECDSAPub.ToECDSAPubKey())
	g := MPCGroup{Address: crypto.PubkeyToAddress(*saves[0].ECDSAPub.ToECDSAPubKey()), PublicKey: pub, Parties: o.Parties, Threshold: o.Threshold}
	parties := make([]*MPCLocalParty, len(saves))
	for i, s := range saves {
		if !s.ECDSAPub.Equals(saves[0].ECDSAPub) {
			return nil, fmt.Errorf("mpc keygen: party %d ended with another group key", i+1)
		}
		parties[i] = &MPCLocalParty{index: int(s.ShareID.Int64()), group: g, data: *s}
	}
	return parties, nil
}

// WriteMPCShare encrypts the party's share with passphrase (scrypt N as in
// keystore.StandardScryptN, or keystore.LightScryptN for tests) and writes
// it to path with mode 0600; an existing file is never overwritten.
func WriteMPCShare(path string, p *MPCLocalParty, passphrase string, scryptN int) error {
	plain, err := json.Marshal(p.data)
	if err != nil {
		return fmt.Errorf("encode share %d: %w", p.index, err)
	}
	cj, err := keystore.EncryptDataV3(plain, []byte(passphrase), scryptN, keystore.StandardScryptP)
	if err != nil {
		return fmt.Errorf("encrypt share %d: %w", p.index, err)
	}
	f := mpcShareFile{Version: mpcShareVersion, Scheme: mpcScheme, Address: p.group.Address,
		PublicKey: fmt.Sprintf("%x", p.group.PublicKey), Index: p.index, Parties: p.group.Parties, Threshold: p.group.Threshold, Crypto: cj}
	blob, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create share dir: %w", err)
	}
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write share %d: %w", p.index, err)
	}
	if _, err := out.Write(append(blob, '\n')); err != nil {
		out.Close()
		return fmt.Errorf("write share %d: %w", p.index, err)
	}
	return out.Close()
}

// ErrMPCPassphrase means a share file did not decrypt with the passphrase.
var ErrMPCPassphrase = errors.New("wrong passphrase")

// OpenMPCShare decrypts a share file into a local party. The error never
// contains the passphrase.
func OpenMPCShare(path, passphrase string) (*MPCLocalParty, error) {
	blob, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read mpc share: %w", err)
	}
	var f mpcShareFile
	if err := json.Unmarshal(blob, &f); err != nil {
		return nil, fmt.Errorf("mpc share %s: not a share file: %w", path, err)
	}
	if f.Version != mpcShareVersion || f.Scheme != mpcScheme {
		return nil, fmt.Errorf("mpc share %s: version %d scheme %q, want %d %q", path, f.Version, f.Scheme, mpcShareVersion, mpcScheme)
	}
	plain, err := keystore.DecryptDataV3(f.Crypto, passphrase)
	if err != nil {
		if errors.Is(err, keystore.ErrDecrypt) {
			return nil, fmt.Errorf("mpc share %s: %w", path, ErrMPCPassphrase)
		}
		return nil, fmt.Errorf("mpc share %s: %w", path, err)
	}
	var data keygen.LocalPartySaveData
	if err := json.Unmarshal(plain, &data); err != nil {
		return nil, fmt.Errorf("mpc share %s: decode: %w", path, err)
	}
	return mpcPartyFromFile(path, f, data)
}

// mpcPartyFromFile checks that the decrypted share matches its clear
// header.
func mpcPartyFromFile(path string, f mpcShareFile, data keygen.LocalPartySaveData) (*MPCLocalParty, error) {
	if data.ECDSAPub == nil || data.ShareID == nil || data.Xi == nil {
		return nil, fmt.Errorf("mpc share %s: incomplete share", path)
	}
	pub := data.ECDSAPub.ToECDSAPubKey()
	if addr := crypto.PubkeyToAddress(*pub); addr != f.Address || data.ShareID.Int64() != int64(f.Index) {
		return nil, fmt.Errorf("mpc share %s: the encrypted share (%s, index %d) does not match its header (%s, index %d)",
			path, addr.Hex(), data.ShareID.Int64(), f.Address.Hex(), f.Index)
	}
	g := MPCGroup{Address: f.Address, PublicKey: crypto.FromECDSAPub(pub), Parties: f.Parties, Threshold: f.Threshold}
	if !strings.EqualFold(f.PublicKey, fmt.Sprintf("%x", g.PublicKey)) || len(data.Ks) != f.Parties {
		return nil, fmt.Errorf("mpc share %s: the header's key or party count does not match the share", path)
	}
	return &MPCLocalParty{index: f.Index, group: g, data: data}, nil
}

// OpenMPC decrypts the share files (at least the threshold of them; all
// with one passphrase) and returns a signer whose parties all run here.
func OpenMPC(paths []string, passphrase string) (*MPC, error) {
	parties := make([]MPCParty, 0, len(paths))
	for _, path := range paths {
		p, err := OpenMPCShare(path, passphrase)
		if err != nil {
			return nil, err
		}
		parties = append(parties, p)
	}
	return NewMPC(parties)
}
