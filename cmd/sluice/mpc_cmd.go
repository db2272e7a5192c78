package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"

	"github.com/sluicepay/sluice/internal/signer"
)

const mpcUsage = `Usage:
  sluice mpc preparams --out DIR [--count 3] [--timeout 5m] [--passphrase-env SLUICE_MPC_PASSPHRASE]
  sluice mpc keygen --out DIR [--parties 3] [--threshold 2] [--passphrase-env SLUICE_MPC_PASSPHRASE]
                    [--preparams POOL_DIR | --preparams-timeout 5m] [--json]
  sluice mpc party --share FILE --tls-cert FILE --tls-key FILE --client-ca FILE [--peer-ca FILE]
                   [--listen 127.0.0.1:7443] [--passphrase-env SLUICE_MPC_PASSPHRASE]
                   [--limits FILE [--limits-state FILE|none]] [--engine-cn NAME,...] [--session-timeout 60s]

preparams searches --count parties' Paillier pre-parameters (safe primes: tens of
seconds to minutes each) ahead of time and adds them, encrypted, to the pool DIR.

keygen runs a threshold key generation in this process and writes
DIR/share-1.json .. share-N.json, each encrypted with the passphrase; prints the
group's address. Give each share to one party. With --preparams it draws the
parties' pre-parameters from that pool (and deletes them: never used twice) and
takes seconds; without, it searches them now.

party serves one share over HTTPS with mutual TLS: only clients whose certificate
the client CA signed (the engine, the other parties) get in. The party's own
certificate must have the common name sluice-mpc-party-N (N its share index) and
allow server and client authentication; --peer-ca (default --client-ca) checks
the other parties' certificates. Before taking part in a session the party
decodes the transaction and recomputes its digest, and checks --limits (the
format of 'sluice signer serve --limits') when given. What the limits counted is
kept in --limits-state (default: the share's path + .limits-state), synced before
each signature, so that a restart does not reset the daily caps.
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

// runMPC runs `sluice mpc keygen` and `sluice mpc party`. The passphrase
// comes from an environment variable, never from a flag.
func runMPC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "party" {
		return runMPCParty(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "preparams" {
		return runMPCPreParams(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "keygen" {
		fmt.Fprint(stderr, mpcUsage)
		return fmt.Errorf("%w: mpc: want keygen, preparams or party", errUsage)
	}
	fset := flag.NewFlagSet("mpc keygen", flag.ContinueOnError)
	fset.SetOutput(stderr)
	out := fset.String("out", "", "directory to write share-1.json .. share-N.json to")
	parties := fset.Int("parties", 3, "how many parties hold a share")
	threshold := fset.Int("threshold", 2, "how many parties a signature needs")
	passEnv := fset.String("passphrase-env", "SLUICE_MPC_PASSPHRASE", "environment variable holding the shares' passphrase")
	timeout := fset.Duration("preparams-timeout", 5*time.Minute, "bound on each party's safe-prime search")
	pool := fset.String("preparams", "", "draw the parties' pre-parameters from this pool (sluice mpc preparams)")
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
	o := signer.MPCKeygenOptions{Parties: *parties, Threshold: *threshold, PreParamsTimeout: *timeout}
	var used []string
	if *pool != "" {
		if o.PreParams, used, err = drawPreParams(*pool, *parties, pass); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "generating %d-of-%d key shares with pre-parameters from %s...\n", *threshold, *parties, *pool)
	} else {
		fmt.Fprintf(stderr, "generating %d-of-%d key shares (safe primes: tens of seconds to minutes per party)...\n", *threshold, *parties)
	}
	start := time.Now()
	ps, err := mpcKeygen(ctx, o)
	if err != nil {
		return err
	}
	for i, p := range ps {
		if err := signer.WriteMPCShare(paths[i], p, pass, keystore.StandardScryptN); err != nil {
			return err
		}
	}
	for _, u := range used { // pre-parameters are never used for a second key
		if err := os.Remove(u); err != nil {
			fmt.Fprintf(stderr, "warning: remove the used pre-parameters %s by hand: %v\n", u, err)
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

// mpcGeneratePreParams is signer.GenerateMPCPreParams; tests replace it
// (a real search takes minutes).
var mpcGeneratePreParams = signer.GenerateMPCPreParams

// runMPCPreParams runs `sluice mpc preparams`: it adds --count parties'
// pre-parameters to the pool.
func runMPCPreParams(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("mpc preparams", flag.ContinueOnError)
	fset.SetOutput(stderr)
	out := fset.String("out", "", "the pool directory to add pre-parameter files to")
	count := fset.Int("count", 3, "how many parties' pre-parameters to generate")
	timeout := fset.Duration("timeout", 5*time.Minute, "bound on each party's safe-prime search")
	passEnv := fset.String("passphrase-env", "SLUICE_MPC_PASSPHRASE", "environment variable holding the pool's passphrase")
	if err := fset.Parse(args); err != nil {
		return fmt.Errorf("%w: mpc preparams: %v", errUsage, err)
	}
	if *out == "" || *count < 1 {
		return fmt.Errorf("%w: mpc preparams: --out DIR and --count >= 1 are required", errUsage)
	}
	pass, err := passphrase(*passEnv)
	if err != nil {
		return err
	}
	for i := range *count {
		start := time.Now()
		pp, err := mpcGeneratePreParams(ctx, *timeout)
		if err != nil {
			return err
		}
		path, err := signer.WriteMPCPreParams(*out, pp, pass, keystore.StandardScryptN)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s  (%d of %d, %.0fs)\n", path, i+1, *count, time.Since(start).Seconds())
	}
	return nil
}

// drawPreParams opens the n oldest pre-parameters of the pool dir.
func drawPreParams(dir string, n int, pass string) ([]*signer.MPCPreParams, []string, error) {
	paths, err := signer.MPCPreParamsPool(dir)
	if err != nil {
		return nil, nil, err
	}
	if len(paths) < n {
		return nil, nil, fmt.Errorf("mpc keygen: the pool %s holds %d pre-parameters, %d needed: run sluice mpc preparams --out %s", dir, len(paths), n, dir)
	}
	pre := make([]*signer.MPCPreParams, n)
	for i, path := range paths[:n] {
		if pre[i], err = signer.OpenMPCPreParams(path, pass); err != nil {
			return nil, nil, err
		}
	}
	return pre, paths[:n], nil
}

// mpcPartyFlags are `sluice mpc party`'s flags.
type mpcPartyFlags struct {
	share, listen, cert, key, clientCA, peerCA, passEnv, limits, limitsState, engines string
	sessionTimeout                                                                    time.Duration
}

func parseMPCPartyFlags(args []string, stderr io.Writer) (mpcPartyFlags, error) {
	var f mpcPartyFlags
	fset := flag.NewFlagSet("mpc party", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.StringVar(&f.share, "share", "", "the share file this party holds (required)")
	fset.StringVar(&f.listen, "listen", "127.0.0.1:7443", "address to serve HTTPS on")
	fset.StringVar(&f.cert, "tls-cert", "", "the party's certificate, PEM, common name sluice-mpc-party-N (required)")
	fset.StringVar(&f.key, "tls-key", "", "the party's TLS key, PEM (required)")
	fset.StringVar(&f.clientCA, "client-ca", "", "CA of the engine's and the other parties' certificates, PEM (required)")
	fset.StringVar(&f.peerCA, "peer-ca", "", "CA of the other parties' server certificates (default --client-ca)")
	fset.StringVar(&f.passEnv, "passphrase-env", "SLUICE_MPC_PASSPHRASE", "environment variable holding the share's passphrase")
	fset.StringVar(&f.limits, "limits", "", "YAML file of limits every transaction must pass (optional; as signer serve --limits)")
	fset.StringVar(&f.limitsState, "limits-state", "", "with --limits: file keeping what they counted across restarts (default: the share's path + .limits-state; none: memory only)")
	fset.StringVar(&f.engines, "engine-cn", "", "comma-separated certificate common names allowed to drive sessions (default: any non-party certificate of the CA)")
	fset.DurationVar(&f.sessionTimeout, "session-timeout", 60*time.Second, "bound on one signing session")
	if err := fset.Parse(args); err != nil {
		return f, fmt.Errorf("%w: mpc party: %v", errUsage, err)
	}
	for _, r := range [][2]string{{"share", f.share}, {"tls-cert", f.cert}, {"tls-key", f.key}, {"client-ca", f.clientCA}} {
		if r[1] == "" {
			return f, fmt.Errorf("%w: mpc party needs --%s", errUsage, r[0])
		}
	}
	if f.peerCA == "" {
		f.peerCA = f.clientCA
	}
	return f, nil
}

// runMPCParty runs `sluice mpc party`: one share served over mutual TLS
// until ctx ends.
func runMPCParty(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseMPCPartyFlags(args, stderr)
	if err != nil {
		return err
	}
	pass, err := passphrase(f.passEnv)
	if err != nil {
		return err
	}
	cfg := signer.MPCPartyConfig{SessionTimeout: f.sessionTimeout, Logger: newLogger(stderr, "info", "text")}
	if f.engines != "" {
		cfg.Engines = strings.Split(f.engines, ",")
	}
	if cfg.Party, err = signer.OpenMPCShare(f.share, pass); err != nil {
		return err
	}
	if cfg.Cert, err = tls.LoadX509KeyPair(f.cert, f.key); err != nil {
		return fmt.Errorf("mpc party: tls: %w", err)
	}
	if cfg.ClientCAs, err = readCAPool(f.clientCA); err != nil {
		return err
	}
	if cfg.PeerCAs, err = readCAPool(f.peerCA); err != nil {
		return err
	}
	if f.limits != "" {
		l, err := readLimits(f.limits)
		if err != nil {
			return err
		}
		cfg.Limits, cfg.LimitsState = &l, limitsStatePath(f.limitsState, f.share)
	}
	srv, err := signer.NewMPCPartyServer(cfg)
	if err != nil {
		return limitsStateHint(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.listen, err)
	}
	hs := &http.Server{Handler: srv, TLSConfig: srv.TLSConfig(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
	g := cfg.Party.Group()
	fmt.Fprintf(stdout, "Sluice MPC party %d of %s (%d-of-%d) at https://%s\n", srv.Index(), g.Address.Hex(), g.Threshold, g.Parties, ln.Addr())
	return serveTLSUntil(ctx, hs, ln)
}

// readCAPool reads a PEM file of CA certificates.
func readCAPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mpc party: CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("mpc party: CA %s: no certificate found", path)
	}
	return pool, nil
}
