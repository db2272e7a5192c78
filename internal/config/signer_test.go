package config

import (
	"strings"
	"testing"
	"time"
)

func TestSignerTypes(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Signer
		want string // "" = valid
	}{
		{"keystore", Signer{Type: "keystore", Keystore: "k.json"}, ""},
		{"keystore without file", Signer{Type: "keystore"}, "x.signer.keystore: is required"},
		{"pkcs11", Signer{Type: "pkcs11", SignerBackends: SignerBackends{Module: "m.so", TokenLabel: "t", KeyLabel: "k"}}, ""},
		{"pkcs11 without key", Signer{Type: "pkcs11", SignerBackends: SignerBackends{Module: "m.so", TokenLabel: "t"}}, "x.signer.key_label: is required"},
		{"remote", Signer{Type: "remote", SignerBackends: SignerBackends{URL: "https://s:8443"}}, ""},
		{"remote half mTLS", Signer{Type: "remote", SignerBackends: SignerBackends{URL: "https://s", CertFile: "c.pem"}}, "x.signer.cert_file"},
		{"remote eth dialect", Signer{Type: "remote", SignerBackends: SignerBackends{URL: "https://w3s", Dialect: "eth",
			Account: "0x00000000000000000000000000000000000000aa"}}, ""},
		{"remote unknown dialect", Signer{Type: "remote", SignerBackends: SignerBackends{URL: "https://w3s", Dialect: "clef"}}, "x.signer.dialect"},
		{"remote bad account", Signer{Type: "remote", SignerBackends: SignerBackends{URL: "https://w3s", Account: "me"}}, "x.signer.account"},
		{"failover", Signer{Type: "failover", SignerBackends: SignerBackends{Signers: []Signer{
			{Type: "remote", SignerBackends: SignerBackends{URL: "https://a"}}, {Type: "keystore", Keystore: "k.json"}}}}, ""},
		{"failover member wrong", Signer{Type: "failover", SignerBackends: SignerBackends{Signers: []Signer{
			{Type: "remote", SignerBackends: SignerBackends{URL: "https://a"}}, {Type: "remote"}}}}, "x.signer.signers[1].url: is required"},
		{"failover empty", Signer{Type: "failover"}, "x.signer.signers: at least one"},
		{"mpc", Signer{Type: "mpc", SignerBackends: SignerBackends{Shares: []string{"share-1.json", "share-3.json"}}}, ""},
		{"mpc one share", Signer{Type: "mpc", SignerBackends: SignerBackends{Shares: []string{"share-1.json"}}}, "x.signer.shares: 1 share(s)"},
		{"mpc share twice", Signer{Type: "mpc", SignerBackends: SignerBackends{Shares: []string{"s1", "s1"}}}, "x.signer.shares[1]"},
		{"mpc parties", mpcNet(nil), ""},
		{"mpc parties and shares", mpcNet(func(s *Signer) { s.Shares = []string{"s1", "s2"} }), "x.signer.parties: give shares"},
		{"mpc one party", mpcNet(func(s *Signer) { s.Parties = s.Parties[:1] }), "x.signer.parties: 1 party"},
		{"mpc party http", mpcNet(func(s *Signer) { s.Parties[1].URL = "http://p2:7000" }), "x.signer.parties[1].url"},
		{"mpc party no index", mpcNet(func(s *Signer) { s.Parties[2].Index = 0 }), "x.signer.parties[2].index: is required"},
		{"mpc party index twice", mpcNet(func(s *Signer) { s.Parties[2].Index = 1 }), "x.signer.parties[2].index: share 1"},
		{"mpc party url twice", mpcNet(func(s *Signer) { s.Parties[2].URL = s.Parties[0].URL }), "x.signer.parties[2].url"},
		{"mpc parties negative timeout", mpcNet(func(s *Signer) { s.Timeout = -time.Second }), "x.signer.timeout"},
		{"mpc parties without ca", mpcNet(func(s *Signer) { s.TLS.CA = "" }), "x.signer.tls.ca: is required"},
		{"unknown", Signer{Type: "vault"}, `x.signer.type: "vault" is not a known signer type`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.setDefaults()
			err := tc.s.validate("x.signer")
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("validate() = %v, want %q", err, tc.want)
			}
		})
	}
	s := Signer{Type: "failover", SignerBackends: SignerBackends{Signers: []Signer{{Type: "pkcs11"}, {Type: "remote"}}}}
	s.setDefaults()
	if s.RetryAfter != 5*time.Second || s.Signers[0].PINEnv != "SLUICE_PKCS11_PIN" || s.Signers[1].TokenEnv != "SLUICE_SIGNER_TOKEN" {
		t.Errorf("defaults not filled: %+v", s)
	}
	m := Signer{Type: "mpc"}
	if m.setDefaults(); m.PassphraseEnv != "SLUICE_MPC_PASSPHRASE" {
		t.Errorf("mpc passphrase_env default = %q", m.PassphraseEnv)
	}
}

