package httpapi

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicepay/sluice/internal/batchfile"
	"github.com/sluicepay/sluice/internal/payout"
)

const csvType = "Content-Type: text/csv"

func (r response) batch(t *testing.T) *payout.Batch {
	t.Helper()
	var b payout.Batch
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("batch body %s: %v", r.body, err)
	}
	return &b
}

func TestCreateBatchCSV(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	body := "\ufeffto,amount,asset,external_id,memo\r\n" +
		validTo + ",12.5,SUSD,pay-1,\"June, bonus\"\r\n" +
		strings.ToLower(validTo) + ",0.000000000000000001,ETH,pay-2,\r\n"
	r := e.do("POST", "/v1/batches", body, csvType, "Idempotency-Key: b1")
	if r.status != http.StatusCreated {
		t.Fatalf("status %d, body %s", r.status, r.body)
	}
	b := r.batch(t)
	if b.Status != payout.BatchProcessing || b.Rows != 2 || b.Counts[payout.StatusQueued] != 2 || b.Source != "csv" ||
		b.Totals["SUSD"].String() != "12500000" || b.Totals["ETH"].String() != "1" {
		t.Errorf("batch = %+v", b)
	}
	if got := e.do("GET", "/v1/payouts?external_id=pay-1", ""); !strings.Contains(string(got.body), `"batch_id":"`+b.ID+`"`) ||
		!strings.Contains(string(got.body), `"memo":"June, bonus"`) {
		t.Errorf("payout of row 2 = %s", got.body)
	}
	// A replay answers the stored batch; the same key with another file is refused.
	if again := e.do("POST", "/v1/batches", body, csvType, "Idempotency-Key: b1"); again.status != http.StatusCreated ||
		again.header.Get("Idempotent-Replayed") != "true" || again.batch(t).ID != b.ID {
		t.Errorf("replay = %d %s", again.status, again.body)
	}
	if other := e.do("POST", "/v1/batches", body+validTo+",1,SUSD,,\r\n", csvType, "Idempotency-Key: b1"); other.problem(t).Code != payout.CodeIdempotencyMismatch {
		t.Errorf("reused key = %d %s", other.status, other.body)
	}
	if n := e.count(); n != 2 {
		t.Errorf("%d payouts stored, want 2", n)
	}
	got := e.do("GET", "/v1/batches/"+b.ID, "")
	if got.status != http.StatusOK || got.batch(t).ID != b.ID {
		t.Errorf("GET batch = %d %s", got.status, got.body)
	}
	st := e.do("GET", "/v1/batches/"+b.ID+"/statement.csv", "")
	lines, err := csv.NewReader(strings.NewReader(string(st.body))).ReadAll()
	if err != nil || st.status != http.StatusOK || len(lines) != 1+2+2 {
		t.Fatalf("statement = %d %q (%v)", st.status, st.body, err)
	}
	if lines[1][0] != "2" || lines[1][1] != "pay-1" || lines[1][4] != "12.5" || lines[1][5] != "12500000" || lines[1][6] != "queued" {
		t.Errorf("statement row 2 = %q", lines[1])
	}
	if lines[3][0] != "total" || lines[3][3] != "ETH" || lines[4][3] != "SUSD" || lines[4][5] != "12500000" {
		t.Errorf("statement totals = %q %q", lines[3], lines[4])
	}
	e.mustCreate("alone", payoutBody("7"))
	var list struct {
		Data []*payout.Payout `json:"data"`
	}
	if r := e.do("GET", "/v1/payouts?batch_id="+b.ID, ""); json.Unmarshal(r.body, &list) != nil || len(list.Data) != 2 ||
		list.Data[0].BatchID != b.ID || list.Data[1].BatchID != b.ID {
		t.Errorf("GET /v1/payouts?batch_id = %d %s, want the batch's 2 payouts", r.status, r.body)
	}
	if nf := e.do("GET", "/v1/batches/bat_missing", ""); nf.status != http.StatusNotFound {
		t.Errorf("GET missing batch = %d", nf.status)
	}
}

