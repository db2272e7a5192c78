package signer_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/signer"
	"github.com/sluicepay/sluice/internal/signer/signertest"
)

// TestLimitsSurviveRestart: what the limits counted is kept in the state
// file, so a restarted signer (as after a crash) neither resets its daily
// cap nor signs a nonce again for another transfer; a torn last line is
// ignored, and any other bad line refuses to start.
func TestLimitsSurviveRestart(t *testing.T) {
	key := newKey(t)
	token := common.HexToAddress("0x00000000000000000000000000000000000000cc")
	limits := testLimits()
	limits.Assets[token.Hex()] = signer.AssetLimit{PerTx: "500", Daily: "800"}
	state := filepath.Join(t.TempDir(), "key.json.limits-state")
	start := func() (*signer.Remote, func()) {
		t.Helper()
		srv, err := signer.NewServer(signer.ServerConfig{Signer: signer.FromKey(key), Token: testToken, Limits: limits, StateFile: state})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewTLSServer(srv)
		r, err := signer.DialRemote(context.Background(), signer.RemoteConfig{URL: hs.URL, Token: testToken,
			TLS: hs.Client().Transport.(*http.Transport).TLSClientConfig})
		if err != nil {
			t.Fatal(err)
		}
		return r, func() { hs.Close(); _ = srv.Close() }
	}
	r, stop := start()
	for _, tx := range []*types.Transaction{tokenTx(1, token, payee, 500), tokenTx(1, token, payee, 500) /* a fee bump: once */} {
		sig, err := signWith(r, tx)
		if err != nil {
			t.Fatal(err)
		}
		signertest.Check(t, r.Address(), chain, tx, sig)
	}
	stop()
	if info, err := os.Stat(state); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, %v; want it, mode 0600", info, err)
	}

	// A torn last line (a crash mid-write: its signature was never given).
	f, err := os.OpenFile(state, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(`{"chain_id":1337,"nonce":9,"asse`)
	_ = f.Close()
	r, stop = start()
	for _, st := range []struct {
		tx      *types.Transaction
		refused string
	}{
		{tokenTx(2, token, payee, 301), "would pass the daily cap 800 (500 signed today)"},
		{tokenTx(1, token, payee, 499), "nonce 1 was already signed for another transfer"},
		{tokenTx(2, token, payee, 300), ""},
	} {
		_, err := signWith(r, st.tx)
		if (st.refused == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), st.refused)) {
			t.Errorf("after a restart, nonce %d: err = %v, want %q", st.tx.Nonce(), err, st.refused)
		}
	}
	stop()

	// Any other unreadable line: the totals cannot be trusted.
	b, _ := os.ReadFile(state)
	if err := os.WriteFile(state, append([]byte("not json\n"), b...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := signer.NewServer(signer.ServerConfig{Signer: signer.FromKey(key), Token: testToken, Limits: limits, StateFile: state}); err == nil ||
		!strings.Contains(err.Error(), state) || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("a corrupt state: err = %v, want a refusal naming the file and the line", err)
	}

	if err := os.WriteFile(state, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// A state it cannot write: it signs nothing, and says it is unavailable
	// rather than refusing the payout.
	srv, err := signer.NewServer(signer.ServerConfig{Signer: signer.FromKey(key), Token: testToken, Limits: limits, StateFile: state})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(srv)
	defer hs.Close()
	r, err = signer.DialRemote(context.Background(), signer.RemoteConfig{URL: hs.URL, Token: testToken,
		TLS: hs.Client().Transport.(*http.Transport).TLSClientConfig})
	if err != nil {
		t.Fatal(err)
	}
	if err := signer.BreakLimitsState(srv); err != nil {
		t.Fatal(err)
	}
	_, err = signWith(r, nativeTx(3, payee, 1))
	if err == nil || errors.Is(err, signer.ErrRefused) || !errors.Is(err, payout.ErrSignerUnavailable) ||
		!strings.Contains(err.Error(), "cannot record what it signs") {
		t.Errorf("signing with an unwritable state: err = %v, want unavailable, not refused", err)
	}
}
