package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"

	"github.com/sluicepay/sluice/internal/signer"
)

const mpcUsage = `Usage:
  sluice mpc keygen --out DIR [--parties 3] [--threshold 2] [--passphrase-env SLUICE_MPC_PASSPHRASE]
                    [--preparams-timeout 5m] [--json]

Runs a threshold key generation in this process and writes DIR/share-1.json ..
share-N.json, each encrypted with the passphrase; prints the group's address.
`

// mpcKeygenResult is what `sluice mpc keygen --json` prints.
type mpcKeygenResult struct {
	Address   string   `json:"address"`
	Parties   int      `json:"parties"`
	Threshold int      `json:"threshold"`
	Shares    []string `json:"shares"`
	Seconds   float64  `json:"seconds"`
}

// mpcKeygen is signer.MPCKeygen; tests replace it (a real keygen takes
// minutes).
var mpcKeygen = signer.MPCKeygen

// runMPC runs `sluice mpc keygen`. The passphrase comes from an
// environment variable, never from a flag.
func runMPC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "keygen" {
		fmt.Fprint(stderr, mpcUsage)
		return fmt.Errorf("%w: mpc: want keygen", errUsage)
	}
	fset := flag.NewFlagSet("mpc keygen", flag.ContinueOnError)
	fset.SetOutput(stderr)
	out := fset.String("out", "", "directory to write share-1.json .. share-N.json to")
	parties := fset.Int("parties", 3, "how many parties hold a share")
	threshold := fset.Int("threshold", 2, "how many parties a signature needs")
	passEnv := fset.String("passphrase-env", "SLUICE_MPC_PASSPHRASE", "environment variable holding the shares' passphrase")
	timeout := fset.Duration("preparams-timeout", 5*time.Minute, "bound on each party's safe-prime search")
	asJSON := fset.Bool("json", false, "print JSON")
	if err := fset.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: mpc keygen: %v", errUsage, err)
	}
	if *out == "" {
		return fmt.Errorf("%w: mpc keygen: --out DIR is required", errUsage)
	}
	if *threshold < 2 || *threshold > *parties {
		return fmt.Errorf("%w: mpc keygen: --threshold %d of --parties %d: want 2 <= threshold <= parties", errUsage, *threshold, *parties)
	}
	pass, err := passphrase(*passEnv)
	if err != nil {
		return err
	}
	paths := make([]string, *parties)
	for i := range paths {
		paths[i] = filepath.Join(*out, fmt.Sprintf("share-%d.json", i+1))
		if _, err := os.Stat(paths[i]); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("mpc keygen: %s exists: refusing to overwrite a share", paths[i])
		}
	}
	fmt.Fprintf(stderr, "generating %d-of-%d key shares (safe primes: tens of seconds to minutes per party)...\n", *threshold, *parties)
	start := time.Now()
	ps, err := mpcKeygen(ctx, signer.MPCKeygenOptions{Parties: *parties, Threshold: *threshold, PreParamsTimeout: *timeout})
	if err != nil {
		return err
	}
	for i, p := range ps {
		if err := signer.WriteMPCShare(paths[i], p, pass, keystore.StandardScryptN); err != nil {
			return err
		}
	}
	res := mpcKeygenResult{Address: ps[0].Group().Address.Hex(), Parties: *parties, Threshold: *threshold,
		Shares: paths, Seconds: time.Since(start).Seconds()}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "%s  %d-of-%d in %.0fs\n", res.Address, res.Threshold, res.Parties, res.Seconds)
	for _, p := range paths {
		fmt.Fprintf(stdout, "  %s\n", p)
	}
	return nil
}
