package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// TestPolicyBalanceShare: the balance_share fact is the payout's amount
// over what its hot wallet can spend (Config.WalletBalance).
func TestPolicyBalanceShare(t *testing.T) {
	t.Parallel()
	api, err := New(Config{Store: openStore(t), Catalog: testCatalog(), APIKeys: []APIKey{{ID: "key_a", Name: "primary", Hash: HashAPIKey(testKey)}},
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return testNow },
		WalletBalance: func(_ context.Context, chain string, wallet common.Address, asset string) (*big.Int, bool) {
			return big.NewInt(1_000_000), chain == "sandbox" && wallet == testWallet && asset == "SUSD"
		}})
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body, key string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		rec := httptest.NewRecorder()
		api.Handler().ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	doc, _ := json.Marshal(map[string]string{"document": "version: 1\nrules:\n  - name: most-of-the-wallet\n" +
		"    when: balance_share > 0.5\n    action: deny\n  - name: rest\n    when: true\n    action: allow\ndefault: deny\n"})
	if code, body := do("PUT", "/v1/policy", string(doc), ""); code != http.StatusOK {
		t.Fatalf("PUT policy = %d %s", code, body)
	}
	pay := func(amount, key string) (int, string) {
		return do("POST", "/v1/payouts", `{"chain":"sandbox","asset":"SUSD","to":"`+validTo+`","amount":"`+amount+`"}`, key)
	}
	if code, body := pay("600000", "big"); code != 422 || !strings.Contains(body, "policy_denied") || !strings.Contains(body, "most-of-the-wallet") {
		t.Errorf("60%% of the wallet = %d %s, want 422 policy_denied by most-of-the-wallet", code, body)
	}
	code, body := pay("400000", "small")
	var p struct {
		ID string `json:"id"`
	}
	if json.Unmarshal([]byte(body), &p); code != http.StatusCreated {
		t.Fatalf("40%% of the wallet = %d %s, want 201", code, body)
	}
	if _, got := do("GET", "/v1/payouts/"+p.ID, "", ""); !strings.Contains(got, `"balance_share":0.4`) {
		t.Errorf("the allowed payout's decision lacks balance_share 0.4: %s", got)
	}
}