func TestSignerSecretsFromEnv(t *testing.T) {
	t.Setenv("X_PIN", "4321")
	s := Signer{Type: "pkcs11", SignerBackends: SignerBackends{PINEnv: "X_PIN", TokenEnv: "X_MISSING"}}
	if pin, err := s.PIN(); err != nil || pin != "4321" {
		t.Errorf("PIN() = %q, %v", pin, err)
	}
	if _, err := s.Token(); err == nil || !strings.Contains(err.Error(), "$X_MISSING is not set") {
		t.Errorf("Token() err = %v", err)
	}
}

func TestSignerFieldsFromEnv(t *testing.T) {
	var c Config
	c.Chains = []Chain{{HotWallets: []HotWallet{{}}}}
	err := applyEnv(&c, []string{"SLUICE_CHAINS_0_HOT_WALLETS_0_SIGNER_TYPE=failover",
		"SLUICE_CHAINS_0_HOT_WALLETS_0_SIGNER_SIGNERS_0_URL=https://a:8443",
		"SLUICE_CHAINS_0_HOT_WALLETS_0_SIGNER_SIGNERS_1_KEY_LABEL=hot"})
	if err != nil {
		t.Fatal(err)
	}
	s := c.Chains[0].HotWallets[0].Signer
	if s.Type != "failover" || len(s.Signers) != 2 || s.Signers[0].URL != "https://a:8443" || s.Signers[1].KeyLabel != "hot" {
		t.Errorf("signer from env = %+v", s)
	}
}

// mpcNet is a valid networked mpc signer, changed by edit.
func mpcNet(edit func(*Signer)) Signer {
	s := Signer{Type: "mpc", SignerBackends: SignerBackends{
		Parties: []MPCParty{{URL: "https://p1:7000", Index: 1}, {URL: "https://p2:7000", Index: 2}, {URL: "https://p3:7000", Index: 3}},
		TLS:     MPCTLS{Cert: "engine.pem", Key: "engine-key.pem", CA: "ca.pem"}}}
	if edit != nil {
		edit(&s)
	}
	return s
}

func TestMPCSignerFieldsFromEnv(t *testing.T) {
	var c Config
	c.Chains = []Chain{{HotWallets: []HotWallet{{}}}}
	err := applyEnv(&c, []string{"SLUICE_CHAINS_0_HOT_WALLETS_0_SIGNER_TYPE=mpc",
		"SLUICE_CHAINS_0_HOT_WALLETS_0_SIGNER_PARTIES_0_URL=https://p1:7000",
		"SLUICE_CHAINS_0_HOT_WALLETS_0_SIGNER_PARTIES_1_URL=https://p2:7000",
		"SLUICE_CHAINS_0_HOT_WALLETS_0_SIGNER_PARTIES_1_INDEX=2",
		"SLUICE_CHAINS_0_HOT_WALLETS_0_SIGNER_TLS_CA=/etc/sluice/mpc-ca.pem"})
	if err != nil {
		t.Fatal(err)
	}
	s := c.Chains[0].HotWallets[0].Signer
	if len(s.Parties) != 2 || s.Parties[1] != (MPCParty{URL: "https://p2:7000", Index: 2}) || s.TLS.CA != "/etc/sluice/mpc-ca.pem" {
		t.Errorf("mpc signer from env = %+v", s)
	}
}
