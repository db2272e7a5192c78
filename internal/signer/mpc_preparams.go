package signer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/bnb-chain/tss-lib/v3/ecdsa/keygen"
	"github.com/ethereum/go-ethereum/accounts/keystore"
)

// MPCPreParams are one party's Paillier pre-parameters: two pairs of safe
// primes, the slow part of a key generation (tens of seconds to minutes
// each on 2 cores). `sluice mpc preparams` generates them ahead into a
// pool of files that `sluice mpc keygen --preparams` then draws from, so
// that a keygen itself takes seconds. They are secret (a Paillier private
// key), so at rest they are encrypted like a share, and a keygen deletes
// the ones it used: pre-parameters are never used for two keys.
type MPCPreParams struct {
	p keygen.LocalPreParams
}

// mpcPreParamsFile is pre-parameters at rest.
type mpcPreParamsFile struct {
	Version int                 `json:"version"`
	Scheme  string              `json:"scheme"`
	Crypto  keystore.CryptoJSON `json:"crypto"`
}

const mpcPreParamsScheme = "tss-lib/v3 ecdsa preparams"

// GenerateMPCPreParams searches one party's safe primes with every core,
// within timeout.
func GenerateMPCPreParams(ctx context.Context, timeout time.Duration) (*MPCPreParams, error) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p, err := keygen.GeneratePreParamsWithContext(pctx, runtime.NumCPU())
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("mpc pre-parameters not found within %s: %w", timeout, err)
	}
	return &MPCPreParams{p: *p}, nil
}

// WriteMPCPreParams encrypts pp with passphrase into a new file in dir
// (mode 0600) and returns its path.
func WriteMPCPreParams(dir string, pp *MPCPreParams, passphrase string, scryptN int) (string, error) {
	plain, err := json.Marshal(pp.p)
	if err != nil {
		return "", fmt.Errorf("encode pre-parameters: %w", err)
	}
	cj, err := keystore.EncryptDataV3(plain, []byte(passphrase), scryptN, keystore.StandardScryptP)
	if err != nil {
		return "", fmt.Errorf("encrypt pre-parameters: %w", err)
	}
	blob, err := json.MarshalIndent(mpcPreParamsFile{Version: mpcShareVersion, Scheme: mpcPreParamsScheme, Crypto: cj}, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create pre-parameters dir: %w", err)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	path := filepath.Join(dir, fmt.Sprintf("preparams-%s-%s.json", time.Now().UTC().Format("20060102T150405Z"), hex.EncodeToString(id[:])))
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("write pre-parameters: %w", err)
	}
	if _, err := out.Write(append(blob, '\n')); err != nil {
		out.Close()
		return "", fmt.Errorf("write pre-parameters: %w", err)
	}
	return path, out.Close()
}

// OpenMPCPreParams decrypts and checks a pre-parameters file. The error
// never contains the passphrase.
func OpenMPCPreParams(path, passphrase string) (*MPCPreParams, error) {
	blob, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read mpc pre-parameters: %w", err)
	}
	var f mpcPreParamsFile
	if err := json.Unmarshal(blob, &f); err != nil || f.Version != mpcShareVersion || f.Scheme != mpcPreParamsScheme {
		return nil, fmt.Errorf("mpc pre-parameters %s: not a version %d %q file", path, mpcShareVersion, mpcPreParamsScheme)
	}
	plain, err := keystore.DecryptDataV3(f.Crypto, passphrase)
	if err != nil {
		if errors.Is(err, keystore.ErrDecrypt) {
			return nil, fmt.Errorf("mpc pre-parameters %s: %w", path, ErrMPCPassphrase)
		}
		return nil, fmt.Errorf("mpc pre-parameters %s: %w", path, err)
	}
	var p keygen.LocalPreParams
	if err := json.Unmarshal(plain, &p); err != nil || !p.ValidateWithProof() {
		return nil, fmt.Errorf("mpc pre-parameters %s: incomplete or invalid", path)
	}
	return &MPCPreParams{p: p}, nil
}

// MPCPreParamsPool lists the pre-parameter files in dir, oldest first.
func MPCPreParamsPool(dir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "preparams-*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths) // the names start with their creation time
	return paths, nil
}
