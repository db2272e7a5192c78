package signer_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicepay/sluice/internal/signer"
)

func TestInstrumentedOutcomes(t *testing.T) {
	rs := startRemote(t, newKey(t), testLimits(), nil)
	reg := prometheus.NewRegistry()
	s := signer.Instrumented{Signer: dialRemote(t, rs, testToken), Backend: "remote", Metrics: signer.NewMetrics(reg)}
	stranger := common.HexToAddress("0x00000000000000000000000000000000000000bb")
	if _, err := signWithSigner(s, nativeTx(1, payee, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := signWithSigner(s, nativeTx(2, stranger, 1)); !errors.Is(err, signer.ErrRefused) {
		t.Fatalf("err = %v", err)
	}
	rs.Close()
	if _, err := signWithSigner(s, nativeTx(3, payee, 1)); err == nil {
		t.Fatal("signed with the server down")
	}
	want := `
# HELP sluice_signer_signatures_total Signatures by signer backend and outcome.
# TYPE sluice_signer_signatures_total counter
sluice_signer_signatures_total{backend="remote",outcome="ok"} 1
sluice_signer_signatures_total{backend="remote",outcome="refused"} 1
sluice_signer_signatures_total{backend="remote",outcome="unavailable"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_signer_signatures_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "sluice_signer_duration_seconds"); n != 1 {
		t.Errorf("%d latency series, want 1 (backend remote)", n)
	}
}

// A request in flight is abandoned as soon as its context ends: a hung
// signer does not hold the sender for the client's whole timeout.
func TestRemoteCancelInFlight(t *testing.T) {
	key := newKey(t)
	srv, err := signer.NewServer(signer.ServerConfig{Signer: signer.FromKey(key), Token: testToken, Limits: testLimits()})
	if err != nil {
		t.Fatal(err)
	}
	hang := make(chan struct{})
	hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang: // the first request (the address) is answered; signing hangs
		default:
			close(hang)
			srv.ServeHTTP(w, r)
			return
		}
		io.Copy(io.Discard, r.Body) // the server notices a closed connection only once the body is read
		<-r.Context().Done()
	}))
	defer hs.Close()
	r, err := signer.DialRemote(context.Background(), signer.RemoteConfig{URL: hs.URL, Token: testToken,
		TLS: hs.Client().Transport.(*http.Transport).TLSClientConfig, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	tx := nativeTx(1, payee, 1)
	unsigned, _ := tx.MarshalBinary()
	_, err = r.SignTransaction(ctx, chain, unsigned, types.LatestSignerForChainID(chain).Hash(tx))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("err = %v after %s, want the context's deadline at once", err, time.Since(start))
	}
}
