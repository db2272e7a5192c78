package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/events"
	"github.com/sluicepay/sluice/internal/store"
)

// webhookURLCheck is the API's check of webhook URLs: the dispatcher's
// own rules, with the config's stance on private targets.
func webhookURLCheck(w config.Webhooks) func(ctx context.Context, url string) error {
	return func(ctx context.Context, url string) error {
		return events.CheckURL(ctx, url, w.AllowPrivateTargets, nil)
	}
}

// startWebhooks starts the webhook dispatcher unless the config turns it
// off on this instance; nil then.
func startWebhooks(ctx context.Context, w config.Webhooks, db *store.DB, owner string, log *slog.Logger, reg prometheus.Registerer) (*events.Dispatcher, error) {
	if w.Disabled {
		log.Info("webhook delivery is disabled on this instance")
		return nil, nil
	}
	d, err := events.New(events.Config{
		Store: db, Committed: db.Committed, Owner: owner, Logger: log, Registerer: reg,
		Timeout: w.Timeout, Workers: w.Workers, DisableAfter: w.DisableAfter, AllowPrivateTargets: w.AllowPrivateTargets,
	})
	if err != nil {
		return nil, err
	}
	d.Start(context.WithoutCancel(ctx))
	return d, nil
}
