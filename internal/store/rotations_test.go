package store_test

import (
	"testing"

	"github.com/sluicepay/sluice/internal/store/storetest"
)

func TestRotationsSQLite(t *testing.T) {
	storetest.RunRotations(t, func(t *testing.T) storetest.RotationStore { return openSQLite(t) })
}

func TestRotationsPostgres(t *testing.T) {
	storetest.RunRotations(t, func(t *testing.T) storetest.RotationStore { return openPostgres(t) })
}
