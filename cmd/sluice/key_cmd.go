package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/signer"
)

// runKey runs `sluice key new|import|export|list`: keystore v3 files that
// geth, clef and most wallets read and write. Passphrases come from
// environment variables and private keys from stdin, never from flags.
func runKey(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: key: want new, import, export or list", errUsage)
	}
	fs := flag.NewFlagSet("key "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "./sluice-data/keystore", "the keystore directory")
	passEnv := fs.String("passphrase-env", "SLUICE_KEYSTORE_PASSPHRASE", "environment variable holding the passphrase of the key written")
	asJSON := fs.Bool("json", false, "print JSON")
	switch args[0] {
	case "new":
		if err := fs.Parse(args[1:]); err != nil {
			return fmt.Errorf("%w: key new: %v", errUsage, err)
		}
		pass, err := passphrase(*passEnv)
		if err != nil {
			return err
		}
		path, ks, err := signer.CreateKeystore(*dir, pass, signer.ChosenPassphrase)
		if err != nil {
			return err
		}
		return printKey(stdout, *asJSON, ks.Address(), path)
	case "import":
		from := fs.String("keystore", "", "import this keystore v3 file (its passphrase in --from-passphrase-env)")
		fromEnv := fs.String("from-passphrase-env", "SLUICE_IMPORT_PASSPHRASE", "environment variable holding the imported file's passphrase")
		hexStdin := fs.Bool("hex-stdin", false, "read a hex private key from stdin instead")
		if err := fs.Parse(args[1:]); err != nil {
			return fmt.Errorf("%w: key import: %v", errUsage, err)
		}
		if (*from == "") == !*hexStdin {
			return fmt.Errorf("%w: key import needs exactly one of --keystore FILE and --hex-stdin", errUsage)
		}
		pass, err := passphrase(*passEnv)
		if err != nil {
			return err
		}
		var key *signer.Keystore
		if *hexStdin {
			line, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && line == "" {
				return fmt.Errorf("key import: read the key from stdin: %w", err)
			}
			k, err := crypto.HexToECDSA(strings.TrimPrefix(strings.TrimSpace(line), "0x"))
			if err != nil {
				return fmt.Errorf("key import: stdin does not hold a hex secp256k1 private key")
			}
			key = signer.FromKey(k)
		} else {
			fromPass, err := passphrase(*fromEnv)
			if err != nil {
				return err
			}
			if key, err = signer.OpenKeystore(*from, fromPass); err != nil {
				return err
			}
		}
		path, ks, err := signer.WriteKeystore(*dir, key.PrivateKey(), pass, signer.ChosenPassphrase)
		if err != nil {
			return err
		}
		return printKey(stdout, *asJSON, ks.Address(), path)
	case "export":
		from := fs.String("keystore", "", "the keystore file to export (its passphrase in --passphrase-env)")
		toEnv := fs.String("to-passphrase-env", "SLUICE_EXPORT_PASSPHRASE", "environment variable holding the exported file's passphrase")
		out := fs.String("out", "", "directory to write the exported keystore v3 file to (mode 0600)")
		if err := fs.Parse(args[1:]); err != nil {
			return fmt.Errorf("%w: key export: %v", errUsage, err)
		}
		if *from == "" || *out == "" {
			return fmt.Errorf("%w: key export needs --keystore FILE and --out DIR", errUsage)
		}
		pass, err := passphrase(*passEnv)
		if err != nil {
			return err
		}
		toPass, err := passphrase(*toEnv)
		if err != nil {
			return err
		}
		ks, err := signer.OpenKeystore(*from, pass)
		if err != nil {
			return err
		}
		path, _, err := signer.WriteKeystore(*out, ks.PrivateKey(), toPass, signer.ChosenPassphrase)
		if err != nil {
			return err
		}
		return printKey(stdout, *asJSON, ks.Address(), path)
	case "list":
		if err := fs.Parse(args[1:]); err != nil {
			return fmt.Errorf("%w: key list: %v", errUsage, err)
		}
		return listKeys(stdout, *dir, *asJSON)
	default:
		return fmt.Errorf("%w: key: unknown subcommand %q (new, import, export, list)", errUsage, args[0])
	}
}

func passphrase(env string) (string, error) {
	v, ok := os.LookupEnv(env)
	if !ok || v == "" {
		return "", fmt.Errorf("passphrase: $%s is not set", env)
	}
	return v, nil
}

type keyEntry struct {
	Address string `json:"address"`
	Path    string `json:"path"`
}

func printKey(w io.Writer, asJSON bool, addr common.Address, path string) error {
	if asJSON {
		return json.NewEncoder(w).Encode(keyEntry{addr.Hex(), path})
	}
	_, err := fmt.Fprintf(w, "%s  %s\n", addr.Hex(), path)
	return err
}

// listKeys prints the address of every keystore file in dir, read from
// the file without decrypting it.
func listKeys(w io.Writer, dir string, asJSON bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("key list: %w", err)
	}
	var keys []keyEntry
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		blob, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var f struct {
			Address string          `json:"address"`
			Crypto  json.RawMessage `json:"crypto"`
		}
		if json.Unmarshal(blob, &f) != nil || !common.IsHexAddress(f.Address) || f.Crypto == nil {
			continue // not a keystore file
		}
		keys = append(keys, keyEntry{common.HexToAddress(f.Address).Hex(), path})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Path < keys[j].Path })
	for _, k := range keys {
		if err := printKey(w, asJSON, common.HexToAddress(k.Address), k.Path); err != nil {
			return err
		}
	}
	return nil
}
