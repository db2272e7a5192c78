package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/httpapi"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// devFlags are the flags of `sluice sandbox` and `sluice devchain`.
type devFlags struct {
	dataDir       string
	http          string
	rpc           string
	blockTime     time.Duration
	confirmations uint64
	logLevel      string
	hotWallets    int
	pprof         string
	archive       bool
}

func parseDevFlags(name string, args []string, withHTTP bool, stderr io.Writer) (*devFlags, error) {
	f := &devFlags{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.dataDir, "data-dir", "./sluice-data", "where the chain, the wallet's encrypted key and the database live")
	if withHTTP {
		fs.StringVar(&f.http, "http", "127.0.0.1:8080", "listen address of the API")
	}
	fs.StringVar(&f.rpc, "rpc", "127.0.0.1:8545", "listen address of the dev chain's JSON-RPC")
	fs.DurationVar(&f.blockTime, "block-time", time.Second, "time between blocks")
	fs.Uint64Var(&f.confirmations, "confirmations", 2, "confirmations before a payout is completed")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.IntVar(&f.hotWallets, "hot-wallets", 1, "how many hot wallets pay (the first is funded at genesis, the others from it)")
	fs.BoolVar(&f.archive, "archive", false, "keep every block's state (as an archive node), so that sluice reconcile reads balances at any block; a full node keeps about the last 128")
	fs.StringVar(&f.pprof, "pprof", "", "serve Go's profiler on this address (e.g. 127.0.0.1:6061); off by default")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errUsage, name, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: %s takes no arguments, got %q", errUsage, name, fs.Args())
	}
	if f.hotWallets < 1 || f.hotWallets > 64 {
		return nil, fmt.Errorf("%w: --hot-wallets %d must be between 1 and 64", errUsage, f.hotWallets)
	}
	if f.blockTime <= 0 {
		return nil, fmt.Errorf("%w: --block-time %s must be positive", errUsage, f.blockTime)
	}
	abs, err := filepath.Abs(f.dataDir)
	if err != nil {
		return nil, err
	}
	f.dataDir = abs
	return f, nil
}

// devInfo is what sandbox.json and devchain.json hold.
type devInfo struct {
	APIURL     string               `json:"api_url,omitempty"`
	APIKey     string               `json:"api_key"`
	RPCURL     string               `json:"rpc_url"`
	Chain      string               `json:"chain"`
	ChainID    uint64               `json:"chain_id"`
	HotWallet  string               `json:"hot_wallet"`
	HotWallets []string             `json:"hot_wallets"`
	Assets     map[string]assetInfo `json:"assets"`
	Config     string               `json:"config,omitempty"`
}

type assetInfo struct {
	Address  *string `json:"address"`
	Decimals uint8   `json:"decimals"`
}

// startDevChain opens the data dir's wallet and starts the dev chain.
func startDevChain(ctx context.Context, f *devFlags, infoFile string, stdout io.Writer, log *slog.Logger) (*devData, *sandbox.Chain, error) {
	d, err := openDevData(f.dataDir, infoFile, f.hotWallets, stdout)
	if err != nil {
		return nil, nil, err
	}
	// A payout database without its chain would show payouts that point at
	// a chain that no longer exists: refuse rather than start a new chain.
	_, dbErr := os.Stat(filepath.Join(f.dataDir, "sluice.db"))
	chain, err := sandbox.Start(ctx, sandbox.Config{
		DataDir: f.dataDir, RPCAddr: f.rpc, BlockTime: f.blockTime,
		HotWalletKey: d.wallet.PrivateKey(), Logger: log, MustExist: dbErr == nil, Archive: f.archive,
	})
	if err != nil {
		return nil, nil, err
	}
	if err := fundExtraWallets(ctx, chain, d, log); err != nil {
		chain.Close()
		return nil, nil, err
	}
	return d, chain, nil
}

func newDevInfo(d *devData, chain *sandbox.Chain) devInfo {
	susd := chain.SUSD().Hex()
	return devInfo{
		APIKey: d.apiKey, RPCURL: chain.RPCURL(), Chain: "sandbox", ChainID: chain.ChainID(),
		HotWallet: d.wallet.Address().Hex(), HotWallets: d.addresses(),
		Assets: map[string]assetInfo{
			"ETH":  {Decimals: 18},
			"SUSD": {Address: &susd, Decimals: 6},
		},
	}
}

