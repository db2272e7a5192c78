package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluicepay/sluice/internal/signer"
)

// devData is what the sandbox and the dev chain keep in their data dir: the
// hot wallet's encrypted key, its passphrase (only when generated) and the
// API key, so that a restart finds the same wallet and key.
type devData struct {
	dir            string
	wallet         *signer.Keystore // the first hot wallet, funded at genesis
	keystorePath   string
	extra          []devWallet // more hot wallets, funded from the first
	passphraseFile string      // "" when the passphrase came from the environment
	apiKey         string
	notes          []string // what was created, to tell the user
}

const passphraseEnv = "SLUICE_KEYSTORE_PASSPHRASE"

// devWallet is a hot wallet beyond the first.
type devWallet struct {
	ks   *signer.Keystore
	path string
}

// openDevData creates or reopens a data dir's wallets and API key. infoFile
// (sandbox.json or devchain.json) holds the API key of an earlier run.
func openDevData(dir, infoFile string, wallets int, w io.Writer) (*devData, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	d := &devData{dir: dir}
	pass, err := d.passphrase()
	if err != nil {
		return nil, err
	}
	kind := passphraseKind(pass, d.passphraseFile != "")
	ks, path, err := d.openWallet(filepath.Join(dir, "keystore"), pass, kind)
	if err != nil {
		return nil, err
	}
	d.wallet, d.keystorePath = ks, path
	for i := 1; i < wallets; i++ {
		ks, path, err := d.openWallet(filepath.Join(dir, "keystore", fmt.Sprintf("extra-%d", i)), pass, kind)
		if err != nil {
			return nil, err
		}
		d.extra = append(d.extra, devWallet{ks: ks, path: path})
	}
	if err := d.loadAPIKey(filepath.Join(dir, infoFile)); err != nil {
		return nil, err
	}
	for _, n := range d.notes {
		fmt.Fprintln(w, n)
	}
	return d, nil
}

// passphrase comes from $SLUICE_KEYSTORE_PASSPHRASE, else from the data
// dir's passphrase file, else is generated and stored with mode 0600.
func (d *devData) passphrase() (string, error) {
	if v := os.Getenv(passphraseEnv); v != "" {
		return v, nil
	}
	path := filepath.Join(d.dir, "keystore", "passphrase")
	b, err := os.ReadFile(path)
	if err == nil {
		d.passphraseFile = path
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read passphrase: %w", err)
	}
	pass := randomHex(generatedPassphraseLen / 2)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create keystore dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(pass+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write passphrase: %w", err)
	}
	d.passphraseFile = path
	d.notes = append(d.notes, fmt.Sprintf("No $%s set: generated a keystore passphrase and stored it in %s (mode 0600).", passphraseEnv, path))
	return pass, nil
}

// generatedPassphraseLen is the length of the passphrase the sandbox
// generates: 32 random bytes in hex.
const generatedPassphraseLen = 64

// passphraseKind says how hard new keys' passphrase must be stretched: a
// passphrase from the data dir's file in the form the sandbox generates
// is a 256-bit random secret kept beside the keys, one from the
// environment may have been chosen by a person.
func passphraseKind(pass string, fromFile bool) signer.Passphrase {
	if !fromFile || len(pass) != generatedPassphraseLen {
		return signer.ChosenPassphrase
	}
	if _, err := hex.DecodeString(pass); err != nil {
		return signer.ChosenPassphrase
	}
	return signer.RandomPassphrase
}

// openWallet decrypts the one keystore file in dir, or creates it with a
// scrypt cost for its kind of passphrase.
func (d *devData) openWallet(dir, pass string, kind signer.Passphrase) (*signer.Keystore, string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "UTC--*"))
	if err != nil {
		return nil, "", err
	}
	switch len(files) {
	case 0:
		path, ks, err := signer.CreateKeystore(dir, pass, kind)
		if err != nil {
			return nil, "", err
		}
		d.notes = append(d.notes, fmt.Sprintf("Created hot wallet %s, key encrypted in %s.", ks.Address().Hex(), path))
		return ks, path, nil
	case 1:
		ks, err := signer.OpenKeystore(files[0], pass)
		if err != nil {
			return nil, "", fmt.Errorf("%w (the passphrase is $%s or %s)", err, passphraseEnv, filepath.Join(d.dir, "keystore", "passphrase"))
		}
		return ks, files[0], nil
	default:
		return nil, "", fmt.Errorf("%s holds %d keystore files; the sandbox expects exactly one", dir, len(files))
	}
}

// wallets lists every hot wallet's address and keystore path, first first.
func (d *devData) wallets() []devWallet {
	return append([]devWallet{{ks: d.wallet, path: d.keystorePath}}, d.extra...)
}

// loadAPIKey takes $SLUICE_API_KEY, else the key of the last run, else a
// new sk_test_ key.
func (d *devData) loadAPIKey(infoPath string) error {
	if v := os.Getenv("SLUICE_API_KEY"); v != "" {
		d.apiKey = v
		return nil
	}
	var prev struct {
		APIKey string `json:"api_key"`
	}
	b, err := os.ReadFile(infoPath)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &prev); err != nil {
			return fmt.Errorf("read %s: %w", infoPath, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read %s: %w", infoPath, err)
	}
	d.apiKey = prev.APIKey
	if d.apiKey == "" {
		d.apiKey = "sk_test_" + randomHex(24)
	}
	return nil
}

// writeJSON writes v to DIR/name with mode 0600 (it holds the API key).
func writeJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o600)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (d *devData) addresses() []string {
	var out []string
	for _, w := range d.wallets() {
		out = append(out, w.ks.Address().Hex())
	}
	return out
}
