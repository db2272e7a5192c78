package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

func bothDialects(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); fn(t, openSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); fn(t, openPostgres(t)) })
}

func TestPauses(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		wallet := common.HexToAddress("0x00000000000000000000000000000000000000aa")
		global := &payout.Pause{ID: "pse_1", Scope: payout.PauseGlobal, Reason: "incident 42", CreatedBy: "key_a"}
		byWallet := &payout.Pause{ID: "pse_2", Scope: payout.PauseWallet, Chain: "sandbox", Wallet: wallet, Reason: "key rotation", CreatedBy: "cli"}
		for _, p := range []*payout.Pause{global, byWallet} {
			if err := db.CreatePause(ctx, p); err != nil {
				t.Fatalf("CreatePause(%s): %v", p.ID, err)
			}
		}
		bad := &payout.Pause{ID: "pse_3", Scope: payout.PauseAsset, Chain: "sandbox", Reason: "x", CreatedBy: "cli"}
		var fe *payout.FieldError
		if err := db.CreatePause(ctx, bad); !errors.As(err, &fe) || fe.Field != "asset" {
			t.Fatalf("CreatePause(asset scope without asset) = %v, want a FieldError on asset", err)
		}
		active, err := db.ActivePauses(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]*payout.Pause{global, byWallet}, active); diff != "" {
			t.Fatalf("ActivePauses (-want +got):\n%s", diff)
		}
		resumed, err := db.ResumePause(ctx, "pse_1", "key_b")
		if err != nil {
			t.Fatal(err)
		}
		if resumed.Active() || resumed.ResumedBy != "key_b" {
			t.Fatalf("resumed pause = %+v, want resumed by key_b", resumed)
		}
		if _, err := db.ResumePause(ctx, "pse_1", "key_b"); !errors.Is(err, payout.ErrPauseResumed) {
			t.Fatalf("second ResumePause = %v, want ErrPauseResumed", err)
		}
		if _, err := db.ResumePause(ctx, "pse_nope", "key_b"); !errors.Is(err, payout.ErrNotFound) {
			t.Fatalf("ResumePause(unknown) = %v, want ErrNotFound", err)
		}
		if active, _ = db.ActivePauses(ctx); len(active) != 1 || active[0].ID != "pse_2" {
			t.Fatalf("ActivePauses after resume = %v, want only pse_2", active)
		}
		// Each change wrote its event and its audit entry, in order.
		evs, err := db.ListEvents(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		var gotEvents []string
		for _, e := range evs {
			gotEvents = append(gotEvents, e.Type+" "+e.ObjectID)
		}
		wantEvents := []string{"pause.created pse_1", "pause.created pse_2", "pause.resumed pse_1"}
		if diff := cmp.Diff(wantEvents, gotEvents); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		es, _, err := db.ListAudit(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		var gotAudit []string
		for _, e := range es {
			gotAudit = append(gotAudit, fmt.Sprintf("%d %s %s %s", e.Seq, e.Actor, e.Action, e.Object))
		}
		wantAudit := []string{"1 key_a pause.create pse_1", "2 cli pause.create pse_2", "3 key_b pause.resume pse_1"}
		if diff := cmp.Diff(wantAudit, gotAudit); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
	})
}

// appendN appends n entries and verifies the chain is whole.
func appendN(t *testing.T, db *store.DB, n int) {
	t.Helper()
	for i := range n {
		e, err := payout.NewAuditEntry("key_x", payout.AuditAPIKeyCreate, fmt.Sprintf("key_%d", i), map[string]any{"name": fmt.Sprintf("k%d", i), "scopes": []string{"admin"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.AppendAudit(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := payout.VerifyAuditLog(context.Background(), db); err != nil || got != int64(n) {
		t.Fatalf("VerifyAuditLog of an untouched log = %d, %v; want %d entries, whole", got, err, n)
	}
}

func TestAuditTamperDetected(t *testing.T) {
	tests := []struct {
		name   string
		tamper []string
		want   payout.AuditBreak
	}{
		{"changed details", []string{`UPDATE audit_log SET details = '{"name":"evil","scopes":["admin"]}' WHERE seq = 3`},
			payout.AuditBreak{Seq: 3, Kind: "changed"}},
		{"changed actor", []string{`UPDATE audit_log SET actor = 'cli' WHERE seq = 5`}, payout.AuditBreak{Seq: 5, Kind: "changed"}},
		{"removed", []string{`DELETE FROM audit_log WHERE seq = 4`}, payout.AuditBreak{Seq: 4, Kind: "removed"}},
		{"removed and renumbered", []string{`DELETE FROM audit_log WHERE seq = 2`, `UPDATE audit_log SET seq = seq - 1 WHERE seq > 2`},
			payout.AuditBreak{Seq: 2, Kind: "reordered"}},
		{"swapped", []string{`UPDATE audit_log SET seq = 100 WHERE seq = 2`, `UPDATE audit_log SET seq = 2 WHERE seq = 3`,
			`UPDATE audit_log SET seq = 3 WHERE seq = 100`}, payout.AuditBreak{Seq: 2, Kind: "reordered"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bothDialects(t, func(t *testing.T, db *store.DB) {
				appendN(t, db, 6)
				for _, q := range tc.tamper {
					if err := db.ExecRaw(q); err != nil {
						t.Fatalf("tamper %q: %v", q, err)
					}
				}
				_, err := payout.VerifyAuditLog(context.Background(), db)
				var b *payout.AuditBreak
				if !errors.As(err, &b) {
					t.Fatalf("VerifyAuditLog = %v, want an AuditBreak", err)
				}
				if b.Seq != tc.want.Seq || b.Kind != tc.want.Kind {
					t.Fatalf("VerifyAuditLog = %v, want entry %d %s", err, tc.want.Seq, tc.want.Kind)
				}
			})
		})
	}
}

// TestAuditConcurrentAppends appends from many goroutines at once; the
// chain must stay linear, without gaps or forks.
func TestAuditConcurrentAppends(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 25 {
					e, _ := payout.NewAuditEntry("key_x", payout.AuditPayoutCancel, fmt.Sprintf("pay_%d_%d", g, i), json.RawMessage(`{}`))
					if err := db.AppendAudit(ctx, e); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("AppendAudit: %v", err)
		}
		n, err := payout.VerifyAuditLog(ctx, db)
		if err != nil || n != 200 {
			t.Fatalf("VerifyAuditLog = %d, %v; want 200 entries, whole", n, err)
		}
	})
}

func TestAuditListPages(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		appendN(t, db, 5)
		es, more, err := db.ListAudit(context.Background(), 2, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 || es[0].Seq != 3 || es[1].Seq != 4 || !more {
			t.Fatalf("ListAudit(after 2, limit 2) = %d entries from %v, more %v; want 3, 4 and more", len(es), es, more)
		}
		if es[0].Time.After(time.Now()) || es[0].PrevHash == payout.AuditGenesis {
			t.Fatalf("entry 3 = %+v", es[0])
		}
	})
}
