package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/sluicepay/sluice/internal/payout"
)

// specPath is the API's contract, relative to this package.
const specPath = "../../api/openapi.yaml"

// contract is the loaded spec and its router, shared by every test.
var contract struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

// loadContract loads api/openapi.yaml once. For checking answers, every
// object schema that does not say otherwise gets additionalProperties:
// false, so that a field the server writes but the spec does not document
// fails the tests (the published spec stays open to additive changes).
func loadContract() (*openapi3.T, routers.Router, error) {
	contract.once.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromFile(specPath)
		if err != nil {
			contract.err = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			contract.err = err
			return
		}
		no := false
		for _, s := range doc.Components.Schemas {
			if v := s.Value; v != nil && v.Type.Is("object") && len(v.Properties) > 0 &&
				v.AdditionalProperties.Has == nil && v.AdditionalProperties.Schema == nil {
				v.AdditionalProperties.Has = &no
			}
		}
		doc.Servers = nil // match requests whatever their host
		contract.doc = doc
		contract.router, contract.err = gorillamux.NewRouter(doc)
	})
	if contract.err != nil {
		return nil, nil, fmt.Errorf("%s: %w", specPath, contract.err)
	}
	return contract.doc, contract.router, nil
}

// checkContract fails t unless the answer rec to req (whose body was body)
// is one api/openapi.yaml allows: a documented path, method and status,
// with the documented headers and a body matching the schema. A request
// the server accepted (2xx) must also be valid by the spec. A path or
// method the spec does not have must be answered 404 or 405. env.do calls
// it for every request the tests make.
func checkContract(t testing.TB, req *http.Request, body string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if err := contractError(req, body, rec); err != nil {
		t.Errorf("%s %s answered %d, which api/openapi.yaml does not allow: %v\nbody: %.600s",
			req.Method, req.URL.RequestURI(), rec.Code, err, rec.Body.Bytes())
	}
}

func contractError(req *http.Request, body string, rec *httptest.ResponseRecorder) error {
	doc, router, err := loadContract()
	if err != nil {
		return err
	}
	ctx := context.Background()
	r := req.Clone(ctx)
	r.Body = io.NopCloser(strings.NewReader(body))
	route, params, err := router.FindRoute(r)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		return undocumented(doc, rec, http.StatusNotFound, payout.CodeNotFound)
	case errors.Is(err, routers.ErrMethodNotAllowed):
		if rec.Header().Get("Allow") == "" {
			return errors.New("405 without an Allow header")
		}
		return undocumented(doc, rec, http.StatusMethodNotAllowed, payout.CodeMethodNotAllowed)
	case err != nil:
		return fmt.Errorf("find route: %w", err)
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: bearerAuth}}
	if rec.Code >= 200 && rec.Code < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			return fmt.Errorf("the server accepted a request the spec calls invalid: %w", err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
		Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true}}
	out.SetBodyBytes(rec.Body.Bytes())
	return openapi3filter.ValidateResponse(ctx, out)
}

// undocumented checks the answer to a path or method the spec does not
// have: the wanted status, as a Problem with the wanted code.
func undocumented(doc *openapi3.T, rec *httptest.ResponseRecorder, status int, code payout.Code) error {
	if rec.Code != status {
		return fmt.Errorf("not in the spec, answered %d instead of %d", rec.Code, status)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		return fmt.Errorf("Content-Type %q", ct)
	}
	if id := rec.Header().Get("Request-Id"); id == "" {
		return errors.New("no Request-Id")
	}
	var v any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		return err
	}
	if err := doc.Components.Schemas["Problem"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return err
	}
	if got := v.(map[string]any)["code"]; got != string(code) {
		return fmt.Errorf("code %v, want %s", got, code)
	}
	return nil
}

// bearerAuth accepts the spec's bearer scheme when the request has a
// Bearer Authorization header; the server itself checks the key.
func bearerAuth(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	scheme, secret, _ := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if in.SecurityScheme.Type != "http" || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(secret) == "" {
		return errors.New("no Authorization: Bearer header")
	}
	return nil
}

