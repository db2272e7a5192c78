package config

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestExampleParses(t *testing.T) {
	b, err := os.ReadFile("../../sluice.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(b, nil)
	if err != nil {
		t.Fatalf("the annotated example must stay valid: %v", err)
	}
	if got, want := c.Chains[0].Tokens[0].Symbol, "USDC"; got != want {
		t.Errorf("token symbol = %q, want %q", got, want)
	}
	if got, want := c.Engine.Poll, 250*time.Millisecond; got != want {
		t.Errorf("poll = %s, want %s", got, want)
	}
}

const minimal = `
chains:
  - name: sandbox
    chain_id: 1337
    upstreams: [{url: "http://127.0.0.1:8545"}]
    hot_wallets:
      - address: "0x00000000000000000000000000000000000000aa"
        signer: {type: keystore, keystore: /tmp/k}
api_keys:
  - name: a
    sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
`

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Database != "sqlite:./sluice-data/sluice.db" || c.HTTP != "127.0.0.1:8080" || c.Chains[0].Confirmations != 12 ||
		*c.Chains[0].NativeDecimals != 18 || c.Chains[0].HotWallets[0].Signer.PassphraseEnv != "SLUICE_KEYSTORE_PASSPHRASE" {
		t.Errorf("defaults not filled: %+v", c)
	}
}

func TestEnvOverrides(t *testing.T) {
	env := []string{
		"SLUICE_DATABASE=postgres://x@127.0.0.1/db",
		"SLUICE_CHAINS_0_CONFIRMATIONS=3",
		"SLUICE_CHAINS_0_UPSTREAMS_0_URL=http://other:8545",
		"SLUICE_CHAINS_0_UPSTREAMS_1_URL=http://third:8545",
		"SLUICE_ENGINE_POLL=1s",
		"SLUICE_CHAINS_0_NATIVE_DECIMALS=9",
		"PATH=/bin",
	}
	c, err := Parse([]byte(minimal), env)
	if err != nil {
		t.Fatal(err)
	}
	ch := c.Chains[0]
	if c.Database != "postgres://x@127.0.0.1/db" || ch.Confirmations != 3 || ch.Upstreams[0].URL != "http://other:8545" ||
		len(ch.Upstreams) != 2 || ch.Upstreams[1].URL != "http://third:8545" || c.Engine.Poll != time.Second || *ch.NativeDecimals != 9 {
		t.Errorf("overrides not applied: %+v", c)
	}
}

// withChain adds lines to the minimal config's chain.
func withChain(lines string) string {
	return strings.Replace(minimal, "    hot_wallets:", lines+"    hot_wallets:", 1)
}

func TestFeesAndLowBalanceParse(t *testing.T) {
	c, err := Parse([]byte(withChain("    fees: {max_fee_per_gas: \"100000000000\", replace_after_blocks: {high: 1}}\n    low_balance: {ETH: \"1000\"}\n")), nil)
	if err != nil {
		t.Fatal(err)
	}
	ch := c.Chains[0]
	if ch.Fees.MaxFeePerGas != "100000000000" || ch.Fees.ReplaceAfterBlocks["high"] != 1 || ch.LowBalance["ETH"] != "1000" {
		t.Errorf("fees %+v, low balance %v", ch.Fees, ch.LowBalance)
	}
}

func TestErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        []string
		want       string
	}{
		{"unknown field", minimal + "\nbogus: 1\n", nil, "field bogus not found"},
		{"bad database", minimal + "\ndatabase: mysql://x\n", nil, "database"},
		{"bad log level", minimal + "\nlog_level: loud\n", nil, "log_level"},
		{"no chains", "api_keys: [{name: a, sha256: ab}]\n", nil, "chains"},
		{"bad key label name", minimal + "    labels: {Team: payroll}\n", nil, `api_keys[0].labels: label name "Team" must be`},
		{"bad key label value", minimal + "    labels: {team: \"a\\nb\"}\n", nil, "api_keys[0].labels: label team: value"},
		{"bad key hash", strings.Replace(minimal, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "xyz", 1), nil, "api_keys[0].sha256"},
		{"bad env duration", minimal, []string{"SLUICE_ENGINE_POLL=fast"}, "$SLUICE_ENGINE_POLL"},
		{"bad env number", minimal, []string{"SLUICE_CHAINS_0_CHAIN_ID=-1"}, "$SLUICE_CHAINS_0_CHAIN_ID"},
		{"bad signer", strings.Replace(minimal, "type: keystore", "type: magic", 1), nil, "chains[0].hot_wallets[0].signer.type"},
		{"bad fee cap", withChain("    fees: {max_fee_per_gas: \"1.5\"}\n"), nil, `chains[0].fees.max_fee_per_gas: "1.5" must be a positive whole number of wei`},
		{"zero fee cap", withChain("    fees: {max_fee_per_payout: \"0\"}\n"), nil, "chains[0].fees.max_fee_per_payout"},
		{"unknown priority", withChain("    fees: {replace_after_blocks: {urgent: 2}}\n"), nil, "chains[0].fees.replace_after_blocks.urgent"},
		{"replace wait too long", withChain("    fees: {replace_after_blocks: {low: 49}}\n"), nil, "chains[0].fees.replace_after_blocks.low: 49 must be 1-48 blocks"},
		{"low balance of no asset", withChain("    low_balance: {DOGE: \"1\"}\n"), nil, `chains[0].low_balance.DOGE: "DOGE" is not an asset of the chain`},
		{"bad low balance", withChain("    low_balance: {ETH: \"-1\"}\n"), nil, "chains[0].low_balance.ETH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %q", err, tt.want)
			}
		})
	}
	var fe *FieldError
	_, err := Parse([]byte(minimal+"\nlog_format: xml\n"), nil)
	if !errors.As(err, &fe) || fe.Field != "log_format" {
		t.Errorf("err = %v, want a FieldError for log_format", err)
	}
}

func TestAPIKeyLabels(t *testing.T) {
	c, err := Parse([]byte(minimal+"    labels: {team: payroll, region: eu}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if l := c.APIKeys[0].Labels; len(l) != 2 || l["team"] != "payroll" || l["region"] != "eu" {
		t.Errorf("labels = %v", l)
	}
}
