package store_test

import (
	"testing"

	"github.com/sluicepay/sluice/internal/store/storetest"
)

func TestApprovalsSQLite(t *testing.T) {
	storetest.RunApprovals(t, func(t *testing.T) storetest.ApprovalStore { return openSQLite(t) })
}

func TestApprovalsPostgres(t *testing.T) {
	storetest.RunApprovals(t, func(t *testing.T) storetest.ApprovalStore { return openPostgres(t) })
}
