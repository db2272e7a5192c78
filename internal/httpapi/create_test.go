package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
)

func TestCreatePayout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	body := `{"chain":"sandbox","asset":"SUSD","to":"` + strings.ToLower(validTo) + `","amount":"1500000",` +
		`"external_id":"inv-1","metadata":{"order":"42"}}`
	r := e.create("k1", body)
	if r.status != http.StatusCreated {
		t.Fatalf("status %d, body %s", r.status, r.body)
	}
	var got map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	id, _ := got["id"].(string)
	if !strings.HasPrefix(id, "po_") || len(id) != 29 {
		t.Errorf("id = %q, want po_ and 26 characters", id)
	}
	want := map[string]any{
		"id": id, "object": "payout", "status": "queued", "chain": "sandbox", "chain_id": 1337.0,
		"asset": "SUSD", "to": validTo, "amount": "1500000", "external_id": "inv-1",
		"metadata": map[string]any{"order": "42"}, "from": testWallet.Hex(), "tx_hash": nil, "nonce": nil,
		"block_number": nil, "fee": nil, "failure_code": nil, "failure_message": nil,
		"priority": "standard", "status_reason": nil, "status_detail": nil, "fee_cap": nil, "cancel_requested": false,
		"batch_id": nil, "log_index": nil,
		"created_at": "2026-01-02T03:04:05.123456Z", "updated_at": "2026-01-02T03:04:05.123456Z",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("created payout (-want +got):\n%s", diff)
	}
	if got, want := r.header.Get("Location"), "/v1/payouts/"+id; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if len(e.woken) != 1 {
		t.Errorf("OnPayoutCreated called %d times, want 1", len(e.woken))
	}
	// What GET answers is what POST answered.
	g := e.do("GET", "/v1/payouts/"+id, "")
	if diff := cmp.Diff(string(r.body), string(g.body)); g.status != 200 || diff != "" {
		t.Errorf("GET status %d, body differs from the create answer (-create +get):\n%s", g.status, diff)
	}
}

