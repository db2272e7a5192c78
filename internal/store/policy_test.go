package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
	"github.com/sluicepay/sluice/internal/store/storetest"
)

func TestPolicyVersions(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.ActivePolicy(ctx); !errors.Is(err, payout.ErrNoPolicy) {
			t.Fatalf("ActivePolicy on an empty store = %v, want ErrNoPolicy", err)
		}
		for i, activate := range []bool{true, false, true} {
			v := &payout.PolicyVersion{Document: fmt.Sprintf("version: 1 # %d\n", i), CreatedBy: "key_a"}
			if err := db.SavePolicy(ctx, v, activate); err != nil {
				t.Fatal(err)
			}
			if v.Version != int64(i+1) || len(v.SHA256) != 64 {
				t.Fatalf("saved version = %+v, want version %d with its hash", v, i+1)
			}
		}
		active, err := db.ActivePolicy(ctx)
		if err != nil || active.Version != 3 || active.Document != "version: 1 # 2\n" {
			t.Fatalf("ActivePolicy = %+v, %v; want version 3", active, err)
		}
		vs, err := db.PolicyVersions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range vs {
			got = append(got, fmt.Sprintf("%d %v", v.Version, v.Active))
		}
		if diff := cmp.Diff([]string{"3 true", "2 false", "1 false"}, got); diff != "" {
			t.Errorf("versions (-want +got):\n%s", diff)
		}
		es, _, err := db.ListAudit(ctx, 0, 10)
		if err != nil || len(es) != 3 || es[2].Action != payout.AuditPolicyApply || es[2].Object != "policy_v3" {
			t.Fatalf("audit = %v, %v; want three policy.apply entries", es, err)
		}
	})
}

func TestPolicyDecisions(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
		d := &payout.PolicyDecision{PayoutID: "po_1", PolicyVersion: 2, Rule: "small", Action: "allow", Reason: "rule matched",
			APIKeyID: "key_a", Facts: json.RawMessage(`{"amount":"5"}`), DecidedAt: at}
		if err := db.SaveDecision(ctx, d); err != nil {
			t.Fatal(err)
		}
		got, err := db.PayoutDecision(ctx, "po_1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(d, got); diff != "" {
			t.Errorf("PayoutDecision (-want +got):\n%s", diff)
		}
		if err := db.DeleteDecision(ctx, "po_1"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.PayoutDecision(ctx, "po_1"); !errors.Is(err, payout.ErrNotFound) {
			t.Fatalf("PayoutDecision after delete = %v, want ErrNotFound", err)
		}
	})
}

func TestLists(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := func(n int64) common.Address { return common.BigToAddress(big.NewInt(n)) }
		if err := db.CreateList(ctx, &payout.List{Name: "ofac", Kind: payout.ListDeny, Sanctions: true}, "cli"); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateList(ctx, &payout.List{Name: "ofac", Kind: payout.ListDeny}, "cli"); !errors.Is(err, payout.ErrListExists) {
			t.Fatalf("CreateList(taken) = %v, want ErrListExists", err)
		}
		if err := db.CreateList(ctx, &payout.List{Name: "partners", Kind: payout.ListAllow}, "cli"); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateList(ctx, &payout.List{Name: "x", Kind: "maybe"}, "cli"); err == nil {
			t.Fatal("CreateList(kind maybe) succeeded")
		}
		ch, err := db.ReplaceListEntries(ctx, "ofac", []payout.ListEntry{{Address: a(2)}, {Address: a(1)}, {Address: a(1)}}, "cli")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&payout.ListChange{Added: []common.Address{a(1), a(2)}, Removed: []common.Address{}}, ch); diff != "" {
			t.Errorf("first import (-want +got):\n%s", diff)
		}
		ch, err = db.ReplaceListEntries(ctx, "ofac", []payout.ListEntry{{Address: a(2)}, {Address: a(3)}}, "cli")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&payout.ListChange{Added: []common.Address{a(3)}, Removed: []common.Address{a(1)}}, ch); diff != "" {
			t.Errorf("second import (-want +got):\n%s", diff)
		}
		if _, err := db.AddListEntries(ctx, "partners", []payout.ListEntry{{Address: a(3), Note: "vendor"}}, "key_a"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AddListEntries(ctx, "nope", nil, "cli"); !errors.Is(err, payout.ErrNotFound) {
			t.Fatalf("AddListEntries(unknown list) = %v, want ErrNotFound", err)
		}
		hits, err := db.ListsHolding(ctx, a(3))
		if err != nil {
			t.Fatal(err)
		}
		want := []payout.ListHit{{Name: "ofac", Kind: payout.ListDeny, Sanctions: true}, {Name: "partners", Kind: payout.ListAllow}}
		if diff := cmp.Diff(want, hits); diff != "" {
			t.Errorf("ListsHolding (-want +got):\n%s", diff)
		}
		ls, err := db.Lists(ctx)
		if err != nil || len(ls) != 2 || ls[0].Entries != 2 || ls[1].Entries != 1 || !ls[0].Sanctions {
			t.Fatalf("Lists = %+v, %v; want ofac (2 entries, sanctions) and partners (1)", ls, err)
		}
		if _, err := db.GetList(ctx, "nope"); !errors.Is(err, payout.ErrNotFound) {
			t.Fatalf("GetList(unknown) = %v", err)
		}
	})
}

