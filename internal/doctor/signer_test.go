package doctor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/signer"
)

func TestRemoteSignerCheck(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t, f.rpcURL)
	srv, err := signer.NewServer(signer.ServerConfig{Signer: signer.FromKey(ksKey), Token: "doctor-token-0123456789",
		Limits: signer.Limits{ChainIDs: []uint64{1337}, MaxFeePerTx: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(srv)
	defer hs.Close()
	cfg.Chains[0].HotWallets[0].Signer = config.Signer{Type: "remote", SignerBackends: config.SignerBackends{URL: hs.URL}}
	open := func(ctx context.Context, s config.Signer, field string) (payout.Signer, error) {
		return signer.DialRemote(ctx, signer.RemoteConfig{URL: s.URL, Token: "doctor-token-0123456789",
			TLS: hs.Client().Transport.(*http.Transport).TLSClientConfig})
	}
	if r := find(t, Run(t.Context(), cfg, Options{OpenSigner: open}), "signer sandbox"); r.Status != OK || !strings.Contains(r.Detail, "remote signer") {
		t.Errorf("remote signer up: %s %s (%s)", r.Status, r.Detail, r.Advice)
	}
	if r := find(t, Run(t.Context(), cfg, Options{}), "signer sandbox"); r.Status != Warn {
		t.Errorf("no way to open it: %s %s, want WARN", r.Status, r.Detail)
	}
	cfg.Chains[0].HotWallets[0].Address = common.HexToAddress("0x00000000000000000000000000000000000000ee").Hex()
	if r := find(t, Run(t.Context(), cfg, Options{OpenSigner: open}), "signer sandbox"); r.Status != Fail || !strings.Contains(r.Detail, "holds the key of") {
		t.Errorf("another wallet's signer: %s %s", r.Status, r.Detail)
	}
	cfg.Chains[0].HotWallets[0].Address = f.wallet.Hex()
	hs.Close()
	if r := find(t, Run(t.Context(), cfg, Options{OpenSigner: open}), "signer sandbox"); r.Status != Fail || !strings.Contains(r.Advice, "remote signer") {
		t.Errorf("remote signer down: %s %s (%s)", r.Status, r.Detail, r.Advice)
	}
}
