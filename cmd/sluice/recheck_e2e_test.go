package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// TestPolicyRecheckedBeforeSigning: a payout accepted while its
// destination was clean, whose destination is put on a sanctions list
// while it waits (here behind a pause), fails sanctioned_destination when
// its sender comes to sign it; nothing is sent.
func TestPolicyRecheckedBeforeSigning(t *testing.T) {
	te := startTestEngine(t, 200*time.Millisecond, 1)
	const to = "0x2222222222222222222222222222222222222222"
	doc, _ := json.Marshal(map[string]string{"document": "version: 1\nrules:\n  - name: all\n    when: true\n    action: allow\ndefault: deny\n"})
	for _, rq := range []struct{ method, path, body string }{
		{"POST", "/v1/lists", `{"name":"ofac","kind":"deny","sanctions":true}`},
		{"PUT", "/v1/policy", string(doc)},
		{"POST", "/v1/pauses", `{"scope":"global","reason":"hold the queue for the test"}`},
	} {
		if code, body := apiDo(t, te, rq.method, rq.path, "application/json", rq.body, "", nil); code >= 300 {
			t.Fatalf("%s %s = %d %s", rq.method, rq.path, code, body)
		}
	}
	var p payout.Payout
	if code, body := apiDo(t, te, "POST", "/v1/payouts", "application/json",
		`{"chain":"sandbox","asset":"ETH","to":"`+to+`","amount":"1000"}`, "recheck-1", &p); code != 201 {
		t.Fatalf("create = %d %s", code, body)
	}
	if code, body := apiDo(t, te, "POST", "/v1/lists/ofac/entries", "application/json", `{"addresses":["`+to+`"]}`, "", nil); code != 200 {
		t.Fatalf("add to list = %d %s", code, body)
	}
	var pauses struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	apiDo(t, te, "GET", "/v1/pauses", "", "", "", &pauses)
	for _, ps := range pauses.Data {
		apiDo(t, te, "POST", "/v1/pauses/"+ps.ID+"/resume", "", "", "", nil)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got payout.Payout
		apiDo(t, te, "GET", "/v1/payouts/"+p.ID, "", "", "", &got)
		if got.Status.Terminal() {
			if got.Status != payout.StatusFailed || got.FailureCode != "sanctioned_destination" || got.TxHash != nil {
				t.Fatalf("payout = %s %s tx %v, want failed sanctioned_destination, never sent", got.Status, got.FailureCode, got.TxHash)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("payout still %s (%s)", got.Status, got.Reason)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
