package store_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/policy"
	"github.com/sluicepay/sluice/internal/store/storetest"
)

func TestApprovalsSQLite(t *testing.T) {
	storetest.RunApprovals(t, func(t *testing.T) storetest.ApprovalStore { return openSQLite(t) })
}

func TestApprovalsPostgres(t *testing.T) {
	storetest.RunApprovals(t, func(t *testing.T) storetest.ApprovalStore { return openPostgres(t) })
}

// TestSweepExpiresPolicyVersions: the approval sweep the engine runs also
// expires the policy versions that waited longer than its PolicyExpiry,
// so that one nobody looks at ends too.
func TestSweepExpiresPolicyVersions(t *testing.T) {
	db := openSQLite(t)
	ctx := context.Background()
	if err := db.ProposePolicy(ctx, &payout.PolicyVersion{Document: "version: 1\n", CreatedBy: "key_p"}, 2); err != nil {
		t.Fatal(err)
	}
	sw := payout.NewApprovalSweeper(db, time.Hour, nil, slog.New(slog.DiscardHandler))
	sw.PolicyExpiry = time.Hour
	if _, err := sw.SweepOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if cs, err := db.PolicyChanges(ctx, 1); err != nil || cs[1].Status != policy.StatusPending {
		t.Fatalf("a fresh version after a sweep: %+v, %v; want pending", cs[1], err)
	}
	time.Sleep(5 * time.Millisecond)
	sw.PolicyExpiry = time.Millisecond
	if _, err := sw.SweepOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if cs, err := db.PolicyChanges(ctx, 1); err != nil || cs[1].Status != policy.StatusExpired {
		t.Fatalf("an old version after a sweep: %+v, %v; want expired", cs[1], err)
	}
}
