package store_test

import (
	"testing"

	"github.com/sluicepay/sluice/internal/store/storetest"
)

func TestWebhooksSQLite(t *testing.T) {
	storetest.RunWebhooks(t, func(t *testing.T) storetest.WebhookStore { return openSQLite(t) })
}

func TestWebhooksPostgres(t *testing.T) {
	storetest.RunWebhooks(t, func(t *testing.T) storetest.WebhookStore { return openPostgres(t) })
}
