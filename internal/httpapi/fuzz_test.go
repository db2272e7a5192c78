package httpapi

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
)

// FuzzDecodeCreatePayout feeds arbitrary bodies to the create decoder and
// validator: it must never panic, must refuse only with known codes, and
// whatever it accepts must be accepted again, as the same payout, when
// written back as JSON (both the request and the payout's own fields).
// Seeds live in testdata/fuzz/FuzzDecodeCreatePayout.
func FuzzDecodeCreatePayout(f *testing.F) {
	f.Add([]byte(validPayload))
	f.Add([]byte(`{"chain":"sandbox","asset":"ETH","to":"` + validTo + `","amount":"` + maxUint256 + `","external_id":"x-1","metadata":{"k":"v"}}`))
	f.Add([]byte(`{"chain":"sandbox","asset":"SUSD","to":"` + validTo + `","amount":1}`))
	f.Add([]byte(`{"chain":"sandbox","asset":"ETH","to":"` + validTo + `","amount":"5","priority":"high"}`))
	cat, ids := testCatalog(), &payout.IDGenerator{}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parseCreate(cat, ids, body, testNow)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		req, _, err := decodeCreate(body)
		if err != nil {
			t.Fatalf("accepted, then the decoder refuses it: %v", err)
		}
		checkExactKeys(t, body)
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		samePayout(t, p, again, cat, ids)
		fromPayout, _ := json.Marshal(payout.CreateRequest{Chain: p.Chain, Asset: p.Asset, To: p.To.Hex(),
			Amount: p.Amount.String(), ExternalID: p.ExternalID, Metadata: p.Metadata, Priority: string(p.Priority)})
		samePayout(t, p, fromPayout, cat, ids)
	})
}

// FuzzDecodeSpeedUp feeds arbitrary bodies to the speed-up decoder: it
// must never panic, must refuse only with its known codes, and a fee cap
// it accepts is a positive amount of at most 2^256-1 that reads back the
// same when written again.
func FuzzDecodeSpeedUp(f *testing.F) {
	for _, seed := range []string{`{"fee_cap":"1000000000000000"}`, `{"fee_cap":"0"}`, `{"fee_cap":5}`, `{}`,
		`{"fee_cap":"1","tip":"2"}`, `{"fee_cap":"` + maxUint256 + `"}`, `{"fee_cap":"12"} {}`, `[]`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := decodeSpeedUp(body)
		if err != nil {
			checkRefusal(t, err)
			prob, _ := toProblem(err)
			if !slices.Contains([]payout.Code{payout.CodeMalformedJSON, payout.CodeUnknownField, payout.CodeInvalidFee}, prob.Code) {
				t.Fatalf("speed-up refused with code %s", prob.Code)
			}
			return
		}
		if v.Sign() <= 0 || v.Cmp(payout.MaxAmount) > 0 {
			t.Fatalf("accepted fee cap %s outside 1..2^256-1", v)
		}
		again, err := decodeSpeedUp([]byte(`{"fee_cap":"` + v.String() + `"}`))
		if err != nil || again.Cmp(v) != 0 {
			t.Fatalf("accepted %s, but not written back: %v, %v", v, again, err)
		}
	})
}

// checkExactKeys fails unless body's top-level keys are known fields,
// spelled exactly, each once: what checkKeys enforces, checked the slow way.
func checkExactKeys(t *testing.T, body []byte) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("accepted a body that is not an object: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	_, _ = dec.Token()
	seen := map[string]bool{}
	for dec.More() {
		tok, _ := dec.Token()
		key, _ := tok.(string)
		if seen[key] || !slices.Contains(fieldNames[:], key) {
			t.Fatalf("accepted key %q (unknown or repeated) in %s", key, body)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
}

// checkRefusal fails unless err is answered with a known code.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	prob, unexpected := toProblem(err)
	if _, known := codeInfo[prob.Code]; unexpected || !known {
		t.Fatalf("refused with an unexpected error: %v", err)
	}
	for _, fe := range prob.Errors {
		if _, known := codeInfo[fe.Code]; !known || fe.Pointer == "" || fe.Detail == "" {
			t.Fatalf("field error %+v lacks a known code, pointer or detail", fe)
		}
	}
}

// samePayout parses body and checks it gives p again (but for the id).
func samePayout(t *testing.T, p *payout.Payout, body []byte, cat *payout.Catalog, ids *payout.IDGenerator) {
	t.Helper()
	q, err := parseCreate(cat, ids, body, testNow)
	if err != nil {
		t.Fatalf("accepted %+v, but not its JSON %s: %v", p, body, err)
	}
	q.ID = p.ID
	want, _ := p.MarshalJSON()
	got, _ := q.MarshalJSON()
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Fatalf("re-validating %s gives another payout (-first +again):\n%s", body, diff)
	}
}