// devRateLimit is each API key's token bucket on the dev chain: high enough
// that load tests against the sandbox (BENCHMARKS.md) measure the engine,
// not the limiter.
var devRateLimit = config.RateLimit{PerSecond: 10_000, Burst: 20_000}

// devConfig is the engine configuration for a dev chain.
func devConfig(f *devFlags, d *devData, chain *sandbox.Chain) *config.Config {
	cfg := devConfigFor(f, d, chain.ChainID(), chain.RPCURL(), chain.SUSD().Hex())
	if exec := chain.BatchExecutor(); exec != (common.Address{}) {
		// Batches are paid many payouts per transaction, from the wallet
		// itself (EIP-7702); a chain older than the executor pays them alone.
		cfg.Chains[0].Batching = config.Batching{Mode: "eip7702", Executor: exec.Hex()}
	}
	return cfg
}

func devConfigFor(f *devFlags, d *devData, chainID uint64, rpcURL, susd string) *config.Config {
	keyHash := httpapi.HashAPIKey(d.apiKey)
	eighteen := uint8(18)
	var wallets []config.HotWallet
	for _, w := range d.wallets() {
		signerCfg := config.Signer{Type: "keystore", Keystore: w.path, PassphraseFile: d.passphraseFile}
		if d.passphraseFile == "" {
			signerCfg.PassphraseEnv = passphraseEnv
		}
		wallets = append(wallets, config.HotWallet{Address: w.ks.Address().Hex(), Signer: signerCfg})
	}
	return &config.Config{
		Database: "sqlite:" + filepath.Join(f.dataDir, "sluice.db"), HTTP: f.http, DataDir: f.dataDir,
		LogLevel: f.logLevel, LogFormat: "text",
		Chains: []config.Chain{{
			Name: "sandbox", ChainID: chainID, Confirmations: f.confirmations,
			Upstreams:    []config.Upstream{{URL: rpcURL}},
			NativeSymbol: "ETH", NativeDecimals: &eighteen,
			Tokens:     []config.Token{{Symbol: "SUSD", Address: susd, Decimals: 6}},
			HotWallets: wallets,
		}},
		APIKeys:   []config.APIKey{{Name: "sandbox", SHA256: fmt.Sprintf("%x", keyHash)}},
		Webhooks:  config.Webhooks{AllowPrivateTargets: true}, // receivers on this machine
		TestMode:  true,                                       // keys the API makes are sk_test_
		RateLimit: devRateLimit,
	}
}

// runSandbox starts the dev chain and the engine on it in one process.
func runSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseDevFlags("sandbox", args, true, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, f.logLevel, "text")
	servePprof(log, f.pprof)
	d, chain, err := startDevChain(ctx, f, "sandbox.json", stdout, log)
	if err != nil {
		return err
	}
	defer chain.Close()
	cfg := devConfig(f, d, chain)
	signers := map[common.Address]payout.Signer{}
	for _, w := range d.wallets() {
		signers[w.ks.Address()] = w.ks
	}
	eng, err := startEngine(ctx, cfg, log, engineOptions{Signers: signers})
	if err != nil {
		return err
	}
	defer eng.Close()
	info := newDevInfo(d, chain)
	info.APIURL = eng.URL()
	if err := writeJSON(f.dataDir, "sandbox.json", info); err != nil {
		return fmt.Errorf("write sandbox.json: %w", err)
	}
	printTryIt(stdout, info, filepath.Join(f.dataDir, "sandbox.json"), f.blockTime)
	return eng.Wait(ctx)
}

// runDevchain runs only the dev chain and writes a config for `sluice serve`.
func runDevchain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseDevFlags("devchain", args, false, stderr)
	if err != nil {
		return err
	}
	f.http = "127.0.0.1:8080"
	log := newLogger(stderr, f.logLevel, "text")
	servePprof(log, f.pprof)
	d, chain, err := startDevChain(ctx, f, "devchain.json", stdout, log)
	if err != nil {
		return err
	}
	defer chain.Close()
	cfgPath := filepath.Join(f.dataDir, "sluice.yaml")
	if err := writeDevConfig(cfgPath, devConfig(f, d, chain)); err != nil {
		return err
	}
	info := newDevInfo(d, chain)
	info.Config = cfgPath
	if err := writeJSON(f.dataDir, "devchain.json", info); err != nil {
		return fmt.Errorf("write devchain.json: %w", err)
	}
	fmt.Fprintf(stdout, "Dev chain %d serving JSON-RPC at %s (hot wallet %s).\nRun the engine against it:\n  sluice serve --config %s\n",
		info.ChainID, info.RPCURL, info.HotWallet, cfgPath)
	<-ctx.Done()
	return nil
}

