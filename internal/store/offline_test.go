package store_test

import (
	"testing"

	"github.com/sluicepay/sluice/internal/store/storetest"
)

func TestOfflinePlansSQLite(t *testing.T) {
	storetest.RunOfflinePlans(t, func(t *testing.T) storetest.OfflineStore { return openSQLite(t) })
}

func TestOfflinePlansPostgres(t *testing.T) {
	storetest.RunOfflinePlans(t, func(t *testing.T) storetest.OfflineStore { return openPostgres(t) })
}
