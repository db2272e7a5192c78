package doctor

import (
	"crypto/x509"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestTLSCertificateDays(t *testing.T) {
	f := newFixture(t)
	ts := httptest.NewUnstartedServer(proxyHandler(f.rpcURL, nil))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case's handshake errors
	ts.StartTLS()
	t.Cleanup(ts.Close)
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())

	rep := Run(t.Context(), f.config(t, ts.URL), Options{RootCAs: roots})
	if r := find(t, rep, "upstream sandbox https://"); r.Status != OK {
		t.Errorf("upstream through TLS: %+v", r)
	}
	if r := find(t, rep, "tls sandbox https://"); r.Status != OK || !strings.Contains(r.Detail, "valid for") {
		t.Errorf("tls: %+v", r)
	}

	notAfter := ts.Certificate().NotAfter
	cases := []struct {
		name   string
		now    time.Time
		roots  *x509.CertPool
		status Status
		detail string
	}{
		{"five days left", notAfter.Add(-5 * 24 * time.Hour), roots, Warn, "expires in 5 days"},
		{"expired", notAfter.Add(24 * time.Hour), roots, Fail, "expired on"},
		{"untrusted", time.Now(), x509.NewCertPool(), Fail, "not trusted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := checkTLS(t.Context(), "sandbox", ts.URL, Options{Now: func() time.Time { return c.now }, RootCAs: c.roots, Timeout: 3 * time.Second})
			if r.Status != c.status || !strings.Contains(r.Detail, c.detail) || r.Advice == "" {
				t.Errorf("got %+v, want %s %q with advice", r, c.status, c.detail)
			}
		})
	}
}
