package config

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// SignerBackends are the fields of the signer types other than keystore.
// Secrets (PINs, tokens) are read from environment variables, never from
// the file.
type SignerBackends struct {
	// Module is the PKCS#11 library (pkcs11), e.g.
	// /usr/lib/softhsm/libsofthsm2.so.
	Module string `yaml:"module"`
	// TokenLabel is the HSM token's label (pkcs11).
	TokenLabel string `yaml:"token_label"`
	// KeyLabel is the secp256k1 key pair's CKA_LABEL (pkcs11).
	KeyLabel string `yaml:"key_label"`
	// PINEnv names the variable holding the token's user PIN (pkcs11).
	// Default SLUICE_PKCS11_PIN.
	PINEnv string `yaml:"pin_env"`

	// URL of the remote signer, https:// (remote).
	URL string `yaml:"url"`
	// TokenEnv names the variable holding the bearer token the remote
	// signer expects (remote). Default SLUICE_SIGNER_TOKEN.
	TokenEnv string `yaml:"token_env"`
	// CAFile verifies the remote signer's certificate (remote; default the
	// system roots).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate for mTLS (remote,
	// optional).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Timeout bounds one request to the remote signer (remote; default
	// 10s), or one health check or session opening of an MPC party (mpc
	// with parties; default 5s).
	Timeout time.Duration `yaml:"timeout"`
	// Dialect is "sluice" (`sluice signer serve`, the default) or "eth"
	// (eth_signTransaction: Web3Signer, clef, or `sluice signer serve`).
	Dialect string `yaml:"dialect"`
	// Account is the signer's account to use in the eth dialect (default:
	// its only one).
	Account string `yaml:"account"`

	// Signers are the group's members, in order of preference (failover);
	// all must hold the wallet's key.
	Signers []Signer `yaml:"signers"`
	// RetryAfter is how long a member that failed is skipped (failover;
	// default 5s).
	RetryAfter time.Duration `yaml:"retry_after"`

	// Shares are the share files of a threshold key (`sluice mpc keygen`;
	// mpc): at least the threshold of them (2 of 3), all opened in this
	// process with the passphrase of passphrase_file or passphrase_env
	// (default SLUICE_MPC_PASSPHRASE).
	Shares []string `yaml:"shares"`
	// Parties are the `sluice mpc party` processes holding the shares of
	// a threshold key (mpc, instead of shares): each one's https:// URL and
	// share index. Signing needs the threshold of them up (2 of 3).
	Parties []MPCParty `yaml:"parties"`
	// TLS is the engine's client certificate for the parties and the CA
	// that signed theirs (mpc with parties; required there).
	TLS MPCTLS `yaml:"tls"`
}

// MPCParty is one `sluice mpc party` process.
type MPCParty struct {
	// URL is where the party serves, https://host:port.
	URL string `yaml:"url"`
	// Index is the share it holds, 1..n; its certificate's common name
	// must be sluice-mpc-party-<index>.
	Index int `yaml:"index"`
}

// MPCTLS is the engine's side of the mutual TLS with the MPC parties.
type MPCTLS struct {
	// Cert and Key are the engine's client certificate and key, PEM.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// CA verifies the parties' certificates, PEM.
	CA string `yaml:"ca"`
}

func (s *Signer) setDefaults() {
	switch s.Type {
	case "keystore", "":
		if s.PassphraseEnv == "" && s.PassphraseFile == "" {
			s.PassphraseEnv = "SLUICE_KEYSTORE_PASSPHRASE"
		}
	case "pkcs11":
		if s.PINEnv == "" {
			s.PINEnv = "SLUICE_PKCS11_PIN"
		}
	case "remote":
		if s.TokenEnv == "" {
			s.TokenEnv = "SLUICE_SIGNER_TOKEN"
		}
		if s.Timeout == 0 {
			s.Timeout = 10 * time.Second
		}
	case "mpc":
		if s.PassphraseEnv == "" && s.PassphraseFile == "" {
			s.PassphraseEnv = "SLUICE_MPC_PASSPHRASE"
		}
	case "failover":
		if s.RetryAfter == 0 {
			s.RetryAfter = 5 * time.Second
		}
		for i := range s.Signers {
			s.Signers[i].setDefaults()
		}
	}
}