func TestPolicyFacts(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		to := common.HexToAddress("0x00000000000000000000000000000000000000d1")
		base := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
		var ids []string
		for i := range 3 {
			at := base.Add(time.Duration(i) * time.Minute)
			p := &payout.Payout{ID: payout.DefaultIDs.New("po_", at), Status: payout.StatusQueued, Chain: "sandbox", ChainID: 1337,
				Asset: "ETH", To: to, Amount: new(big.Int).Mul(big.NewInt(int64(i+1)), big.NewInt(1e18)),
				Sender: common.HexToAddress("0xaa"), Priority: payout.PriorityStandard, Version: 1, CreatedAt: at, UpdatedAt: at}
			if err := db.CreatePayout(ctx, p, nil); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, p.ID)
		}
		if _, ok, err := db.FirstPaid(ctx, to); ok || err != nil {
			t.Fatalf("FirstPaid before any completed = %v, %v", ok, err)
		}
		if err := db.ExecRaw(`UPDATE payouts SET status = 'completed' WHERE id = '` + ids[1] + `'`); err != nil {
			t.Fatal(err)
		}
		if err := db.ExecRaw(`UPDATE payouts SET status = 'cancelled' WHERE id = '` + ids[2] + `'`); err != nil {
			t.Fatal(err)
		}
		first, ok, err := db.FirstPaid(ctx, to)
		if err != nil || !ok || !first.Equal(base.Add(time.Minute)) {
			t.Fatalf("FirstPaid = %v, %v, %v; want %v", first, ok, err, base.Add(time.Minute))
		}
		if err := db.SaveDecision(ctx, &payout.PolicyDecision{PayoutID: ids[0], PolicyVersion: 1, Action: "allow", APIKeyID: "key_a", DecidedAt: base}); err != nil {
			t.Fatal(err)
		}
		hs, err := db.PayoutHistory(ctx, base)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hs {
			got = append(got, fmt.Sprintf("%s %s %s %s", h.ID, h.Amount, h.APIKeyID, h.To.Hex()))
		}
		want := []string{ids[0] + " 1000000000000000000 key_a " + to.Hex(), ids[1] + " 2000000000000000000  " + to.Hex()}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("PayoutHistory (-want +got):\n%s", diff)
		}
	})
}

func TestPolicyChangesSQLite(t *testing.T) {
	storetest.RunPolicyChanges(t, func(t *testing.T) storetest.PolicyChangeStore { return openSQLite(t) })
}

func TestPolicyChangesPostgres(t *testing.T) {
	storetest.RunPolicyChanges(t, func(t *testing.T) storetest.PolicyChangeStore { return openPostgres(t) })
}
