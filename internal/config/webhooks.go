package config

import (
	"fmt"
	"time"
)

// Webhooks tunes the delivery of events to webhook endpoints.
type Webhooks struct {
	// AllowPrivateTargets lets endpoints be on loopback, private,
	// link-local and other internal addresses. Default false: such URLs
	// are refused at creation and at every connection (SSRF). The
	// configs of `sluice sandbox` and `sluice devchain` set it.
	AllowPrivateTargets bool `yaml:"allow_private_targets"`
	// Timeout bounds one delivery attempt, connect to status line.
	// Default 10s; 1s to 60s.
	Timeout time.Duration `yaml:"timeout"`
	// Workers is how many attempts run at once. Default 32; at most 1024.
	Workers int `yaml:"workers"`
	// DisableAfter disables an endpoint that had no success for this
	// long, and writes a webhook_endpoint.disabled event. Default 72h; at
	// least 1h.
	DisableAfter time.Duration `yaml:"disable_after"`
	// Disabled stops this instance from delivering (another instance on
	// the same database may). Default false.
	Disabled bool `yaml:"disabled"`
}

func (w *Webhooks) setDefaults() {
	if w.Timeout == 0 {
		w.Timeout = 10 * time.Second
	}
	if w.Workers == 0 {
		w.Workers = 32
	}
	if w.DisableAfter == 0 {
		w.DisableAfter = 72 * time.Hour
	}
}

func (w *Webhooks) validate() error {
	if w.Timeout < time.Second || w.Timeout > time.Minute {
		return fieldErr("webhooks.timeout", fmt.Sprintf("%s is not from 1s to 60s", w.Timeout))
	}
	if w.Workers < 1 || w.Workers > 1024 {
		return fieldErr("webhooks.workers", fmt.Sprintf("%d is not from 1 to 1024", w.Workers))
	}
	if w.DisableAfter < time.Hour {
		return fieldErr("webhooks.disable_after", fmt.Sprintf("%s is shorter than 1h", w.DisableAfter))
	}
	return nil
}
