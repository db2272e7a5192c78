// Package config reads Sluice's YAML configuration, applies SLUICE_…
// environment overrides, fills defaults and validates it, naming the field
// of every problem. The annotated example is sluice.example.yaml at the
// repository root.
package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"gopkg.in/yaml.v3"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/policy"
)

// Config is the whole configuration of `sluice serve`.
type Config struct {
	// Database is "sqlite:PATH" (default "sqlite:DATA_DIR/sluice.db") or a
	// "postgres://" URL.
	Database string `yaml:"database"`
	// HTTP is the API's listen address. Default "127.0.0.1:8080".
	HTTP string `yaml:"http"`
	// DataDir holds the SQLite database and other local state. Default "./sluice-data".
	DataDir string `yaml:"data_dir"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json. Default text.
	LogFormat string `yaml:"log_format"`
	// Chains are the chains payouts can be made on.
	Chains []Chain `yaml:"chains"`
	// APIKeys may call the API. Only their SHA-256 hashes are configured.
	// Keys made with `sluice apikey create` live in the database instead.
	APIKeys []APIKey `yaml:"api_keys"`
	// RateLimit is every API key's token bucket unless the key sets its
	// own. Default: 100 requests a second, bursts of 200. Each instance
	// keeps its own buckets.
	RateLimit RateLimit `yaml:"rate_limit"`
	// Batches bounds batch uploads (POST /v1/batches, sluice batch submit).
	Batches BatchLimits `yaml:"batches"`
	// Approvals configures payouts a policy holds for approval.
	Approvals Approvals `yaml:"approvals"`
	// Breakers pause a scope when its outflow or failure rate passes a
	// threshold (risk.go).
	Breakers []Breaker `yaml:"breakers"`
	// TestMode makes the keys the API creates sk_test_ instead of sk_live_.
	// The sandbox and the config `sluice devchain` writes set it. Default: false.
	TestMode bool `yaml:"test_mode"`
	// Engine tunes the sender.
	Engine Engine `yaml:"engine"`
	// RPCProxy configures POST /rpc/{chain}, the failover JSON-RPC endpoint.
	RPCProxy RPCProxy `yaml:"rpc_proxy"`
	// Webhooks tunes webhook delivery.
	Webhooks Webhooks `yaml:"webhooks"`
}

// RPCProxy configures the failover JSON-RPC endpoint that wallets and tools
// can use as their node URL. It passes reads and eth_sendRawTransaction
// through the upstream pool and refuses every method that would use a
// node's own keys.
type RPCProxy struct {
	// Disabled turns the endpoint off. Default: on.
	Disabled bool `yaml:"disabled"`
	// TokensSHA256 are the hex SHA-256 hashes of the bearer tokens allowed
	// to call it. Default: the API keys.
	TokensSHA256 []string `yaml:"tokens_sha256"`
	// Public serves it without any token. Default: false.
	Public bool `yaml:"public"`
}

// Chain is one EVM chain.
type Chain struct {
	// Name is how payouts name the chain, e.g. "sandbox" or "ethereum".
	Name string `yaml:"name"`
	// ChainID must match what every upstream reports.
	ChainID uint64 `yaml:"chain_id"`
	// Confirmations a payout waits for before it is completed. Default 12.
	Confirmations uint64 `yaml:"confirmations"`
	// Upstreams are the JSON-RPC nodes of the chain. Every call goes through
	// a pool of them: health-checked (an upstream on another chain is never
	// used), scored, failed over within one request, hedged when slow.
	Upstreams []Upstream `yaml:"upstreams"`
	// NativeSymbol is the symbol of the chain's coin. Default "ETH".
	NativeSymbol string `yaml:"native_symbol"`
	// NativeDecimals of the chain's coin. Default 18.
	NativeDecimals *uint8 `yaml:"native_decimals"`
	// Tokens are the ERC-20 tokens payouts may be made in.
	Tokens []Token `yaml:"tokens"`
	// HotWallets send this chain's payouts. New payouts are assigned to them
	// in turn; each has its own sending loop, nonces and lease.
	HotWallets []HotWallet `yaml:"hot_wallets"`
	// Fees bound what payouts pay for gas and set when a transaction that
	// is not mined is replaced.
	Fees Fees `yaml:"fees"`
	// LowBalance maps an asset symbol to the balance (base units) under
	// which a hot wallet raises the wallet.low_balance event.
	LowBalance map[string]string `yaml:"low_balance"`
	// Batching pays the payouts of batches many at once, in batch
	// transactions through Sluice's batch contracts. Default off: every
	// payout is its own transaction.
	Batching Batching `yaml:"batching"`
}

// Batching configures a chain's batch transactions.
type Batching struct {
	// Mode is "eip7702" (each hot wallet delegates its code to Executor
	// with an EIP-7702 authorization and pays from itself), "contract"
	// (the deployed batch Contract forwards the native coin and pulls tokens
	// with an exact approval sent just before each batch transaction) or
	// "off" (the default).
	Mode string `yaml:"mode"`
	// Executor is the deployed SluiceBatchExecutor (mode eip7702).
	Executor string `yaml:"executor"`
	// Contract is the deployed SluiceBatch (mode contract).
	Contract string `yaml:"contract"`
	// GasBudget bounds one batch transaction's gas. Default 15,000,000
	// (EIP-7825 caps a transaction at 2^24).
	GasBudget uint64 `yaml:"gas_budget"`
	// MaxInFlight bounds a hot wallet's batch transactions in flight at
	// once (they use consecutive nonces). Default 8.
	MaxInFlight int `yaml:"max_in_flight"`
}

// Fees are a chain's fee caps and replacement schedule. Amounts are wei as
// decimal strings; an empty cap is no cap.
type Fees struct {
	// MaxFeePerGas caps the max fee per gas of any transaction.
	MaxFeePerGas string `yaml:"max_fee_per_gas"`
	// MaxFeePerPayout caps what one payout's transaction may cost at most
	// (gas limit × max fee). A payout over a cap waits with its reason; a
	// replacement over it marks the payout stuck until an operator raises
	// the payout's cap (speed-up) or cancels it.
	MaxFeePerPayout string `yaml:"max_fee_per_payout"`
	// ReplaceAfterBlocks is, per priority (low, standard, high), how many
	// blocks a transaction waits without the wallet's queue moving before it
	// is replaced with higher fees; the wait doubles per attempt up to 48
	// blocks. Defaults: low 6, standard 3, high 2.
	ReplaceAfterBlocks map[string]uint64 `yaml:"replace_after_blocks"`
}

// Upstream is one JSON-RPC node.
type Upstream struct {
	// URL of the node's JSON-RPC endpoint (http or https). It may hold a
	// provider key: it is never logged and shown only redacted.
	URL string `yaml:"url"`
	// Headers are sent with every request, e.g. a provider's API key header.
	Headers map[string]string `yaml:"headers"`
	// Role is primary (default) or fallback: fallbacks answer only when no
	// primary is usable.
	Role string `yaml:"role"`
	// RequestsPerSecond caps what Sluice sends this upstream (a provider's
	// plan); 0 means no cap.
	RequestsPerSecond float64 `yaml:"requests_per_second"`
}

// Token is an ERC-20 token.
type Token struct {
	Symbol   string `yaml:"symbol"`
	Address  string `yaml:"address"`
	Decimals uint8  `yaml:"decimals"`
}

// HotWallet is an address that pays, and the signer that holds its key.
type HotWallet struct {
	// Address of the wallet; the signer must sign for it.
	Address string `yaml:"address"`
	// Signer holds the key.
	Signer Signer `yaml:"signer"`
}

// Signer says where a wallet's key lives. The fields of each type are in
// signer.go.
type Signer struct {
	// Type is "keystore" (a go-ethereum keystore v3 file), "pkcs11" (an
	// HSM), "remote" (`sluice signer serve`), "mpc" (2-of-3 threshold
	// shares) or "failover" (signers that hold the same key, in order of
	// preference).
	Type           string `yaml:"type"`
	SignerBackends `yaml:",inline"`
	// Keystore is the path of the keystore file.
	Keystore string `yaml:"keystore"`
	// PassphraseFile holds the keystore's (or the mpc shares') passphrase
	// (mode 0600).
	PassphraseFile string `yaml:"passphrase_file"`
	// PassphraseEnv names an environment variable holding the passphrase;
	// used when PassphraseFile is empty. Default SLUICE_KEYSTORE_PASSPHRASE.
	PassphraseEnv string `yaml:"passphrase_env"`
}

// APIKey is one API key, stored only as the SHA-256 of its secret.
type APIKey struct {
	// Name is a label for logs, e.g. "backoffice".
	Name string `yaml:"name"`
	// SHA256 is the hex SHA-256 of the secret key (`sluice apikey hash` prints it).
	SHA256 string `yaml:"sha256"`
	// Scopes the key holds: payouts:read, payouts:write, batches:write,
	// webhooks:manage, admin. Default: [admin].
	Scopes []string `yaml:"scopes"`
	// RateLimit overrides the top-level rate_limit for this key when set.
	RateLimit RateLimit `yaml:"rate_limit"`
	// Labels, e.g. {team: payroll}, are what policy rules read as
	// api_key_labels for the payouts this key makes (at most 20; names of
	// a-z, 0-9, _, - and ., starting with a letter).
	Labels map[string]string `yaml:"labels"`
}

// BatchLimits bound one batch upload; a bigger one is refused with
// too_many_rows or file_too_large. Zero values mean the default.
type BatchLimits struct {
	// MaxRows of one batch. Default 50,000.
	MaxRows int `yaml:"max_rows"`
	// MaxBytes of one upload. Default 10 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
}

// RateLimit is a token bucket: per_second requests a second, bursts of
// burst. Zero values mean the default.
type RateLimit struct {
	PerSecond float64 `yaml:"per_second"`
	Burst     int     `yaml:"burst"`
}

func (r RateLimit) validate(at string) error {
	switch {
	case r == RateLimit{}:
		return nil
	case !(r.PerSecond > 0 && r.PerSecond <= 1e6):
		return fieldErr(at+".per_second", fmt.Sprintf("%v must be above 0 and at most 1000000", r.PerSecond))
	case r.Burst < 1 || r.Burst > 1e6:
		return fieldErr(at+".burst", fmt.Sprintf("%d must be from 1 to 1000000", r.Burst))
	}
	return nil
}

// Engine tunes the sending loop.
type Engine struct {
	// BatchSize is how many queued payouts one round claims. Default 500.
	BatchSize int `yaml:"batch_size"`
	// Poll is how often the sender looks for new blocks. Default 250ms.
	Poll time.Duration `yaml:"poll"`
	// LeaseTTL is how long a sender's lease lasts without renewal. Default 15s.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// ReconcileEvery is how often each hot wallet's books are reconciled
	// with the chain over the blocks settled since (wallet.drift when they
	// do not match). Default 1m; negative turns it off.
	ReconcileEvery time.Duration `yaml:"reconcile_every"`
}

// Load reads a YAML file, applies environment overrides (SLUICE_…), fills
// defaults and validates.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(b, os.Environ())
}

// Parse is Load on bytes and an explicit environment (KEY=VALUE strings).
func Parse(b []byte, environ []string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, errEOF) {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := applyEnv(&c, environ); err != nil {
		return nil, err
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) setDefaults() {
	if c.DataDir == "" {
		c.DataDir = "./sluice-data"
	}
	if c.Database == "" {
		c.Database = "sqlite:" + strings.TrimRight(c.DataDir, "/") + "/sluice.db"
	}
	if c.HTTP == "" {
		c.HTTP = "127.0.0.1:8080"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.LogFormat == "" {
		c.LogFormat = "text"
	}
	c.Webhooks.setDefaults()
	c.Approvals.setDefaults()
	if c.RateLimit == (RateLimit{}) {
		c.RateLimit = RateLimit{PerSecond: 100, Burst: 200}
	}
	for i := range c.APIKeys {
		if len(c.APIKeys[i].Scopes) == 0 {
			c.APIKeys[i].Scopes = []string{string(payout.ScopeAdmin)}
		}
	}
	for i := range c.Chains {
		ch := &c.Chains[i]
		if ch.Confirmations == 0 {
			ch.Confirmations = 12
		}
		if ch.NativeSymbol == "" {
			ch.NativeSymbol = "ETH"
		}
		if ch.NativeDecimals == nil {
			d := uint8(18)
			ch.NativeDecimals = &d
		}
		for j := range ch.HotWallets {
			ch.HotWallets[j].Signer.setDefaults()
		}
	}
}

// Validate checks every field and names the first wrong one. Webhook
// settings left zero take their defaults first (a config built in code
// need not spell them out).
func (c *Config) Validate() error {
	c.Webhooks.setDefaults()
	if !strings.HasPrefix(c.Database, "sqlite:") && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		return fieldErr("database", "must be sqlite:PATH or a postgres:// URL")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fieldErr("log_level", fmt.Sprintf("%q is not one of debug, info, warn, error", c.LogLevel))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fieldErr("log_format", fmt.Sprintf("%q is not text or json", c.LogFormat))
	}
	if len(c.Chains) == 0 {
		return fieldErr("chains", "at least one chain is required")
	}
	names := map[string]bool{}
	for i := range c.Chains {
		if err := c.Chains[i].validate(fmt.Sprintf("chains[%d]", i)); err != nil {
			return err
		}
		if names[c.Chains[i].Name] {
			return fieldErr(fmt.Sprintf("chains[%d].name", i), fmt.Sprintf("%q is used twice", c.Chains[i].Name))
		}
		names[c.Chains[i].Name] = true
	}
	if len(c.APIKeys) == 0 {
		return fieldErr("api_keys", "at least one API key is required")
	}
	for i, k := range c.APIKeys {
		if _, err := k.Hash(); err != nil {
			return fieldErr(fmt.Sprintf("api_keys[%d].sha256", i), err.Error())
		}
		for j, sc := range k.Scopes {
			if _, err := payout.ParseScope(sc); err != nil {
				return fieldErr(fmt.Sprintf("api_keys[%d].scopes[%d]", i, j), err.Error())
			}
		}
		if err := policy.ValidateLabels(k.Labels); err != nil {
			return fieldErr(fmt.Sprintf("api_keys[%d].labels", i), err.Error())
		}
		if err := k.RateLimit.validate(fmt.Sprintf("api_keys[%d].rate_limit", i)); err != nil {
			return err
		}
	}
	if err := c.RateLimit.validate("rate_limit"); err != nil {
		return err
	}
	for i, h := range c.RPCProxy.TokensSHA256 {
		if _, err := (APIKey{SHA256: h}).Hash(); err != nil {
			return fieldErr(fmt.Sprintf("rpc_proxy.tokens_sha256[%d]", i), err.Error())
		}
	}
	if err := c.Approvals.validate(); err != nil {
		return err
	}
	if err := validateBreakers(c.Breakers); err != nil {
		return err
	}
	return c.Webhooks.validate()
}

// ProxyTokens are the hashes of the tokens the RPC endpoint accepts: its
// own, else the API keys'; none when it is public.
func (c *Config) ProxyTokens() [][32]byte {
	if c.RPCProxy.Public {
		return nil
	}
	var out [][32]byte
	hashes := c.RPCProxy.TokensSHA256
	if len(hashes) == 0 {
		for _, k := range c.APIKeys {
			hashes = append(hashes, k.SHA256)
		}
	}
	for _, h := range hashes {
		if sum, err := (APIKey{SHA256: h}).Hash(); err == nil {
			out = append(out, sum)
		}
	}
	return out
}

func (ch *Chain) validate(at string) error {
	if ch.Name == "" {
		return fieldErr(at+".name", "is required")
	}
	if ch.ChainID == 0 {
		return fieldErr(at+".chain_id", "is required")
	}
	if len(ch.Upstreams) == 0 {
		return fieldErr(at+".upstreams", "at least one upstream is required")
	}
	for j, u := range ch.Upstreams {
		f := fmt.Sprintf("%s.upstreams[%d]", at, j)
		if !strings.HasPrefix(u.URL, "http://") && !strings.HasPrefix(u.URL, "https://") {
			return fieldErr(f+".url", "must be an http:// or https:// URL")
		}
		if u.Role != "" && u.Role != "primary" && u.Role != "fallback" {
			return fieldErr(f+".role", fmt.Sprintf("%q is not primary or fallback", u.Role))
		}
		if u.RequestsPerSecond < 0 {
			return fieldErr(f+".requests_per_second", "must not be negative")
		}
	}
	symbols := map[string]bool{ch.NativeSymbol: true}
	for j, t := range ch.Tokens {
		f := fmt.Sprintf("%s.tokens[%d]", at, j)
		if t.Symbol == "" || symbols[t.Symbol] {
			return fieldErr(f+".symbol", fmt.Sprintf("%q is empty or used twice", t.Symbol))
		}
		symbols[t.Symbol] = true
		if !common.IsHexAddress(t.Address) {
			return fieldErr(f+".address", fmt.Sprintf("%q is not an address", t.Address))
		}
	}
	if err := ch.Fees.validate(at + ".fees"); err != nil {
		return err
	}
	if err := ch.Batching.validate(at + ".batching"); err != nil {
		return err
	}
	for sym, v := range ch.LowBalance {
		if !symbols[sym] {
			return fieldErr(at+".low_balance."+sym, fmt.Sprintf("%q is not an asset of the chain", sym))
		}
		if _, err := ParseWei(v); err != nil {
			return fieldErr(at+".low_balance."+sym, err.Error())
		}
	}
	if len(ch.HotWallets) == 0 {
		return fieldErr(at+".hot_wallets", "at least one hot wallet is required")
	}
	seen := map[common.Address]bool{}
	for j, w := range ch.HotWallets {
		f := fmt.Sprintf("%s.hot_wallets[%d]", at, j)
		if !common.IsHexAddress(w.Address) {
			return fieldErr(f+".address", fmt.Sprintf("%q is not an address", w.Address))
		}
		if seen[common.HexToAddress(w.Address)] {
			return fieldErr(f+".address", fmt.Sprintf("%s is listed twice", w.Address))
		}
		seen[common.HexToAddress(w.Address)] = true
		if err := w.Signer.validate(f + ".signer"); err != nil {
			return err
		}
	}
	return nil
}

func (f Fees) validate(at string) error {
	for field, v := range map[string]string{"max_fee_per_gas": f.MaxFeePerGas, "max_fee_per_payout": f.MaxFeePerPayout} {
		if v == "" {
			continue
		}
		if w, err := ParseWei(v); err != nil || w.Sign() == 0 {
			return fieldErr(at+"."+field, fmt.Sprintf("%q must be a positive whole number of wei", v))
		}
	}
	for p, n := range f.ReplaceAfterBlocks {
		if p != "low" && p != "standard" && p != "high" {
			return fieldErr(at+".replace_after_blocks."+p, "is not a priority (low, standard, high)")
		}
		if n == 0 || n > 48 {
			return fieldErr(at+".replace_after_blocks."+p, fmt.Sprintf("%d must be 1-48 blocks", n))
		}
	}
	return nil
}

// ParseWei parses a non-negative whole number of base units ("" is an error).
func ParseWei(s string) (*big.Int, error) {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Sign() < 0 || strings.HasPrefix(s, "+") {
		return nil, fmt.Errorf("%q is not a non-negative whole number of base units", s)
	}
	return v, nil
}

// Hash decodes the key's SHA-256.
func (k APIKey) Hash() ([32]byte, error) {
	var h [32]byte
	b, err := hex.DecodeString(strings.TrimPrefix(k.SHA256, "sha256:"))
	if err != nil || len(b) != 32 {
		return h, errors.New("must be 64 hex digits (the SHA-256 of the key)")
	}
	copy(h[:], b)
	return h, nil
}

// Passphrase reads the keystore passphrase from the file or the environment.
func (s Signer) Passphrase() (string, error) {
	if s.PassphraseFile != "" {
		b, err := os.ReadFile(s.PassphraseFile)
		if err != nil {
			return "", fmt.Errorf("read passphrase file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	v, ok := os.LookupEnv(s.PassphraseEnv)
	if !ok {
		return "", fmt.Errorf("passphrase: $%s is not set and no passphrase_file is configured", s.PassphraseEnv)
	}
	return v, nil
}

// FieldError names the configuration field that is wrong.
type FieldError struct {
	Field, Problem string
}

func (e *FieldError) Error() string { return "config: " + e.Field + ": " + e.Problem }

func fieldErr(field, problem string) error { return &FieldError{Field: field, Problem: problem} }

func (b Batching) validate(at string) error {
	need := func(field, v string) error {
		if !common.IsHexAddress(v) || common.HexToAddress(v) == (common.Address{}) {
			return fieldErr(at+"."+field, fmt.Sprintf("%q is not an address (mode %s needs it)", v, b.Mode))
		}
		return nil
	}
	switch b.Mode {
	case "", "off":
		return nil
	case "eip7702":
		return need("executor", b.Executor)
	case "contract":
		return need("contract", b.Contract)
	}
	return fieldErr(at+".mode", fmt.Sprintf("%q is not one of eip7702, contract, off", b.Mode))
}