func printTryIt(w io.Writer, info devInfo, infoPath string, blockTime time.Duration) {
	fmt.Fprintf(w, `
Sluice sandbox is ready.
  API        %s
  API key    %s
  dev chain  %s (chain id %d, a block every %s)
  hot wallet %s (1,000,000 ETH and 1,000,000,000 SUSD)
  details    %s

Try it:
  curl -s %s/v1/payouts \
    -H 'Authorization: Bearer %s' \
    -H "Idempotency-Key: $(date +%%s%%N)" \
    -H 'Content-Type: application/json' \
    -d '{"chain":"sandbox","asset":"SUSD","to":"0x000000000000000000000000000000000000dEaD","amount":"1500000"}'

  SLUICE_API_URL=%s SLUICE_API_KEY=%s sluice payout list
`, info.APIURL, info.APIKey, info.RPCURL, info.ChainID, blockTime, info.HotWallet, infoPath,
		info.APIURL, info.APIKey, info.APIURL, info.APIKey)
}

var devConfigTemplate = template.Must(template.New("cfg").Parse(`# Written by 'sluice devchain'. 'sluice serve --config {{.Path}}' accepts it as it is.
# Every field is documented in sluice.example.yaml at the repository root.
database: {{.C.Database}}
http: {{.C.HTTP}}
data_dir: {{.C.DataDir}}
log_level: {{.C.LogLevel}}
chains:
{{- range .C.Chains}}
  - name: {{.Name}}
    chain_id: {{.ChainID}}
    confirmations: {{.Confirmations}}
    upstreams:
{{- range .Upstreams}}
      - url: {{.URL}}
{{- end}}
    native_symbol: {{.NativeSymbol}}
    native_decimals: {{.NativeDecimals}}
    tokens:
{{- range .Tokens}}
      - symbol: {{.Symbol}}
        address: "{{.Address}}"
        decimals: {{.Decimals}}
{{- end}}
    hot_wallets:
{{- range .HotWallets}}
      - address: "{{.Address}}"
        signer:
          type: {{.Signer.Type}}
          keystore: {{.Signer.Keystore}}
{{- if .Signer.PassphraseFile}}
          passphrase_file: {{.Signer.PassphraseFile}}
{{- else}}
          passphrase_env: {{.Signer.PassphraseEnv}}
{{- end}}
{{- end}}
{{- if .Batching.Mode}}
    # batch payouts: many per transaction, from the wallet itself through the
    # dev chain's EIP-7702 batch executor (a delegated wallet sends one
    # transaction per block: give batches their own wallet when singles matter)
    batching:
      mode: {{.Batching.Mode}}
      executor: "{{.Batching.Executor}}"
{{- end}}
{{- end}}
# keys made with 'sluice apikey create' start with sk_test_
test_mode: {{.C.TestMode}}
# per-key rate limit, lifted for load tests on the dev chain ('sluice serve' defaults to 100/s)
rate_limit: {per_second: {{.C.RateLimit.PerSecond}}, burst: {{.C.RateLimit.Burst}}}
api_keys:
{{- range .C.APIKeys}}
  # the key itself is in devchain.json; only its SHA-256 is configured
  - name: {{.Name}}
    sha256: {{.SHA256}}
{{- end}}
webhooks:
  # a dev chain's receivers run on this machine
  allow_private_targets: {{.C.Webhooks.AllowPrivateTargets}}
`))

func writeDevConfig(path string, c *config.Config) error {
	var b strings.Builder
	d := *c.Chains[0].NativeDecimals
	c.Chains[0].NativeDecimals = nil
	defer func() { c.Chains[0].NativeDecimals = &d }()
	data := struct {
		Path string
		C    *config.Config
	}{path, c}
	if err := devConfigTemplate.Execute(&b, data); err != nil {
		return err
	}
	out := strings.Replace(b.String(), "native_decimals: <nil>", fmt.Sprintf("native_decimals: %d", d), 1)
	if _, err := config.Parse([]byte(out), nil); err != nil {
		return fmt.Errorf("the written config does not parse: %w", err)
	}
	return writeFile(path, out)
}
