package payout

import (
	"encoding/json"
	"errors"
	"math/big"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in   string
		want string
		code Code
	}{
		{"1", "1", ""},
		{"1500000", "1500000", ""},
		{MaxAmount.String(), MaxAmount.String(), ""},
		{new(big.Int).Add(MaxAmount, big.NewInt(1)).String(), "", CodeAmountTooLarge},
		{"0", "", CodeInvalidAmount},
		{"000", "", CodeInvalidAmount},
		{"-5", "", CodeInvalidAmount},
		{"+5", "", CodeInvalidAmount},
		{"1.5", "", CodeInvalidAmount},
		{"1e18", "", CodeInvalidAmount},
		{"abc", "", CodeInvalidAmount},
		{"", "", CodeInvalidAmount},
		{"007", "", CodeInvalidAmount},
		{" 7", "", CodeInvalidAmount},
		{strings.Repeat("9", 100), "", CodeAmountTooLarge},
	}
	for _, tt := range tests {
		got, err := ParseAmount(tt.in)
		if tt.code != "" {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Code != tt.code || fe.Field != "amount" {
				t.Errorf("ParseAmount(%q) err = %v, want code %s", tt.in, err, tt.code)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("ParseAmount(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestParseDecimalExact(t *testing.T) {
	tests := []struct {
		in       string
		decimals uint8
		want     string
		wantErr  string
	}{
		{"1.5", 6, "1500000", ""},
		{"0.000001", 6, "1", ""},
		{"12", 6, "12000000", ""},
		{"1.000000000000000001", 18, "1000000000000000001", ""},
		{"0.1", 18, "100000000000000000", ""}, // never 0.1 as a float
		{".5", 6, "500000", ""},
		{"1.1234567", 6, "", "7 decimal places; the asset has 6"},
		{"1e6", 6, "", "must be a positive decimal"},
		{"-1", 6, "", "must be a positive decimal"},
		{"0", 6, "", "greater than zero"},
		{"0.0", 6, "", "greater than zero"},
		{"1.", 6, "", "not a decimal number"},
		{"", 6, "", "empty"},
		{"1,5", 6, "", "must be a positive decimal"},
		{"5", 0, "5", ""},
		{"5.1", 0, "", "1 decimal places"},
	}
	for _, tt := range tests {
		got, err := ParseDecimal(tt.in, tt.decimals)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.in) {
				t.Errorf("ParseDecimal(%q, %d) err = %v, want it to name the value and say %q", tt.in, tt.decimals, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("ParseDecimal(%q, %d) = %v, %v; want %s", tt.in, tt.decimals, got, err, tt.want)
		}
		back, err := ParseDecimal(FormatDecimal(got, tt.decimals), tt.decimals)
		if err != nil || back.Cmp(got) != 0 {
			t.Errorf("ParseDecimal(FormatDecimal(%s)) = %v, %v", got, back, err)
		}
	}
}

func TestFormatDecimal(t *testing.T) {
	for _, tt := range []struct {
		v    int64
		d    uint8
		want string
	}{{1500000, 6, "1.5"}, {1, 6, "0.000001"}, {1000000, 6, "1"}, {0, 6, "0"}, {-25, 1, "-2.5"}, {7, 0, "7"}} {
		if got := FormatDecimal(big.NewInt(tt.v), tt.d); got != tt.want {
			t.Errorf("FormatDecimal(%d, %d) = %q, want %q", tt.v, tt.d, got, tt.want)
		}
	}
}

func TestParseAddress(t *testing.T) {
	good := "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed" // EIP-55 test vector
	tests := []struct {
		in   string
		code Code
	}{
		{good, ""},
		{strings.ToLower(good), ""},
		{"0x" + strings.ToUpper(good[2:]), ""},
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", CodeInvalidChecksum},
		{"0x0000000000000000000000000000000000000000", CodeZeroAddress},
		{"0x123", CodeInvalidAddress},
		{good[2:], CodeInvalidAddress},
		{"0xzzzeb6053F3E94C9b9A09f33669435E7Ef1BeAed", CodeInvalidAddress},
		{"", CodeInvalidAddress},
	}
	for _, tt := range tests {
		a, err := ParseAddress("to", tt.in)
		if tt.code == "" {
			if err != nil || a.Hex() != good {
				t.Errorf("ParseAddress(%q) = %s, %v", tt.in, a.Hex(), err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Code != tt.code || fe.Field != "to" {
			t.Errorf("ParseAddress(%q) err = %v, want %s", tt.in, err, tt.code)
		}
	}
}

func TestIDsAreUniqueAndOrdered(t *testing.T) {
	g := &IDGenerator{}
	now := time.Now()
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = g.New("po_", now.Add(time.Duration(i/100)*time.Millisecond))
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids are not in creation order")
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] || len(id) != 29 {
			t.Fatalf("duplicate or malformed id %q", id)
		}
		seen[id] = true
	}
	// A clock that steps back must not break the order.
	a := g.New("po_", now.Add(time.Hour))
	b := g.New("po_", now)
	if b <= a {
		t.Errorf("id after a clock step back %q <= %q", b, a)
	}
}

func TestValidateCollectsEveryError(t *testing.T) {
	cat := &Catalog{Chains: map[string]Chain{"sandbox": {Name: "sandbox", ChainID: 1337,
		Assets: map[string]Asset{"ETH": {Symbol: "ETH", Decimals: 18}}}}}
	r := &CreateRequest{Chain: "sandbox", Asset: "DOGE", To: "0x0", Amount: "-1", ExternalID: "has space"}
	_, err := r.Validate(cat, &IDGenerator{}, time.Now())
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want ValidationError", err)
	}
	var got []string
	for _, fe := range ve.Errors {
		got = append(got, fe.Field+":"+string(fe.Code))
	}
	want := "asset:unknown_asset to:invalid_address amount:invalid_amount external_id:invalid_external_id"
	if strings.Join(got, " ") != want {
		t.Errorf("errors = %v, want %s", got, want)
	}

	r = &CreateRequest{Chain: "sandbox", Asset: "ETH", To: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", Amount: "10"}
	p, err := r.Validate(cat, &IDGenerator{}, time.Now())
	if err != nil || p.Status != StatusQueued || p.ChainID != 1337 || p.Amount.Int64() != 10 || !strings.HasPrefix(p.ID, "po_") {
		t.Fatalf("Validate = %+v, %v", p, err)
	}
}

func TestPayoutJSONRoundTrip(t *testing.T) {
	h := common.HexToHash("0xabc")
	n := uint64(7)
	p := &Payout{ID: "po_1", Status: StatusCompleted, Chain: "sandbox", ChainID: 1337, Asset: "SUSD",
		To: common.HexToAddress("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"), Amount: MaxAmount, ExternalID: "inv-1",
		TxHash: &h, Nonce: &n, BlockNumber: 9, Fee: big.NewInt(21000), CreatedAt: time.Unix(1, 0), UpdatedAt: time.Unix(2, 0)}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"object":"payout"`, `"amount":"` + MaxAmount.String() + `"`, `"fee":"21000"`, `"failure_code":null`, `"to":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	var back Payout
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Amount.Cmp(MaxAmount) != 0 || *back.TxHash != h || back.Fee.Int64() != 21000 || back.ExternalID != "inv-1" {
		t.Errorf("round trip lost data: %+v", back)
	}
}

func TestStateMachine(t *testing.T) {
	if !CanMove(StatusQueued, StatusSubmitted) || CanMove(StatusCompleted, StatusQueued) || CanMove(StatusSubmitted, StatusCancelled) {
		t.Error("transitions wrong")
	}
	for _, s := range Statuses {
		if s.Terminal() != (len(transitions[s]) == 0) {
			t.Errorf("%s: terminal = %v but has transitions %v", s, s.Terminal(), transitions[s])
		}
	}
}

func TestAssignTakesTurns(t *testing.T) {
	ws := []common.Address{common.HexToAddress("0x01"), common.HexToAddress("0x02"), common.HexToAddress("0x03")}
	c := &Catalog{Chains: map[string]Chain{"a": {Name: "a", HotWallet: ws[0], HotWallets: ws}}}
	count := map[common.Address]int{}
	for range 30 {
		count[c.Assign(c.Chains["a"], "ETH", big.NewInt(1))]++
	}
	for _, w := range ws {
		if count[w] != 10 {
			t.Errorf("wallet %s got %d of 30 payouts, want 10", w.Hex(), count[w])
		}
	}
	single := Chain{Name: "b", HotWallet: ws[1]}
	if got := c.Assign(single, "ETH", big.NewInt(1)); got != ws[1] {
		t.Errorf("single wallet chain assigned %s", got.Hex())
	}
}

func TestAssignSkipsWalletsThatCannotCover(t *testing.T) {
	ws := []common.Address{common.HexToAddress("0x01"), common.HexToAddress("0x02"), common.HexToAddress("0x03")}
	avail := map[common.Address]int64{ws[0]: 5, ws[2]: 100} // ws[1] not known yet
	c := &Catalog{Chains: map[string]Chain{"a": {Name: "a", HotWallet: ws[0], HotWallets: ws}},
		Available: func(chain string, w common.Address, asset string) (*big.Int, bool) {
			v, ok := avail[w]
			if chain != "a" || asset != "SUSD" {
				t.Errorf("Available(%s, %s, %s)", chain, w.Hex(), asset)
			}
			return big.NewInt(v), ok
		}}
	count := map[common.Address]int{}
	for range 20 {
		count[c.Assign(c.Chains["a"], "SUSD", big.NewInt(10))]++
	}
	if count[ws[0]] != 0 || count[ws[1]] != 10 || count[ws[2]] != 10 {
		t.Errorf("assigned %v; want the short wallet skipped and the others taking turns", count)
	}
	// When no wallet can cover it, all take turns (and it waits there).
	avail[ws[1]] = 7
	count = map[common.Address]int{}
	for range 30 {
		count[c.Assign(c.Chains["a"], "SUSD", big.NewInt(1000))]++
	}
	for _, w := range ws {
		if count[w] != 10 {
			t.Errorf("a payout no wallet covers: %s got %d of 30, want 10", w.Hex(), count[w])
		}
	}
}

func TestAssignPrefersTheLeastLoaded(t *testing.T) {
	ws := []common.Address{common.HexToAddress("0x01"), common.HexToAddress("0x02"), common.HexToAddress("0x03")}
	type count struct {
		n   int
		seq uint64
	}
	counted := map[common.Address]count{ws[0]: {10, 1}, ws[1]: {0, 1}, ws[2]: {4, 1}}
	c := &Catalog{Chains: map[string]Chain{"a": {Name: "a", HotWallet: ws[0], HotWallets: ws}},
		Outstanding: func(chain string, w common.Address) (int, uint64, bool) {
			k, ok := counted[w]
			return k.n, k.seq, ok
		}}
	assign := func(n int) map[common.Address]int {
		got := map[common.Address]int{}
		for range n {
			got[c.Assign(c.Chains["a"], "ETH", big.NewInt(1))]++
		}
		return got
	}
	if got := assign(4); got[ws[1]] != 4 {
		t.Fatalf("first four payouts went to %v; want all to the idle wallet", got)
	}
	// Now 10, 4 and 4 outstanding: the two lighter wallets share the next 12
	// until all three hold 10, then all take turns.
	if got := assign(12); got[ws[0]] != 0 || got[ws[1]] != 6 || got[ws[2]] != 6 {
		t.Errorf("next twelve: %v; want 0, 6, 6", got)
	}
	if got := assign(30); got[ws[0]] != 10 || got[ws[1]] != 10 || got[ws[2]] != 10 {
		t.Errorf("at equal loads: %v; want ten each", got)
	}
	// A wallet whose sender stops counting (it fell behind) keeps what it
	// was given; the others count again and get the new payouts.
	counted[ws[1]], counted[ws[2]] = count{0, 2}, count{0, 2}
	if got := assign(20); got[ws[0]] != 0 || got[ws[1]] != 10 || got[ws[2]] != 10 {
		t.Errorf("with one wallet behind: %v; want it skipped", got)
	}
	// A wallet not counted yet is weighed by what it was given alone.
	delete(counted, ws[0])
	if got := assign(3); got[ws[0]] != 3 {
		t.Errorf("uncounted wallet with nothing given since: %v; want the three", got)
	}
}