func (s Signer) validate(at string) error {
	required := func(field, v string) error {
		if v == "" {
			return fieldErr(at+"."+field, "is required")
		}
		return nil
	}
	switch s.Type {
	case "keystore":
		return required("keystore", s.Keystore)
	case "pkcs11":
		for _, f := range [][2]string{{"module", s.Module}, {"token_label", s.TokenLabel}, {"key_label", s.KeyLabel}} {
			if err := required(f[0], f[1]); err != nil {
				return err
			}
		}
	case "remote":
		if err := required("url", s.URL); err != nil {
			return err
		}
		if (s.CertFile == "") != (s.KeyFile == "") {
			return fieldErr(at+".cert_file", "cert_file and key_file go together")
		}
		if s.Timeout < 0 {
			return fieldErr(at+".timeout", "must be positive")
		}
		if s.Dialect != "" && s.Dialect != "sluice" && s.Dialect != "eth" {
			return fieldErr(at+".dialect", fmt.Sprintf("%q is not sluice or eth", s.Dialect))
		}
		if s.Account != "" && !common.IsHexAddress(s.Account) {
			return fieldErr(at+".account", fmt.Sprintf("%q is not an address", s.Account))
		}
	case "mpc":
		if len(s.Parties) > 0 {
			return s.validateMPCParties(at)
		}
		if len(s.Shares) < 2 {
			return fieldErr(at+".shares", fmt.Sprintf("%d share(s): a threshold key needs at least 2", len(s.Shares)))
		}
		seen := map[string]bool{}
		for i, sh := range s.Shares {
			if sh == "" || seen[sh] {
				return fieldErr(fmt.Sprintf("%s.shares[%d]", at, i), fmt.Sprintf("%q is empty or given twice", sh))
			}
			seen[sh] = true
		}
	case "failover":
		if len(s.Signers) == 0 {
			return fieldErr(at+".signers", "at least one signer is required")
		}
		for i, m := range s.Signers {
			f := fmt.Sprintf("%s.signers[%d]", at, i)
			if m.Type == "failover" {
				return fieldErr(f+".type", "a failover group cannot hold another")
			}
			if err := m.validate(f); err != nil {
				return err
			}
		}
	default:
		return fieldErr(at+".type", fmt.Sprintf("%q is not a known signer type (keystore, pkcs11, remote, mpc, failover)", s.Type))
	}
	return nil
}

// validateMPCParties checks a networked threshold signer.
func (s Signer) validateMPCParties(at string) error {
	if len(s.Shares) > 0 {
		return fieldErr(at+".parties", "give shares (every share in this process) or parties (`sluice mpc party` processes), not both")
	}
	if len(s.Parties) < 2 {
		return fieldErr(at+".parties", fmt.Sprintf("%d party(ies): a threshold key needs at least 2", len(s.Parties)))
	}
	urls, indexes := map[string]bool{}, map[int]bool{}
	for i, p := range s.Parties {
		f := fmt.Sprintf("%s.parties[%d]", at, i)
		switch {
		case !strings.HasPrefix(p.URL, "https://") || len(p.URL) == len("https://"):
			return fieldErr(f+".url", fmt.Sprintf("%q is not an https:// URL", p.URL))
		case urls[p.URL]:
			return fieldErr(f+".url", fmt.Sprintf("%q is given twice", p.URL))
		case p.Index < 1:
			return fieldErr(f+".index", "is required: the share index, 1..n")
		case indexes[p.Index]:
			return fieldErr(f+".index", fmt.Sprintf("share %d is given twice", p.Index))
		}
		urls[p.URL], indexes[p.Index] = true, true
	}
	if s.Timeout < 0 {
		return fieldErr(at+".timeout", "must be positive")
	}
	for _, f := range [][2]string{{"tls.cert", s.TLS.Cert}, {"tls.key", s.TLS.Key}, {"tls.ca", s.TLS.CA}} {
		if f[1] == "" {
			return fieldErr(at+"."+f[0], "is required with parties (mutual TLS)")
		}
	}
	return nil
}

// PIN reads the PKCS#11 user PIN from its environment variable.
func (s Signer) PIN() (string, error) {
	return secretEnv(s.PINEnv, "PIN")
}

// Token reads the remote signer's bearer token from its environment
// variable.
func (s Signer) Token() (string, error) {
	return secretEnv(s.TokenEnv, "token")
}

func secretEnv(name, what string) (string, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return "", fmt.Errorf("%s: $%s is not set", what, name)
	}
	return v, nil
}