// TestCreateBatchRefusesRows checks that every bad row is reported at
// once, with its row, column, value and code, and that nothing is stored.
func TestCreateBatchRefusesRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	e.mustCreate("single", `{"chain":"sandbox","asset":"ETH","to":"`+validTo+`","amount":"1","external_id":"taken"}`)
	body := "to,amount,asset,external_id\n" +
		validTo + ",1e6,SUSD,a\n" + // row 2: scientific notation
		validTo + ",1.1234567,SUSD,b\n" + // row 3: too many decimals
		"0xnot,1,SUSD,c\n" + // row 4: bad address
		validTo + ",-1,SUSD,d\n" + // row 5: negative
		validTo + ",1,DOGE,e\n" + // row 6: unknown asset
		validTo + ",1,SUSD,e\n" + // row 7: duplicate in the file
		validTo + ",1,SUSD,taken\n" + // row 8: used by a stored payout
		validTo + ",2,SUSD,ok\n" // row 9: fine
	r := e.do("POST", "/v1/batches", body, csvType, "Idempotency-Key: bad")
	p := r.problem(t)
	if r.status != http.StatusUnprocessableEntity || p.Code != payout.CodeInvalidBatch {
		t.Fatalf("status %d code %s", r.status, p.Code)
	}
	got := map[int]string{}
	for _, fe := range p.Errors {
		got[fe.Row] = fe.Column + ":" + string(fe.Code)
	}
	want := map[int]string{2: "amount:scientific_notation", 3: "amount:too_many_decimals", 4: "to:invalid_address",
		5: "amount:invalid_amount", 6: "asset:unknown_asset", 7: "external_id:duplicate_external_id", 8: "external_id:duplicate_external_id"}
	for row, w := range want {
		if got[row] != w {
			t.Errorf("row %d: got %q, want %q", row, got[row], w)
		}
	}
	if len(p.Errors) != len(want) {
		t.Errorf("%d errors, want %d: %+v", len(p.Errors), len(want), p.Errors)
	}
	if n := e.count(); n != 1 {
		t.Errorf("a refused batch stored payouts: %d, want 1", n)
	}
	// accept_valid stores the good row and lists the others.
	ok := e.do("POST", "/v1/batches?policy=accept_valid", body, csvType, "Idempotency-Key: partial")
	if ok.status != http.StatusCreated {
		t.Fatalf("accept_valid = %d %s", ok.status, ok.body)
	}
	if b := ok.batch(t); b.Rows != 8 || b.Invalid != 7 || len(b.Errors) != 7 || b.Counts[payout.StatusQueued] != 1 {
		t.Errorf("accept_valid batch = rows %d invalid %d errors %d counts %v", b.Rows, b.Invalid, len(b.Errors), b.Counts)
	}
}

func TestCreateBatchJSONAndFileProblems(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	rows := `{"asset":"SUSD","rows":[{"to":"` + validTo + `","amount":"1500000"},{"to":"` + validTo + `","amount":"1.5"}]}`
	r := e.do("POST", "/v1/batches", rows, "Idempotency-Key: j1")
	p := r.problem(t)
	if p.Code != payout.CodeInvalidBatch || len(p.Errors) != 1 || p.Errors[0].Pointer != "/rows/1/amount" {
		t.Errorf("JSON row with a decimal amount = %d %s", r.status, r.body)
	}
	good := `{"asset":"SUSD","rows":[{"to":"` + validTo + `","amount":"1500000"}]}`
	if r := e.do("POST", "/v1/batches", good, "Idempotency-Key: j2"); r.status != http.StatusCreated || r.batch(t).Source != "json" {
		t.Errorf("JSON batch = %d %s", r.status, r.body)
	}
	cases := []struct {
		name, body, ctype string
		status            int
		code              payout.Code
	}{
		{"unknown column", "address,amount\n" + validTo + ",1\n", csvType, 422, "unknown_column"},
		{"missing column", "to,asset\n" + validTo + ",ETH\n", csvType, 422, "missing_column"},
		{"empty", "", csvType, 422, "empty_file"},
		{"not csv or json", "x", "Content-Type: text/plain", 415, payout.CodeUnsupportedMediaType},
		{"unknown JSON field", `{"rows":[],"bogus":1}`, "", 400, payout.CodeUnknownField},
		{"no rows", `{"asset":"SUSD"}`, "", 422, payout.CodeInvalidRequest},
		{"bad policy", `{"policy":"some","rows":[{"to":"` + validTo + `","amount":"1","asset":"ETH"}]}`, "", 422, payout.CodeInvalidRequest},
		{"too large", "to,amount\n" + strings.Repeat(validTo+",1\n", batchfile.DefaultMaxBytes/44+1), csvType, 413, "file_too_large"},
	}
	for i, c := range cases {
		headers := []string{fmt.Sprintf("Idempotency-Key: case-%d", i), "Content-Type: application/json"}
		if c.ctype != "" {
			headers[1] = c.ctype
		}
		r := e.do("POST", "/v1/batches", c.body, headers...)
		if r.status != c.status || r.problem(t).Code != c.code {
			t.Errorf("%s: %d %.300s, want %d %s", c.name, r.status, r.body, c.status, c.code)
		}
	}
	if n := e.count(); n != 1 {
		t.Errorf("%d payouts stored, want 1", n)
	}
}

