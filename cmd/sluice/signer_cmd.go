package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"gopkg.in/yaml.v3"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/signer"
)

// openSignerBackend opens the signer a config describes; field names it in
// errors (e.g. chains[0].hot_wallets[1].signer).
func openSignerBackend(ctx context.Context, s config.Signer, field string, log *slog.Logger) (payout.Signer, error) {
	return openSignerFor(ctx, s, field, log, common.Address{})
}

// openSignerFor is openSignerBackend for a hot wallet whose address the
// config gives (zero: none): a remote signer that cannot be reached now is
// opened for that address, verified before its first signature.
func openSignerFor(ctx context.Context, s config.Signer, field string, log *slog.Logger, wallet common.Address) (payout.Signer, error) {
	switch s.Type {
	case "keystore":
		pass, err := s.Passphrase()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		ks, err := signer.OpenKeystore(s.Keystore, pass)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		return ks, nil
	case "pkcs11":
		pin, err := s.PIN()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		p, err := signer.OpenPKCS11(signer.PKCS11Config{Module: s.Module, TokenLabel: s.TokenLabel, KeyLabel: s.KeyLabel, PIN: pin})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		return p, nil
	case "remote":
		token, err := s.Token()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		r, err := signer.DialRemote(ctx, signer.RemoteConfig{URL: s.URL, Token: token, CAFile: s.CAFile,
			CertFile: s.CertFile, KeyFile: s.KeyFile, Timeout: s.Timeout, Dialect: s.Dialect, Account: common.HexToAddress(s.Account),
			Expect: wallet})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		return r, nil
	case "mpc":
		if len(s.Parties) > 0 {
			cfg := signer.MPCRemoteConfig{CertFile: s.TLS.Cert, KeyFile: s.TLS.Key, CAFile: s.TLS.CA, Timeout: s.Timeout}
			for _, p := range s.Parties {
				cfg.Parties = append(cfg.Parties, signer.MPCRemotePartyConfig{URL: p.URL, Index: p.Index})
			}
			m, err := signer.DialMPC(ctx, cfg)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", field, err)
			}
			return m, nil
		}
		pass, err := s.Passphrase()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		m, err := signer.OpenMPC(s.Shares, pass)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		return m, nil
	case "failover":
		members := make([]payout.Signer, len(s.Signers))
		names := make([]string, len(s.Signers))
		for i, m := range s.Signers {
			names[i] = fmt.Sprintf("%s.signers[%d]", field, i)
			sg, err := openSignerFor(ctx, m, names[i], log, wallet)
			if err != nil {
				return nil, err
			}
			members[i] = sg
		}
		return signer.NewFailover(members, names, s.RetryAfter, log)
	default:
		return nil, fmt.Errorf("%s.type: %q is not a known signer type", field, s.Type)
	}
}

// runSigner runs `sluice signer serve`.
func runSigner(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "serve" {
		return fmt.Errorf("%w: signer: want 'sluice signer serve ...'", errUsage)
	}
	fs := flag.NewFlagSet("signer serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keystore := fs.String("keystore", "", "the keystore v3 file holding the key (required)")
	passEnv := fs.String("passphrase-env", "SLUICE_KEYSTORE_PASSPHRASE", "environment variable holding the keystore's passphrase")
	listen := fs.String("listen", "127.0.0.1:8443", "address to serve HTTPS on")
	certFile := fs.String("tls-cert", "", "the server's TLS certificate, PEM (required)")
	keyFile := fs.String("tls-key", "", "the server's TLS key, PEM (required)")
	clientCA := fs.String("client-ca", "", "require client certificates signed by this CA, PEM (mTLS)")
	tokenEnv := fs.String("token-env", "SLUICE_SIGNER_TOKEN", "environment variable holding the bearer token the engine must send")
	limitsFile := fs.String("limits", "", "YAML file of the limits every transaction must pass (required): chain_ids, allow, assets, max_fee_per_tx")
	stateFile := fs.String("limits-state", "", "file keeping what the limits counted across restarts (default: the keystore's path + .limits-state; none: memory only, a restart resets the daily caps)")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: signer serve: %v", errUsage, err)
	}
	for flagName, v := range map[string]string{"keystore": *keystore, "tls-cert": *certFile, "tls-key": *keyFile, "limits": *limitsFile} {
		if v == "" {
			return fmt.Errorf("%w: signer serve needs --%s", errUsage, flagName)
		}
	}
	token := os.Getenv(*tokenEnv)
	if token == "" {
		return fmt.Errorf("signer serve: $%s is not set", *tokenEnv)
	}
	pass, ok := os.LookupEnv(*passEnv)
	if !ok {
		return fmt.Errorf("signer serve: $%s is not set", *passEnv)
	}
	limits, err := readLimits(*limitsFile)
	if err != nil {
		return err
	}
	ks, err := signer.OpenKeystore(*keystore, pass)
	if err != nil {
		return err
	}
	log := newLogger(stderr, "info", "text")
	srv, err := signer.NewServer(signer.ServerConfig{Signer: ks, Token: token, Limits: limits, Logger: log,
		StateFile: limitsStatePath(*stateFile, *keystore)})
	if err != nil {
		return limitsStateHint(err)
	}
	tlsCfg, err := serverTLS(*certFile, *keyFile, *clientCA)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	hs := &http.Server{Handler: srv, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	fmt.Fprintf(stdout, "Sluice remote signer for %s at https://%s\n", ks.Address().Hex(), ln.Addr())
	return serveTLSUntil(ctx, hs, ln)
}

// limitsStatePath is --limits-state: the file given, next to secret (the
// keystore or the share) when none is, or "" for "none" (memory only).
func limitsStatePath(flagValue, secret string) string {
	switch flagValue {
	case "none":
		return ""
	case "":
		return secret + ".limits-state"
	}
	return flagValue
}

// limitsStateHint adds to a limits-state error the flag that moves the file.
func limitsStateHint(err error) error {
	if errors.Is(err, signer.ErrLimitsState) {
		return fmt.Errorf("%w (--limits-state names another file)", err)
	}
	return err
}

func readLimits(path string) (signer.Limits, error) {
	var l signer.Limits
	blob, err := os.ReadFile(path)
	if err != nil {
		return l, fmt.Errorf("limits: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(blob)))
	dec.KnownFields(true)
	if err := dec.Decode(&l); err != nil {
		return l, fmt.Errorf("limits %s: %w", path, err)
	}
	return l, nil
}

func serverTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		c.ClientCAs = x509.NewCertPool()
		if !c.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s: no certificate found", clientCA)
		}
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// serveTLSUntil serves hs on ln (its TLSConfig set) until ctx ends, then
// shuts it down, giving requests in flight 5 s.
func serveTLSUntil(ctx context.Context, hs *http.Server, ln net.Listener) error {
	return serveUntil(ctx, hs, func() error { return hs.ServeTLS(ln, "", "") })
}

// serveUntil runs serve (hs serving its listener) until ctx ends, then
// shuts hs down, giving requests in flight 5 s.
func serveUntil(ctx context.Context, hs *http.Server, serve func() error) error {
	served := make(chan error, 1)
	go func() { served <- serve() }()
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return hs.Shutdown(shutdown)
	case err := <-served:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
