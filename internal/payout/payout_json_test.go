package payout

import (
	"bytes"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// marshalReflect is MarshalJSON as it was written before AppendJSON: json.Marshal
// of wirePayout, the reference AppendJSON must match byte for byte.
func marshalReflect(p *Payout) ([]byte, error) {
	w := wirePayout{
		ID: p.ID, Object: "payout", Status: p.Status, Chain: p.Chain, ChainID: p.ChainID,
		Asset: p.Asset, To: p.To.Hex(), Amount: p.Amount.String(), Metadata: p.Metadata,
		From: p.Sender.Hex(), Nonce: p.Nonce, Priority: p.Priority, CancelRequest: p.CancelRequested,
		CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(), LogIndex: p.LogIndex,
	}
	if p.BatchID != "" {
		w.BatchID = &p.BatchID
	}
	if w.Priority == "" {
		w.Priority = PriorityStandard
	}
	if p.Reason != "" {
		r := string(p.Reason)
		w.StatusReason, w.StatusDetail = &r, &p.ReasonDetail
	}
	if p.FeeCap != nil {
		s := p.FeeCap.String()
		w.FeeCap = &s
	}
	if w.Metadata == nil {
		w.Metadata = map[string]string{}
	}
	if p.ExternalID != "" {
		w.ExternalID = &p.ExternalID
	}
	if p.TxHash != nil {
		s := p.TxHash.Hex()
		w.TxHash = &s
	}
	if p.BlockNumber != 0 {
		w.BlockNumber = &p.BlockNumber
	}
	if p.Fee != nil {
		s := p.Fee.String()
		w.Fee = &s
	}
	if p.FailureCode != "" {
		s := string(p.FailureCode)
		w.FailureCode = &s
		w.FailureMessage = &p.FailureMessage
	}
	return json.Marshal(w)
}

// jsonCases are payouts covering every optional field both ways and the
// strings encoding/json escapes.
func jsonCases() []*Payout {
	at := time.Date(2026, 11, 24, 15, 4, 5, 123456000, time.UTC)
	nonce, li := uint64(7), uint(3)
	hash := common.HexToHash("0xabc")
	bare := &Payout{ID: "po_1", Status: StatusQueued, Chain: "sandbox", ChainID: 1337, Asset: "ETH",
		To: common.HexToAddress("0x00000000000000000000000000000000000000aa"), Amount: big.NewInt(10),
		CreatedAt: at, UpdatedAt: at}
	full := &Payout{ID: "po_2", Status: StatusCompleted, Chain: "sandbox", ChainID: 1, Asset: "SUSD",
		To: common.HexToAddress("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"), Amount: new(big.Int).Lsh(big.NewInt(1), 200),
		ExternalID: "inv-<7>&\"q\"", Metadata: map[string]string{"z": "last", "a": "é\u2028\x01", "m": "\xff"},
		Sender: common.HexToAddress("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"), Priority: PriorityHigh,
		Reason: ReasonCancelFailed, ReasonDetail: "mined first\n", FeeCap: big.NewInt(0), CancelRequested: true,
		TxHash: &hash, Nonce: &nonce, BlockNumber: 99, Fee: big.NewInt(21000), FailureCode: FailureRevertedOnChain,
		FailureMessage: "reverted", BatchID: "bat_1", LogIndex: &li,
		CreatedAt: at.In(time.FixedZone("x", 3600)), UpdatedAt: at.Add(time.Second)}
	return []*Payout{bare, full, {Amount: nil}}
}

func TestAppendJSONMatchesReflection(t *testing.T) {
	for i, p := range jsonCases() {
		want, err := marshalReflect(p)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := p.MarshalJSON()
		if !bytes.Equal(got, want) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
		if !json.Valid(got) {
			t.Errorf("case %d: invalid JSON %s", i, got)
		}
	}
}

// FuzzAppendJSONMatchesReflection holds the hand-written encoder to the
// reflection one for any strings, numbers and times.
func FuzzAppendJSONMatchesReflection(f *testing.F) {
	f.Add("po_1", "sandbox", "ETH", "", "k", "v", "", "", uint64(1337), int64(0), uint64(0), false)
	f.Add("po_<&>", "s\u2028", "\xff", "ext\"\\", "\x00", "é", "why", "bat", uint64(1), int64(-5), uint64(9), true)
	f.Fuzz(func(t *testing.T, id, chain, asset, ext, mk, mv, detail, batch string, chainID uint64, unixNano int64, n uint64, flag bool) {
		p := &Payout{ID: id, Status: Status(chain), Chain: chain, ChainID: chainID, Asset: asset,
			Amount: big.NewInt(unixNano), ExternalID: ext, Metadata: map[string]string{mk: mv, mv: mk},
			Priority: Priority(asset), BatchID: batch, BlockNumber: n, CancelRequested: flag,
			CreatedAt: time.Unix(0, unixNano), UpdatedAt: time.Unix(int64(n%1e10), 0)}
		if flag {
			nonce, li, h := n, uint(n), common.BytesToHash([]byte(id))
			p.Nonce, p.LogIndex, p.TxHash = &nonce, &li, &h
			p.Reason, p.ReasonDetail, p.FailureCode, p.FailureMessage = Code(detail), detail, Code(mv), mk
			p.FeeCap, p.Fee = big.NewInt(-unixNano), new(big.Int).SetUint64(n)
		}
		want, err := marshalReflect(p)
		if err != nil {
			t.Skip("json.Marshal refuses it (a time outside years 0-9999)")
		}
		got, _ := p.MarshalJSON()
		if !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkPayoutJSON(b *testing.B) {
	// As the sender writes it once mined: hash, nonce, block, fee set.
	p := *jsonCases()[0]
	nonce, hash := uint64(7), common.HexToHash("0xabc")
	p.Sender, p.TxHash, p.Nonce, p.BlockNumber, p.Fee = common.HexToAddress("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"), &hash, &nonce, 99, big.NewInt(21000)
	p.Metadata = map[string]string{"invoice": "inv-2026-11-0042"}
	b.Run("append", func(b *testing.B) {
		for b.Loop() {
			_, _ = p.MarshalJSON()
		}
	})
	b.Run("reflection", func(b *testing.B) {
		for b.Loop() {
			_, _ = marshalReflect(&p)
		}
	})
}