// BenchmarkCreateBatch10k measures POST /v1/batches with a 10,000-row CSV
// on SQLite: every row validated (addresses, decimals, external ids in the
// file and in the store) and the batch stored with its 10,000 payouts and
// their events, through the real router.
//
//	go test -run '^$' -bench CreateBatch10k -benchtime 5x ./internal/httpapi
func BenchmarkCreateBatch10k(b *testing.B) {
	var csvBody strings.Builder
	csvBody.WriteString("to,amount,asset,external_id\n")
	for i := range 10_000 {
		fmt.Fprintf(&csvBody, "0x%040x,%d.%02d,SUSD,row-%d\n", 0x1000+i, 1+i%100, i%100, i)
	}
	body := csvBody.String()
	n := 0
	for b.Loop() {
		b.StopTimer()
		db := openStore(b)
		api, err := New(Config{Store: db, Catalog: testCatalog(), APIKeys: []APIKey{{ID: "key_a", Name: "a", Hash: HashAPIKey(testKey)}},
			Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return testNow }})
		if err != nil {
			b.Fatal(err)
		}
		h := api.Handler()
		b.StartTimer()
		n++
		req := httptest.NewRequest("POST", "/v1/batches", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d", n))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			b.Fatalf("status %d: %.300s", rec.Code, rec.Body.String())
		}
	}
}

// TestBatchRowsDecidedByPolicy: with a policy active, every row of a batch
// is decided as a single payout is; a sanctioned recipient refuses the
// batch (all_or_nothing) or is left out and listed (accept_valid).
func TestBatchRowsDecidedByPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	if r := e.do("POST", "/v1/lists", `{"name":"ofac","kind":"deny","sanctions":true}`); r.status != http.StatusCreated {
		t.Fatalf("create list: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/lists/ofac/entries", `{"addresses":["`+sanctionedTo+`"]}`); r.status != 200 {
		t.Fatalf("add entry: %d %s", r.status, r.body)
	}
	if r := putPolicy(t, e, "version: 1\nrules:\n  - name: small\n    when: amount <= 5000000\n    action: allow\ndefault: deny\n"); r.status != 200 {
		t.Fatalf("put policy: %d %s", r.status, r.body)
	}
	body := "to,amount,asset\n" + validTo + ",1,SUSD\n" + sanctionedTo + ",1,SUSD\n" + validTo + ",6,SUSD\n"
	r := e.do("POST", "/v1/batches", body, csvType, "Idempotency-Key: p1")
	p := r.problem(t)
	got := map[int]payout.Code{}
	for _, fe := range p.Errors {
		got[fe.Row] = fe.Code
	}
	if p.Code != payout.CodeInvalidBatch || got[3] != "sanctioned_destination" || got[4] != "policy_denied" || len(got) != 2 {
		t.Fatalf("batch with a sanctioned row = %d %s", r.status, r.body)
	}
	if n := e.count(); n != 0 {
		t.Errorf("a refused batch stored %d payouts", n)
	}
	ok := e.do("POST", "/v1/batches?policy=accept_valid", body, csvType, "Idempotency-Key: p2")
	if b := ok.batch(t); ok.status != http.StatusCreated || b.Counts[payout.StatusQueued] != 1 || b.Invalid != 2 || len(b.Errors) != 2 {
		t.Errorf("accept_valid with a sanctioned row = %d %s", ok.status, ok.body)
	}
}

// TestBatchLimitsConfigured: the row and byte limits are the server's
// config, and a batch over either is refused whole with its code.
func TestBatchLimitsConfigured(t *testing.T) {
	t.Parallel()
	api, err := New(Config{Store: openStore(t), Catalog: testCatalog(), APIKeys: []APIKey{{ID: "key_a", Name: "a", Hash: HashAPIKey(testKey)}},
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return testNow }, MaxBatchRows: 2, MaxBatchBytes: 200})
	if err != nil {
		t.Fatal(err)
	}
	post := func(body, key string) (int, string) {
		req := httptest.NewRequest("POST", "/v1/batches", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Idempotency-Key", key)
		rec := httptest.NewRecorder()
		api.Handler().ServeHTTP(rec, req)
		var p problem
		_ = json.Unmarshal(rec.Body.Bytes(), &p)
		return rec.Code, string(p.Code)
	}
	row := validTo + ",1,SUSD\n"
	if code, c := post("to,amount,asset\n"+row+row+row, "rows"); code != 422 || c != "too_many_rows" {
		t.Errorf("3 rows over a limit of 2: %d %s", code, c)
	}
	if code, c := post("to,amount,asset\n"+strings.Repeat(row, 4), "bytes"); code != 413 || c != "file_too_large" {
		t.Errorf("over 200 bytes: %d %s", code, c)
	}
	if code, _ := post("to,amount,asset\n"+row+row, "ok"); code != http.StatusCreated {
		t.Errorf("2 rows within the limits: %d", code)
	}
}