func TestOpenAPISpecValid(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", specPath, err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi %q, want 3.1", doc.OpenAPI)
	}
	// The Code enum is exactly the codes the server answers with.
	var inSpec, inServer []string
	for _, c := range doc.Components.Schemas["Code"].Value.Enum {
		inSpec = append(inSpec, c.(string))
	}
	for c := range codeInfo {
		inServer = append(inServer, string(c))
	}
	sort.Strings(inSpec)
	sort.Strings(inServer)
	if !slices.Equal(inSpec, inServer) {
		t.Errorf("Code enum %v\nserver codes %v", inSpec, inServer)
	}
	// Every route the server registers is documented, with its methods.
	want := map[string][]string{}
	for path, methods := range newEnv(t, nil, nil).api.served {
		want[path] = slices.Sorted(slices.Values(methods))
	}
	got := map[string][]string{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			got[path] = append(got[path], method)
		}
		sort.Strings(got[path])
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("documented operations %v\nserved %v", got, want)
	}
	// Each operation documents every status its codes can answer.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Responses.Status(http.StatusInternalServerError) == nil {
				t.Errorf("%s %s does not document 500", method, path)
			}
			if op.Security == nil && op.Responses.Status(http.StatusUnauthorized) == nil {
				t.Errorf("%s %s needs a key but does not document 401", method, path)
			}
		}
	}
}

// The checker itself catches answers the spec does not allow.
func TestContractCheckerCatchesDrift(t *testing.T) {
	t.Parallel()
	get := func(path string) *http.Request {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+testKey)
		return r
	}
	answer := func(status int, ct, body string, headers ...string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Type", ct)
		rec.Header().Set("Request-Id", "req_1")
		for i := 0; i+1 < len(headers); i += 2 {
			rec.Header().Set(headers[i], headers[i+1])
		}
		rec.WriteHeader(status)
		_, _ = rec.WriteString(body)
		return rec
	}
	okHealth := `{"status":"ok","version":"x"}`
	if err := contractError(get("/healthz"), "", answer(200, "application/json", okHealth)); err != nil {
		t.Fatalf("a valid answer is refused: %v", err)
	}
	for name, tc := range map[string]struct {
		req *http.Request
		rec *httptest.ResponseRecorder
	}{
		"undocumented field":  {get("/healthz"), answer(200, "application/json", `{"status":"ok","version":"x","extra":1}`)},
		"undocumented status": {get("/healthz"), answer(201, "application/json", okHealth)},
		"wrong content type":  {get("/healthz"), answer(200, "text/html", okHealth)},
		"no request id": {get("/healthz"), func() *httptest.ResponseRecorder {
			r := answer(200, "application/json", okHealth)
			r.Header().Del("Request-Id")
			return r
		}()},
		"unknown route 200": {get("/v1/nope"), answer(200, "application/json", okHealth)},
		"unknown code":      {get("/v1/payouts/po_x"), answer(404, "application/problem+json", `{"type":"urn:sluice:problem:gone","title":"t","status":404,"detail":"d","instance":"/","code":"gone","request_id":"req_1"}`)},
		"number amount":     {get("/v1/payouts"), answer(200, "application/json", `{"object":"list","has_more":false,"url":"/v1/payouts","data":[{"amount":5}]}`)},
	} {
		if err := contractError(tc.req, "", tc.rec); err == nil {
			t.Errorf("%s: not caught", name)
		}
	}
}

