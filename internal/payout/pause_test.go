package payout

import (
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

func TestPauseMatches(t *testing.T) {
	w1, w2 := common.HexToAddress("0x01"), common.HexToAddress("0x02")
	pauses := map[string]*Pause{
		"global":          {Scope: PauseGlobal},
		"chain":           {Scope: PauseChain, Chain: "eth"},
		"asset":           {Scope: PauseAsset, Chain: "eth", Asset: "USDC"},
		"wallet":          {Scope: PauseWallet, Wallet: w1},
		"wallet on chain": {Scope: PauseWallet, Chain: "base", Wallet: w1},
	}
	tests := []struct {
		pause, chain, asset string
		wallet              common.Address
		want                bool
	}{
		{"global", "base", "ETH", w2, true},
		{"chain", "eth", "ETH", w2, true},
		{"chain", "base", "ETH", w2, false},
		{"asset", "eth", "USDC", w1, true},
		{"asset", "eth", "ETH", w1, false},
		{"asset", "base", "USDC", w1, false},
		{"wallet", "eth", "ETH", w1, true},
		{"wallet", "eth", "ETH", w2, false},
		{"wallet on chain", "base", "ETH", w1, true},
		{"wallet on chain", "eth", "ETH", w1, false},
	}
	for _, tc := range tests {
		if got := pauses[tc.pause].Matches(tc.chain, tc.asset, tc.wallet); got != tc.want {
			t.Errorf("%s pause Matches(%s, %s, %s) = %v, want %v", tc.pause, tc.chain, tc.asset, tc.wallet.Hex(), got, tc.want)
		}
	}
}

func TestPauseValidate(t *testing.T) {
	w := common.HexToAddress("0x01")
	tests := []struct {
		p     Pause
		field string // "" when valid
	}{
		{Pause{Scope: PauseGlobal, Reason: "r"}, ""},
		{Pause{Scope: PauseGlobal, Chain: "eth", Reason: "r"}, "scope"},
		{Pause{Scope: PauseChain, Reason: "r"}, "chain"},
		{Pause{Scope: PauseAsset, Chain: "eth", Reason: "r"}, "asset"},
		{Pause{Scope: PauseAsset, Chain: "eth", Asset: "USDC", Reason: "r"}, ""},
		{Pause{Scope: PauseWallet, Reason: "r"}, "wallet"},
		{Pause{Scope: PauseWallet, Wallet: w, Chain: "eth", Reason: "r"}, ""},
		{Pause{Scope: PauseGlobal, Reason: "  "}, "reason"},
		{Pause{Scope: "planet", Reason: "r"}, "scope"},
	}
	for _, tc := range tests {
		err := tc.p.Validate()
		fe, _ := err.(*FieldError)
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%+v: %v, want valid", tc.p, err)
		case tc.field != "" && (fe == nil || fe.Field != tc.field || fe.Code != CodeInvalidPause):
			t.Errorf("%+v: %v, want a FieldError on %s", tc.p, err, tc.field)
		}
	}
}

func TestAuditVerifierAnchor(t *testing.T) {
	var prev *AuditEntry
	var log []*AuditEntry
	for i := range 3 {
		e, err := NewAuditEntry("cli", AuditPauseCreate, "pse_"+string(rune('a'+i)), map[string]int{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		e.Seal(prev, time.Date(2026, 11, 24, 4, 0, i, 0, time.UTC))
		log, prev = append(log, e), e
	}
	check := func(entries []*AuditEntry, seq int64, hash string) error {
		v := NewAuditVerifier()
		v.Anchor.Seq, v.Anchor.Hash = seq, hash
		for _, e := range entries {
			if err := v.Check(e); err != nil {
				return err
			}
		}
		return v.Finish()
	}
	if err := check(log, 3, log[2].Hash); err != nil {
		t.Fatalf("whole log with its head as anchor: %v", err)
	}
	var b *AuditBreak
	if err := check(log[:2], 3, log[2].Hash); !errors.As(err, &b) || b.Seq != 3 || b.Kind != "removed" {
		t.Errorf("log without its last entry: %v, want entry 3 removed", err)
	}
	if err := check(log, 2, AuditGenesis); !errors.As(err, &b) || b.Seq != 2 || b.Kind != "changed" {
		t.Errorf("anchor hash differs: %v, want entry 2 changed", err)
	}
}
