package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/sluicepay/sluice/internal/rpcpool"
)

// checkTLS dials an https upstream and reports the days until its leaf
// certificate expires, and whether it is trusted.
func checkTLS(ctx context.Context, chain, rawURL string, opts Options) Result {
	shown := rpcpool.RedactURL(rawURL)
	r := Result{Check: fmt.Sprintf("tls %s %s", chain, shown)}
	u, err := url.Parse(rawURL)
	if err != nil {
		return fail(r, "unparsable url", fmt.Sprintf("upstream %s: fix its URL", shown))
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	cfg := &tls.Config{ServerName: u.Hostname(), RootCAs: opts.RootCAs, Time: opts.Now, MinVersion: tls.VersionTLS12}
	leaf, verifyErr := leafCert(ctx, addr, cfg, opts.Timeout)
	if verifyErr != nil && !isCertError(verifyErr) {
		return fail(r, "cannot connect: "+verifyErr.Error(), fmt.Sprintf("upstream %s: check its host and port", shown))
	}
	if verifyErr != nil {
		// Read the certificate anyway, to say when it expires.
		insecure := cfg.Clone()
		insecure.InsecureSkipVerify = true // only to read NotAfter; nothing is sent
		var err error
		if leaf, err = leafCert(ctx, addr, insecure, opts.Timeout); err != nil {
			return fail(r, "cannot connect: "+err.Error(), fmt.Sprintf("upstream %s: check its host and port", shown))
		}
	}
	return judgeCert(r, shown, leaf, verifyErr, opts.Now())
}

// judgeCert grades a leaf certificate by its expiry and trust.
func judgeCert(r Result, shown string, leaf *x509.Certificate, verifyErr error, now time.Time) Result {
	days := int(leaf.NotAfter.Sub(now).Hours() / 24)
	until := leaf.NotAfter.UTC().Format(time.DateOnly)
	renew := fmt.Sprintf("upstream %s: renew its TLS certificate (expires %s)", shown, until)
	switch {
	case !now.Before(leaf.NotAfter):
		return fail(r, "certificate expired on "+until, fmt.Sprintf("upstream %s: its TLS certificate expired on %s: renew it", shown, until))
	case verifyErr != nil:
		return fail(r, "certificate not trusted: "+verifyErr.Error(),
			fmt.Sprintf("upstream %s: its certificate does not verify: fix its chain or hostname", shown))
	case days < CertWarnDays:
		r.Status, r.Detail, r.Advice = Warn, fmt.Sprintf("certificate expires in %d days (%s)", days, until), renew
	default:
		r.Status, r.Detail = OK, fmt.Sprintf("certificate valid for %d days (until %s)", days, until)
	}
	return r
}

// leafCert completes a TLS handshake and returns the server's leaf.
func leafCert(ctx context.Context, addr string, cfg *tls.Config, timeout time.Duration) (*x509.Certificate, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: cfg}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	return certs[0], nil
}

// isCertError reports whether err is about the certificate rather than
// the connection.
func isCertError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		verify   *tls.CertificateVerificationError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &hostname)
}

func fail(r Result, detail, advice string) Result {
	r.Status, r.Detail, r.Advice = Fail, detail, advice
	return r
}
