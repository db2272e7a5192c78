package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
)

// page is a decoded list answer, reduced to what the tests compare.
type page struct {
	Object  string           `json:"object"`
	Data    []*payout.Payout `json:"data"`
	HasMore bool             `json:"has_more"`
	URL     string           `json:"url"`
}

func (e *env) list(query string) page {
	e.t.Helper()
	r := e.do("GET", "/v1/payouts"+query, "")
	if r.status != http.StatusOK {
		e.t.Fatalf("list %s: status %d %s", query, r.status, r.body)
	}
	var p page
	if err := json.Unmarshal(r.body, &p); err != nil {
		e.t.Fatal(err)
	}
	if p.Object != "list" || p.URL != "/v1/payouts" {
		e.t.Errorf("list object %q url %q, want list /v1/payouts", p.Object, p.URL)
	}
	return p
}

func ids(ps []*payout.Payout) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

// createN creates n payouts and returns their ids newest first.
func (e *env) createN(n int, extra string) []string {
	e.t.Helper()
	out := make([]string, n)
	for i := range n {
		body := strings.Replace(payoutBody(fmt.Sprint(i+1)), `{`, `{`+extra, 1)
		out[n-1-i] = e.mustCreate(fmt.Sprintf("n-%s-%d", extra, i), body).ID
	}
	return out
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	all := e.createN(25, "")
	tests := []struct {
		query    string
		wantIDs  []string
		wantMore bool
	}{
		{"", all[:10], true},
		{"?limit=100", all, false},
		{"?limit=25", all, false},
		{"?limit=24", all[:24], true},
		{"?limit=1", all[:1], true},
		{"?starting_after=" + all[9], all[10:20], true},
		{"?starting_after=" + all[19], all[20:], false},
		{"?starting_after=" + all[24], nil, false},
		{"?ending_before=" + all[20], all[10:20], true},
		{"?ending_before=" + all[10], all[:10], false},
		{"?ending_before=" + all[3] + "&limit=2", all[1:3], true},
		{"?ending_before=" + all[0], nil, false},
	}
	for _, tt := range tests {
		got := e.list(tt.query)
		if diff := cmp.Diff(tt.wantIDs, ids(got.Data), cmpEmpty); diff != "" || got.HasMore != tt.wantMore {
			t.Errorf("list%s: has_more %v (want %v); ids (-want +got):\n%s", tt.query, got.HasMore, tt.wantMore, diff)
		}
	}
	// An empty page is an empty array, not null.
	if r := e.do("GET", "/v1/payouts?starting_after="+all[24], ""); !strings.Contains(string(r.body), `"data":[]`) {
		t.Errorf("empty page body %s, want data []", r.body)
	}
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	plain := e.createN(3, "")
	tagged := e.mustCreate("tagged", strings.Replace(validPayload, `{`, `{"external_id":"inv-77",`, 1))
	cancelled := e.do("POST", "/v1/payouts/"+plain[1]+"/cancel", "")
	if cancelled.status != 200 {
		t.Fatalf("cancel: %d %s", cancelled.status, cancelled.body)
	}
	submitted := e.createN(2, `"metadata":{"s":"1"},`)
	for _, id := range submitted {
		e.submit(id)
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"?external_id=inv-77", []string{tagged.ID}},
		{"?external_id=nope", nil},
		{"?external_id=" + strings.Repeat("e", 300), nil},
		{"?status=cancelled", []string{plain[1]}},
		{"?status=submitted", submitted},
		{"?status=queued", []string{tagged.ID, plain[0], plain[2]}},
		{"?status=queued&external_id=inv-77", []string{tagged.ID}},
		{"?status=completed", nil},
		{"?status=queued&limit=1&starting_after=" + tagged.ID, []string{plain[0]}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, ids(e.list(tt.query).Data), cmpEmpty); diff != "" {
			t.Errorf("list%s (-want +got):\n%s", tt.query, diff)
		}
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.FilterValues(func(a, b []string) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

func TestListRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	tests := []struct {
		query    string
		wantCode payout.Code
	}{
		{"?limit=0", payout.CodeInvalidLimit},
		{"?limit=101", payout.CodeInvalidLimit},
		{"?limit=-1", payout.CodeInvalidLimit},
		{"?limit=ten", payout.CodeInvalidLimit},
		{"?status=paid", payout.CodeInvalidStatus},
		{"?starting_after=abc", payout.CodeInvalidCursor},
		{"?ending_before=po_" + strings.Repeat("x", 80), payout.CodeInvalidCursor},
		{"?starting_after=po_A&ending_before=po_B", payout.CodeInvalidCursor},
	}
	for _, tt := range tests {
		r := e.do("GET", "/v1/payouts"+tt.query, "")
		if p := r.problem(t); r.status != 400 || p.Code != tt.wantCode {
			t.Errorf("list%.60s: %d %s, want 400 %s", tt.query, r.status, p.Code, tt.wantCode)
		}
	}
}

// submit moves a queued payout to submitted through the real store, as
// the sender would.
func (e *env) submit(id string) {
	e.t.Helper()
	ctx := context.Background()
	p, err := e.db.GetPayout(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	nonce, ok, err := e.db.MaxNonce(ctx, p.ChainID, p.Sender)
	if err != nil {
		e.t.Fatal(err)
	}
	if ok {
		nonce++
	}
	a := &payout.Attempt{PayoutID: id, ChainID: p.ChainID, Sender: p.Sender, Nonce: nonce,
		TxHash: common.BytesToHash([]byte(id)), RawTx: []byte{0x02, 0x01}, GasLimit: 21000,
		MaxFeePerGas: big.NewInt(2e9), MaxPriorityFeePerGas: big.NewInt(1e9), CreatedAt: testNow}
	if err := e.db.SubmitAttempts(ctx, []*payout.Attempt{a}); err != nil {
		e.t.Fatal(err)
	}
}

func TestGetAndCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	ps := e.createN(2, "")
	queued, sent := ps[0], ps[1]
	e.submit(sent)
	missing := "po_01M857BT59A3VHEN37YQ7P71HA"
	tests := []struct {
		method, path string
		wantStatus   int
		wantCode     payout.Code
		wantStatusOf payout.Status
	}{
		{"GET", "/v1/payouts/" + queued, 200, "", payout.StatusQueued},
		{"GET", "/v1/payouts/" + missing, 404, payout.CodeNotFound, ""},
		{"GET", "/v1/payouts/nonsense", 404, payout.CodeNotFound, ""},
		{"POST", "/v1/payouts/" + sent + "/speed-up", 200, "", payout.StatusSubmitted},
		{"POST", "/v1/payouts/" + sent + "/cancel", 202, "", payout.StatusSubmitted},
		{"POST", "/v1/payouts/" + queued + "/speed-up", 409, payout.CodeNotInFlight, ""},
		{"POST", "/v1/payouts/" + missing + "/cancel", 404, payout.CodeNotFound, ""},
		{"POST", "/v1/payouts/" + queued + "/cancel", 200, "", payout.StatusCancelled},
		{"POST", "/v1/payouts/" + queued + "/cancel", 409, payout.CodeNotCancellable, ""},
		{"GET", "/v1/payouts/" + queued, 200, "", payout.StatusCancelled},
		{"GET", "/v1/payouts/" + sent, 200, "", payout.StatusSubmitted},
		{"DELETE", "/v1/payouts/" + queued, 405, payout.CodeMethodNotAllowed, ""},
		{"GET", "/v1/payouts/" + queued + "/cancel", 405, payout.CodeMethodNotAllowed, ""},
		{"GET", "/v1/nothing", 404, payout.CodeNotFound, ""},
	}
	for _, tt := range tests {
		body := ""
		if strings.HasSuffix(tt.path, "/speed-up") {
			body = `{"fee_cap":"1000000000000000"}`
		}
		r := e.do(tt.method, tt.path, body)
		if r.status != tt.wantStatus {
			t.Errorf("%s %s: status %d, want %d; %s", tt.method, tt.path, r.status, tt.wantStatus, r.body)
			continue
		}
		if tt.wantCode != "" {
			if p := r.problem(t); p.Code != tt.wantCode {
				t.Errorf("%s %s: code %s, want %s", tt.method, tt.path, p.Code, tt.wantCode)
			}
			continue
		}
		if got := r.payout(t).Status; got != tt.wantStatusOf {
			t.Errorf("%s %s: payout status %s, want %s", tt.method, tt.path, got, tt.wantStatusOf)
		}
	}
	r := e.do("POST", "/v1/payouts/"+queued+"/cancel", "")
	if p := r.problem(t); !strings.Contains(p.Detail, "cancelled") {
		t.Errorf("not cancellable detail %q should name the status", p.Detail)
	}
	got := e.do("GET", "/v1/payouts/"+sent, "").payout(t)
	if !got.CancelRequested || got.FeeCap == nil || got.FeeCap.String() != "1000000000000000" {
		t.Errorf("after speed-up and cancel: cancel_requested %v, fee_cap %v", got.CancelRequested, got.FeeCap)
	}
	// A bad speed-up body gets a clear error and changes nothing.
	for _, tc := range []struct {
		body string
		code payout.Code
	}{
		{` `, payout.CodeMalformedJSON},
		{`{"fee_cap":"1","tip":"2"}`, payout.CodeUnknownField},
		{`{}`, payout.CodeInvalidFee},
		{`{"fee_cap":5}`, payout.CodeInvalidFee},
		{`{"fee_cap":"0"}`, payout.CodeInvalidFee},
		{`{"fee_cap":"-5"}`, payout.CodeInvalidFee},
		{`{"fee_cap":"1e18"}`, payout.CodeInvalidFee},
		{`{"fee_cap":"12"} {}`, payout.CodeMalformedJSON},
		{`{"fee_cap":"0012"}`, payout.CodeInvalidFee},
		{`{"fee_cap":"` + strings.Repeat("9", 79) + `"}`, payout.CodeInvalidFee},
	} {
		r := e.do("POST", "/v1/payouts/"+sent+"/speed-up", tc.body)
		if p := r.problem(t); p.Code != tc.code {
			t.Errorf("speed-up %s: code %s, want %s (%s)", tc.body, p.Code, tc.code, p.Detail)
		}
	}
	if p := e.do("POST", "/v1/payouts/"+sent+"/speed-up", `{"fee_cap":"1","tip":"2"}`).problem(t); len(p.Errors) != 1 || p.Errors[0].Pointer != "/tip" {
		t.Errorf("unknown field in speed-up: errors %+v, want one naming /tip", p.Errors)
	}
	if after := e.do("GET", "/v1/payouts/"+sent, "").payout(t); after.FeeCap.String() != "1000000000000000" {
		t.Errorf("a refused speed-up changed the fee cap to %s", after.FeeCap)
	}
	if r := e.do("DELETE", "/v1/payouts/"+queued, ""); r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("405 Allow = %q, want GET, HEAD", r.header.Get("Allow"))
	}
}