// TestContractPayoutLifecycle drives payouts through every status the
// store can give them, so that each shape of a payout, an attempt and a
// re-broadcast is checked against the spec (env.do checks every answer).
func TestContractPayoutLifecycle(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	api, err := New(Config{
		Store: db, Catalog: testCatalog(), Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return testNow },
		APIKeys: []APIKey{{ID: "key_a", Hash: HashAPIKey(testKey)}},
		Broadcast: func(_ context.Context, _ string, raw []byte) error {
			if len(raw) > 1 && raw[1] == 0x02 {
				return errors.New("already known")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, h: api.Handler()}
	ctx := context.Background()
	ids := e.createN(6, `"metadata":{"k":"v"},"priority":"high",`)
	held, failed, stuck, completed, reverted, sped := ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.HoldQueued(ctx, []payout.Hold{{PayoutID: held, Reason: payout.ReasonInsufficientFunds, Detail: "needs 1500000 SUSD, has 0"}}))
	must(db.FailQueued(ctx, []payout.Failure{{PayoutID: failed, Code: payout.FailureWouldRevert, Message: "execution reverted"}}))
	for _, id := range []string{stuck, completed, reverted, sped} {
		e.submit(id)
	}
	must(db.MarkStuck(ctx, []payout.Hold{{PayoutID: stuck, Reason: payout.ReasonFeeCapReached, Detail: "the next bump passes the cap"}}))
	receipt := func(id string, ok bool) payout.Receipt {
		p, err := db.GetPayout(ctx, id)
		must(err)
		return payout.Receipt{PayoutID: id, TxHash: *p.TxHash, BlockNumber: 7, BlockHash: common.HexToHash("0x07"),
			GasUsed: 21000, EffectiveGasPrice: big.NewInt(1e9), Success: ok}
	}
	must(db.MarkMined(ctx, []payout.Receipt{receipt(completed, true), receipt(reverted, false)}))
	must(db.Finalize(ctx, []string{completed, reverted}))

	if r := e.do("POST", "/v1/payouts/"+sped+"/speed-up", `{"fee_cap":"5000000000000000"}`); r.status != http.StatusOK {
		t.Errorf("speed-up: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/payouts/"+stuck+"/cancel", ""); r.status != http.StatusAccepted {
		t.Errorf("cancel of a stuck payout: %d %s", r.status, r.body)
	}
	want := map[string]string{ // what each payout must have become: status reason failure rebroadcast
		held: "queued insufficient_funds  409", failed: "failed  transfer_would_revert 409",
		stuck: "stuck fee_cap_reached  200", completed: "completed   409",
		reverted: "failed  reverted_on_chain 409", sped: "submitted   200",
	}
	for _, id := range ids {
		p := e.do("GET", "/v1/payouts/"+id, "").payout(t)
		e.do("GET", "/v1/payouts/"+id+"/attempts", "")
		rb := e.do("POST", "/v1/payouts/"+id+"/rebroadcast", "")
		if got := fmt.Sprintf("%s %s %s %d", p.Status, p.Reason, p.FailureCode, rb.status); got != want[id] {
			t.Errorf("payout %s: %q, want %q", id, got, want[id])
		}
	}
	if r := e.do("GET", "/v1/payouts?limit=100", ""); r.status != http.StatusOK {
		t.Errorf("list: %d", r.status)
	}
	for _, st := range payout.Statuses {
		e.do("GET", "/v1/payouts?status="+string(st), "")
	}
	e.do("GET", "/v1/status", "")
	e.do("GET", "/metrics", "", "Accept: application/openmetrics-text; version=1.0.0")
	// Refusals the other tests do not make.
	e.do("POST", "/v1/payouts/"+sped+"/speed-up", `{"fee_cap":"1"}`, "Content-Type: text/plain")
	e.do("POST", "/v1/payouts/"+sped+"/speed-up", `{"fee_cap":"`+strings.Repeat("1", MaxBodyBytes)+`"}`)
	e.do("POST", "/v1/payouts/po_missing/speed-up", `{"fee_cap":"1"}`)
	e.do("POST", "/v1/payouts/po_missing/rebroadcast", "")
	e.do("POST", "/v1/payouts", validPayload, "Idempotency-Key: p1", "Request-Id: mine-1")
	e.do("POST", "/v1/payouts", strings.Replace(validPayload, `{`, `{"priority":"urgent",`, 1), "Idempotency-Key: p2")
	for _, path := range []string{"/v1/payouts", "/v1/payouts/" + held, "/v1/payouts/" + held + "/attempts", "/v1/chains", "/v1/status"} {
		e.do("GET", path, "", "Authorization:")
	}
	for _, path := range []string{"/v1/payouts", "/v1/payouts/" + held + "/cancel", "/v1/payouts/" + held + "/speed-up", "/v1/payouts/" + held + "/rebroadcast"} {
		e.do("POST", path, "", "Authorization:")
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/v1/chains"} {
		e.do("PUT", path, "")
	}
}

func TestServesTheSpec(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	r := e.do("GET", "/v1/openapi.yaml", "")
	file, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/yaml" || !bytes.Equal(r.body, file) {
		t.Errorf("GET /v1/openapi.yaml: %d %q, %d bytes; want 200 application/yaml and api/openapi.yaml's %d bytes",
			r.status, r.header.Get("Content-Type"), len(r.body), len(file))
	}
}
