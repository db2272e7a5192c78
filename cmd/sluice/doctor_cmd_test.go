package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/doctor"
	"github.com/sluicepay/sluice/internal/sandbox"
	"github.com/sluicepay/sluice/internal/signer"
	"github.com/sluicepay/sluice/internal/store"
)

func TestDoctorExitCodes(t *testing.T) {
	dir := t.TempDir()
	key, _ := crypto.GenerateKey()
	ks, _, err := signer.WriteKeystore(filepath.Join(dir, "keys"), key, "pw", signer.ChosenPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := sandbox.Start(t.Context(), sandbox.Config{DataDir: dir, RPCAddr: "127.0.0.1:0", HotWalletKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = chain.Close() })
	dbPath := filepath.Join(dir, "sluice.db")
	db, err := store.Open(t.Context(), "sqlite:"+dbPath, store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	limited := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}))
	t.Cleanup(limited.Close)
	t.Setenv("SLUICE_DOCTOR_PW", "pw")

	write := func(name string, chainID int, urls ...string) string {
		var ups strings.Builder
		for _, u := range urls {
			fmt.Fprintf(&ups, "      - url: %q\n", u)
		}
		y := fmt.Sprintf("database: \"sqlite:%s\"\nchains:\n  - name: sandbox\n    chain_id: %d\n    upstreams:\n%s"+
			"    hot_wallets:\n      - address: %q\n        signer: {type: keystore, keystore: %q, passphrase_env: SLUICE_DOCTOR_PW}\n"+
			"api_keys:\n  - {name: t, sha256: %q}\n", dbPath, chainID, ups.String(), crypto.PubkeyToAddress(key.PublicKey).Hex(), ks, strings.Repeat("ab", 32))
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	healthy := write("ok.yaml", sandbox.ChainID, chain.RPCURL())
	warned := write("warn.yaml", sandbox.ChainID, chain.RPCURL(), limited.URL)
	noChainID := write("bad.yaml", 0, chain.RPCURL())

	cases := []struct {
		name        string
		args        []string
		code        int
		out, errOut string
	}{
		{"healthy", []string{"doctor", "--config", healthy}, 0, "OK: ", ""},
		{"healthy json", []string{"doctor", "--config", healthy, "--json"}, 0, `"status": "OK"`, ""},
		{"rate limited upstream", []string{"doctor", "--config", warned}, 1, "HTTP 429", ""},
		{"missing config", []string{"doctor", "--config", filepath.Join(dir, "none.yaml")}, 2, "", "none.yaml"},
		{"bad field", []string{"doctor", "--config", noChainID}, 2, "", "chains[0].chain_id"},
		{"bad flag", []string{"doctor", "--nope"}, 2, "", "-nope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(t.Context(), c.args, nil, &out, &errOut)
			if code != c.code || !strings.Contains(out.String(), c.out) || !strings.Contains(errOut.String(), c.errOut) {
				t.Errorf("code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, out.String(), errOut.String())
			}
			if strings.Contains(c.name, "json") {
				var rep doctor.Report
				if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Results) == 0 {
					t.Errorf("json report: %v", err)
				}
			}
		})
	}
}
