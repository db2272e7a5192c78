package config

import (
	"strings"
	"testing"
	"time"
)

func TestWebhooksDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Webhooks{Timeout: 10 * time.Second, Workers: 32, DisableAfter: 72 * time.Hour}
	if c.Webhooks != want {
		t.Errorf("webhooks = %+v, want %+v", c.Webhooks, want)
	}
}

func TestWebhooksParseAndEnv(t *testing.T) {
	y := minimal + "webhooks: {allow_private_targets: true, timeout: 5s, workers: 8, disable_after: 24h}\n"
	c, err := Parse([]byte(y), []string{"SLUICE_WEBHOOKS_WORKERS=16", "SLUICE_WEBHOOKS_DISABLED=true"})
	if err != nil {
		t.Fatal(err)
	}
	want := Webhooks{AllowPrivateTargets: true, Timeout: 5 * time.Second, Workers: 16, DisableAfter: 24 * time.Hour, Disabled: true}
	if c.Webhooks != want {
		t.Errorf("webhooks = %+v, want %+v", c.Webhooks, want)
	}
}

func TestWebhooksRefused(t *testing.T) {
	for _, tc := range []struct{ yaml, field string }{
		{"webhooks: {timeout: 500ms}", "webhooks.timeout"},
		{"webhooks: {timeout: 2m}", "webhooks.timeout"},
		{"webhooks: {workers: -1}", "webhooks.workers"},
		{"webhooks: {workers: 5000}", "webhooks.workers"},
		{"webhooks: {disable_after: 10m}", "webhooks.disable_after"},
		{"webhooks: {allow_private: true}", "allow_private"},
	} {
		_, err := Parse([]byte(minimal+tc.yaml+"\n"), nil)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want an error naming %s", tc.yaml, err, tc.field)
		}
	}
}