// TestCreatePayoutRefused sends every kind of bad request and checks the
// status, the code, and that nothing was stored.
func TestCreatePayoutRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	field := func(f string, code payout.Code) []string { return []string{"/" + f + " " + string(code)} }
	tests := []struct {
		name       string
		body       string
		headers    []string
		wantStatus int
		wantCode   payout.Code
		wantFields []string // "pointer code"
	}{
		{name: "no api key", body: validPayload, headers: []string{"Authorization:"}, wantStatus: 401, wantCode: payout.CodeUnauthorized},
		{name: "wrong api key", body: validPayload, headers: []string{"Authorization: Bearer sk_wrong"}, wantStatus: 401, wantCode: payout.CodeUnauthorized},
		{name: "basic auth scheme", body: validPayload, headers: []string{"Authorization: Basic " + testKey}, wantStatus: 401, wantCode: payout.CodeUnauthorized},
		{name: "malformed json", body: `{"chain":`, wantStatus: 400, wantCode: payout.CodeMalformedJSON},
		{name: "syntax error", body: `{"chain" "sandbox"}`, wantStatus: 400, wantCode: payout.CodeMalformedJSON},
		{name: "empty body", body: " ", wantStatus: 400, wantCode: payout.CodeMalformedJSON},
		{name: "array body", body: `[` + validPayload + `]`, wantStatus: 400, wantCode: payout.CodeMalformedJSON},
		{name: "null body", body: `null`, wantStatus: 400, wantCode: payout.CodeMalformedJSON},
		{name: "trailing data", body: validPayload + ` {}`, wantStatus: 400, wantCode: payout.CodeMalformedJSON},
		{name: "trailing garbage", body: validPayload + `x`, wantStatus: 400, wantCode: payout.CodeMalformedJSON},
		{name: "unknown field", body: strings.Replace(validPayload, `{`, `{"memo":"x",`, 1), wantStatus: 400, wantCode: payout.CodeUnknownField, wantFields: field("memo", payout.CodeUnknownField)},
		{name: "field in capitals", body: strings.Replace(validPayload, `"chain"`, `"CHAIN"`, 1), wantStatus: 400, wantCode: payout.CodeUnknownField, wantFields: field("CHAIN", payout.CodeUnknownField)},
		{name: "amount twice", body: strings.Replace(validPayload, `{`, `{"amount":"999999999",`, 1), wantStatus: 400, wantCode: payout.CodeMalformedJSON, wantFields: field("amount", payout.CodeMalformedJSON)},
		{name: "too large", body: `{"chain":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, wantStatus: 413, wantCode: payout.CodeBodyTooLarge},
		{name: "text content type", body: validPayload, headers: []string{"Content-Type: text/plain"}, wantStatus: 415, wantCode: payout.CodeUnsupportedMediaType},
		{name: "no content type", body: validPayload, headers: []string{"Content-Type:"}, wantStatus: 415, wantCode: payout.CodeUnsupportedMediaType},
		{name: "form content type", body: validPayload, headers: []string{"Content-Type: application/x-www-form-urlencoded"}, wantStatus: 415, wantCode: payout.CodeUnsupportedMediaType},
		{name: "invalid address", body: strings.Replace(validPayload, validTo, "0x1234", 1), wantStatus: 422, wantCode: payout.CodeInvalidAddress, wantFields: field("to", payout.CodeInvalidAddress)},
		{name: "address without 0x", body: strings.Replace(validPayload, validTo, validTo[2:]+"00", 1), wantStatus: 422, wantCode: payout.CodeInvalidAddress, wantFields: field("to", payout.CodeInvalidAddress)},
		{name: "wrong checksum", body: strings.Replace(validPayload, validTo, badChecksum, 1), wantStatus: 422, wantCode: payout.CodeInvalidChecksum, wantFields: field("to", payout.CodeInvalidChecksum)},
		{name: "zero address", body: strings.Replace(validPayload, validTo, "0x"+strings.Repeat("0", 40), 1), wantStatus: 422, wantCode: payout.CodeZeroAddress, wantFields: field("to", payout.CodeZeroAddress)},
		{name: "amount zero", body: payoutBody("0"), wantStatus: 422, wantCode: payout.CodeInvalidAmount, wantFields: field("amount", payout.CodeInvalidAmount)},
		{name: "amount negative", body: payoutBody("-5"), wantStatus: 422, wantCode: payout.CodeInvalidAmount, wantFields: field("amount", payout.CodeInvalidAmount)},
		{name: "amount fractional", body: payoutBody("1.5"), wantStatus: 422, wantCode: payout.CodeInvalidAmount, wantFields: field("amount", payout.CodeInvalidAmount)},
		{name: "amount not numeric", body: payoutBody("ten"), wantStatus: 422, wantCode: payout.CodeInvalidAmount, wantFields: field("amount", payout.CodeInvalidAmount)},
		{name: "amount exponent", body: payoutBody("1e6"), wantStatus: 422, wantCode: payout.CodeInvalidAmount, wantFields: field("amount", payout.CodeInvalidAmount)},
		{name: "amount above 2^256-1", body: payoutBody(overUint256), wantStatus: 422, wantCode: payout.CodeAmountTooLarge, wantFields: field("amount", payout.CodeAmountTooLarge)},
		{name: "amount as json number", body: strings.Replace(validPayload, `"1500000"`, `1500000`, 1), wantStatus: 422, wantCode: payout.CodeInvalidAmount, wantFields: field("amount", payout.CodeInvalidAmount)},
		{name: "amount as bool", body: strings.Replace(validPayload, `"1500000"`, `true`, 1), wantStatus: 422, wantCode: payout.CodeInvalidAmount, wantFields: field("amount", payout.CodeInvalidAmount)},
		{name: "amount missing", body: `{"chain":"sandbox","asset":"SUSD","to":"` + validTo + `"}`, wantStatus: 422, wantCode: payout.CodeInvalidAmount, wantFields: field("amount", payout.CodeInvalidAmount)},
		{name: "unknown chain", body: strings.Replace(validPayload, `"sandbox"`, `"mainnet"`, 1), wantStatus: 422, wantCode: payout.CodeUnknownChain, wantFields: field("chain", payout.CodeUnknownChain)},
		{name: "unknown asset", body: strings.Replace(validPayload, `"SUSD"`, `"DOGE"`, 1), wantStatus: 422, wantCode: payout.CodeUnknownAsset, wantFields: field("asset", payout.CodeUnknownAsset)},
		{name: "chain as number", body: strings.Replace(validPayload, `"sandbox"`, `5`, 1), wantStatus: 422, wantCode: payout.CodeUnknownChain, wantFields: field("chain", payout.CodeUnknownChain)},
		{name: "metadata values not strings", body: strings.Replace(validPayload, `{`, `{"metadata":{"a":1},`, 1), wantStatus: 422, wantCode: payout.CodeInvalidMetadata, wantFields: field("metadata", payout.CodeInvalidMetadata)},
		{name: "unknown priority", body: strings.Replace(validPayload, `{`, `{"priority":"urgent",`, 1), wantStatus: 422, wantCode: payout.CodeInvalidPriority, wantFields: field("priority", payout.CodeInvalidPriority)},
		{name: "priority as number", body: strings.Replace(validPayload, `{`, `{"priority":2,`, 1), wantStatus: 422, wantCode: payout.CodeInvalidPriority, wantFields: field("priority", payout.CodeInvalidPriority)},
		{name: "external id with spaces", body: strings.Replace(validPayload, `{`, `{"external_id":"a b",`, 1), wantStatus: 422, wantCode: payout.CodeInvalidExternalID, wantFields: field("external_id", payout.CodeInvalidExternalID)},
		{name: "idempotency key missing", body: validPayload, headers: []string{"Idempotency-Key:"}, wantStatus: 400, wantCode: payout.CodeIdempotencyKeyMissing},
		{name: "idempotency key too long", body: validPayload, headers: []string{"Idempotency-Key: " + strings.Repeat("k", 256)}, wantStatus: 400, wantCode: payout.CodeIdempotencyKeyInvalid},
		{name: "idempotency key not printable", body: validPayload, headers: []string{"Idempotency-Key: caf\u00e9"}, wantStatus: 400, wantCode: payout.CodeIdempotencyKeyInvalid},
		{name: "idempotency key with tab", body: validPayload, headers: []string{"Idempotency-Key: a\tb"}, wantStatus: 400, wantCode: payout.CodeIdempotencyKeyInvalid},
		{
			name: "every field wrong at once", body: `{"chain":"sandbox","asset":"DOGE","to":"0x12","amount":5,"external_id":"a b"}`,
			wantStatus: 422, wantCode: payout.CodeInvalidRequest,
			wantFields: []string{"/amount invalid_amount", "/asset unknown_asset", "/to invalid_address", "/external_id invalid_external_id"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("refused-%d", i)
			r := e.do("POST", "/v1/payouts", tt.body, append([]string{"Idempotency-Key: " + key}, tt.headers...)...)
			p := r.problem(t)
			if r.status != tt.wantStatus || p.Status != tt.wantStatus || p.Code != tt.wantCode {
				t.Fatalf("got %d (body status %d) %s, want %d %s; detail %q", r.status, p.Status, p.Code, tt.wantStatus, tt.wantCode, p.Detail)
			}
			var gotFields []string
			for _, f := range p.Errors {
				gotFields = append(gotFields, f.Pointer+" "+string(f.Code))
				if f.Detail == "" {
					t.Errorf("field %s has no detail", f.Pointer)
				}
			}
			if diff := cmp.Diff(tt.wantFields, gotFields); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
			if p.Detail == "" || p.RequestID == "" || p.RequestID != r.header.Get("Request-Id") || p.Instance != "/v1/payouts" {
				t.Errorf("problem lacks detail, request id or instance: %+v", p)
			}
			if strings.Contains(string(r.body), testKey) {
				t.Errorf("the answer echoes the API key: %s", r.body)
			}
			if _, err := e.db.GetIdempotency(context.Background(), "key_a", key); !errors.Is(err, payout.ErrNotFound) {
				t.Errorf("idempotency record stored for a refused request (err %v)", err)
			}
		})
	}
	if n := e.count(); n != 0 {
		t.Errorf("store holds %d payouts after refused requests, want 0", n)
	}
	if len(e.woken) != 0 {
		t.Errorf("OnPayoutCreated called %d times for refused requests", len(e.woken))
	}
}

func TestCreateAmountLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	p := e.mustCreate("max", payoutBody(maxUint256))
	if got := p.Amount.String(); got != maxUint256 {
		t.Errorf("amount = %s, want 2^256-1", got)
	}
	r := e.create("escaped", strings.Replace(payoutBody("12"), `"12"`, `"1\u0032"`, 1))
	if r.status != 201 || r.payout(t).Amount.String() != "12" {
		t.Errorf("escaped amount: status %d body %s, want 201 with amount 12", r.status, r.body)
	}
}

func TestCreateAmountNumberMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	r := e.create("num", strings.Replace(validPayload, `"1500000"`, `1500000`, 1))
	p := r.problem(t)
	if !strings.Contains(p.Detail, "JSON string") || !strings.Contains(p.Detail, "1500000") {
		t.Errorf("detail %q should say the amount must be a JSON string and quote it", p.Detail)
	}
}

func TestCreateIdempotency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	first := e.create("same", validPayload)
	if first.status != 201 || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d replayed=%q", first.status, first.header.Get("Idempotent-Replayed"))
	}
	replay := e.create("same", validPayload)
	if replay.status != 201 || replay.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: status %d, Idempotent-Replayed %q; want 201 true", replay.status, replay.header.Get("Idempotent-Replayed"))
	}
	if diff := cmp.Diff(string(first.body), string(replay.body)); diff != "" {
		t.Errorf("replayed body differs (-first +replay):\n%s", diff)
	}
	if got, want := replay.header.Get("Location"), first.header.Get("Location"); got != want || want == "" {
		t.Errorf("replay Location = %q, want the first answer's %q", got, want)
	}
	if replay.header.Get("Request-Id") == first.header.Get("Request-Id") {
		t.Error("a replay must have its own request id")
	}
	reused := e.create("same", payoutBody("7"))
	if p := reused.problem(t); reused.status != 422 || p.Code != payout.CodeIdempotencyMismatch {
		t.Errorf("different body: %d %s, want 422 idempotency_key_reused", reused.status, p.Code)
	}
	// An invalid body with a used key is answered from the record too.
	bad := e.create("same", payoutBody("0"))
	if p := bad.problem(t); bad.status != 422 || p.Code != payout.CodeIdempotencyMismatch {
		t.Errorf("invalid body, used key: %d %s, want 422 idempotency_key_reused", bad.status, p.Code)
	}
	// Keys are scoped per API key: the other key's "same" is a new payout.
	other := e.do("POST", "/v1/payouts", validPayload, "Idempotency-Key: same", "Authorization: Bearer "+otherKey)
	if other.status != 201 || other.header.Get("Idempotent-Replayed") != "" || other.payout(t).ID == first.payout(t).ID {
		t.Errorf("other API key, same idempotency key: %d %s; want a new payout", other.status, other.body)
	}
	if n := e.count(); n != 2 {
		t.Errorf("store holds %d payouts, want 2", n)
	}
	if len(e.woken) != 2 {
		t.Errorf("OnPayoutCreated called %d times, want 2 (not for replays)", len(e.woken))
	}
}

// A refused request stores nothing, so the same key works once it is fixed.
func TestCreateFixAndRetrySameKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	if r := e.create("retry", payoutBody("-1")); r.status != 422 {
		t.Fatalf("bad amount: status %d, want 422", r.status)
	}
	if r := e.create("retry", payoutBody("1")); r.status != 201 {
		t.Fatalf("fixed request, same key: status %d %s, want 201", r.status, r.body)
	}
}

func TestCreateDuplicateExternalID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	body := strings.Replace(validPayload, `{`, `{"external_id":"inv-9",`, 1)
	first := e.mustCreate("a", body)
	r := e.create("b", body)
	p := r.problem(t)
	if r.status != 409 || p.Code != payout.CodeDuplicateExternalID || p.ExistingPayoutID != first.ID {
		t.Errorf("got %d %s existing %q, want 409 duplicate_external_id %s", r.status, p.Code, p.ExistingPayoutID, first.ID)
	}
	if !strings.Contains(p.Detail, first.ID) {
		t.Errorf("detail %q does not name the existing payout", p.Detail)
	}
	if n := e.count(); n != 1 {
		t.Errorf("store holds %d payouts, want 1", n)
	}
	if _, err := e.db.GetIdempotency(context.Background(), "key_a", "b"); !errors.Is(err, payout.ErrNotFound) {
		t.Errorf("the 409 was recorded under its key (err %v)", err)
	}
}
