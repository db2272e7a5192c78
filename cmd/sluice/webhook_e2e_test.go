package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/sandbox"
	"github.com/sluicepay/sluice/internal/store"
)

// verifiedDelivery is what internal/events/testdata/receiver.mjs reports
// of each delivery it verified with the standardwebhooks npm package.
type verifiedDelivery struct {
	ID           string  `json:"id"`
	Type         *string `json:"type"`
	Signatures   int     `json:"signatures"`
	VerifiedWith []int   `json:"verified_with"`
	Error        *string `json:"error"`
}

// standardWebhooksReceiver runs the Node.js receiver; it skips the test
// only when node is absent (CI installs it).
func standardWebhooksReceiver(t *testing.T) (url string, setSecrets func(...string), reports func() []verifiedDelivery) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (CI installs it)")
	}
	dir := filepath.Join("..", "..", "internal", "events", "testdata")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks")); err != nil {
		t.Fatalf("run `npm ci --prefix internal/events/testdata` first: %v", err)
	}
	cmd := exec.Command(node, "receiver.mjs")
	cmd.Dir = dir
	out, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(out)
	var hello struct{ Listening int }
	if !lines.Scan() || json.Unmarshal(lines.Bytes(), &hello) != nil || hello.Listening == 0 {
		t.Fatalf("receiver did not start: %q %s", lines.Text(), stderr.String())
	}
	url = "http://127.0.0.1:" + strconv.Itoa(hello.Listening)
	var mu sync.Mutex
	var got []verifiedDelivery
	go func() {
		for lines.Scan() {
			var d verifiedDelivery
			if json.Unmarshal(lines.Bytes(), &d) == nil {
				mu.Lock()
				got = append(got, d)
				mu.Unlock()
			}
		}
	}()
	setSecrets = func(s ...string) {
		b, _ := json.Marshal(s)
		resp, err := http.Post(url+"/_secrets", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	reports = func() []verifiedDelivery {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	return url, setSecrets, reports
}

// TestEngineWebhooksVerifiedByStandardWebhooks runs a real engine on a dev
// chain, registers the Node.js receiver with `sluice webhook create`-level
// SDK calls, pays, and checks that every event the engine wrote (created,
// submitted, confirming, completed) reached the receiver and was verified
// by the standardwebhooks npm package, also during a secret rotation.
func TestEngineWebhooksVerifiedByStandardWebhooks(t *testing.T) {
	url, setSecrets, reports := standardWebhooksReceiver(t)
	ctx := context.Background()
	key, _ := crypto.GenerateKey()
	chain, err := sandbox.Start(ctx, sandbox.Config{DataDir: t.TempDir(), RPCAddr: "127.0.0.1:0", HotWalletKey: key, BlockTime: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.Close() })
	wallet := crypto.PubkeyToAddress(key.PublicKey)
	apiKey := "sk_test_webhooks"
	cfg := sandboxConfig(t, chain, apiKey, handedIn(wallet))
	cfg.Webhooks = config.Webhooks{AllowPrivateTargets: true, Timeout: 10 * time.Second, Workers: 8, DisableAfter: 72 * time.Hour}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	eng, err := startEngine(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)),
		engineOptions{Signers: map[common.Address]payout.Signer{wallet: evm.KeySigner{Key: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	c := client.New(eng.URL(), apiKey)

	ep, err := c.CreateWebhookEndpoint(ctx, client.CreateWebhookEndpointParams{URL: url + "/sluice", EnabledEvents: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	setSecrets(ep.Secret)
	pay := func(n int) {
		var ids []string
		for i := range n {
			p, err := c.CreatePayout(ctx, client.CreatePayoutParams{Chain: "sandbox", Asset: "SUSD",
				To: common.BigToAddress(big.NewInt(int64(0xCAFE00 + i))).Hex(), Amount: big.NewInt(int64(1000 + i))}, "")
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, p.ID)
		}
		waitAllCompleted(t, eng.URL(), apiKey, ids, 60*time.Second)
	}
	// waitVerified waits until every event in the outbox was delivered and
	// returns them.
	waitVerified := func() []client.Event {
		deadline := time.Now().Add(30 * time.Second)
		for {
			var evs []client.Event
			for page, err := range c.EventPages(ctx, client.ListEventsParams{Limit: 100}) {
				if err != nil {
					t.Fatal(err)
				}
				evs = append(evs, page.Data...)
			}
			seen := map[string]bool{}
			for _, r := range reports() {
				seen[r.ID] = true
			}
			if !slices.ContainsFunc(evs, func(e client.Event) bool { return !seen[e.ID] }) {
				return evs
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 30 s the receiver has %d deliveries for %d events", len(reports()), len(evs))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	pay(3)
	before := waitVerified()
	n := len(reports())

	rotated, err := c.RotateWebhookSecret(ctx, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	setSecrets(ep.Secret, rotated.Secret)
	pay(1)
	all := waitVerified()

	types := map[string]int{}
	for _, e := range all {
		types[e.Type]++
	}
	for _, typ := range []string{"payout.created", "payout.submitted", "payout.confirming", "payout.completed"} {
		if types[typ] != 4 {
			t.Errorf("%d %s events, want 4 (one per payout): %v", types[typ], typ, types)
		}
	}
	for i, r := range reports() {
		want, sigs := []int{0}, 1
		if i >= n {
			want, sigs = []int{0, 1}, 2 // during the rotation: each signature verified with its own secret
		}
		if !slices.Equal(r.VerifiedWith, want) || r.Signatures != sigs || r.Type == nil {
			t.Errorf("delivery %d (%s): verified with %v and %d signatures, want %v and %d; error %v", i, r.ID, r.VerifiedWith, r.Signatures, want, sigs, r.Error)
		}
	}
	t.Logf("standardwebhooks verified %d deliveries of %d events from a running engine (%d before the rotation, %d after)",
		len(reports()), len(all), n, len(reports())-n)
	if len(before) == len(all) {
		t.Error("the payout after the rotation wrote no events")
	}
	// The deliveries above were signed with secrets the database holds
	// only sealed: a reader without the engine's secrets key (the data
	// dir's secrets.key) sees neither.
	db, err := store.Open(ctx, cfg.Database, store.Options{NoMigrate: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stored, err := db.GetWebhookEndpoint(ctx, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{stored.Secret, stored.PreviousSecret} {
		if !strings.HasPrefix(v, "enc:v1:") || v == ep.Secret || v == rotated.Secret {
			t.Errorf("a webhook secret is stored as %.20q…, want it sealed", v)
		}
	}
}
