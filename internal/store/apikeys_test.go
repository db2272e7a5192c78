package store_test

import (
	"testing"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store/storetest"
)

func TestAPIKeysSQLite(t *testing.T) {
	storetest.RunAPIKeys(t, func(t *testing.T) payout.APIKeyStore { return openSQLite(t) })
}

func TestAPIKeysPostgres(t *testing.T) {
	storetest.RunAPIKeys(t, func(t *testing.T) payout.APIKeyStore { return openPostgres(t) })
}

func TestAPIKeyLabelsSQLite(t *testing.T) {
	storetest.RunAPIKeyLabels(t, func(t *testing.T) storetest.LabeledAPIKeyStore { return openSQLite(t) })
}

func TestAPIKeyLabelsPostgres(t *testing.T) {
	storetest.RunAPIKeyLabels(t, func(t *testing.T) storetest.LabeledAPIKeyStore { return openPostgres(t) })
}
