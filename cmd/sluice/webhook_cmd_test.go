package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// webhook runs `sluice webhook ARGS` against the env's API.
func (e *cliEnv) webhook(args ...string) (string, error) {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	err := runWebhook(context.Background(), append(args, e.base...), &stdout, &stderr)
	return stdout.String(), err
}

func (e *cliEnv) mustWebhook(args ...string) string {
	e.t.Helper()
	out, err := e.webhook(args...)
	if err != nil {
		e.t.Fatalf("sluice webhook %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestWebhookCommands(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	var ep struct {
		ID, Secret, Status, DisabledReason string   `json:",omitempty"`
		EnabledEvents                      []string `json:"enabled_events"`
	}
	out := e.mustWebhook("create", "--url", "http://127.0.0.1:9/hook", "--event", "payout.completed", "--event", "payout.failed,payout.cancelled", "--json")
	if err := json.Unmarshal([]byte(out), &ep); err != nil || !strings.HasPrefix(ep.ID, "we_") || !strings.HasPrefix(ep.Secret, "whsec_") || len(ep.EnabledEvents) != 3 {
		t.Fatalf("create --json: %s (%v)", out, err)
	}
	if out := e.mustWebhook("create", "--url", "http://127.0.0.1:9/all", "--event", "*"); !strings.Contains(out, "secret:") || !strings.Contains(out, "shown only now") {
		t.Errorf("create prints the secret once:\n%s", out)
	}
	if out := e.mustWebhook("list"); !strings.Contains(out, ep.ID) || !strings.Contains(out, "payout.completed,payout.failed,payout.cancelled") {
		t.Errorf("list:\n%s", out)
	}
	if out := e.mustWebhook("get", ep.ID); strings.Contains(out, "secret") || !strings.Contains(out, "http://127.0.0.1:9/hook") {
		t.Errorf("get (no secret):\n%s", out)
	}
	if out := e.mustWebhook("update", ep.ID, "--disable", "--description", "paused"); !strings.Contains(out, "disabled (disabled_by_user)") || !strings.Contains(out, "paused") {
		t.Errorf("update --disable:\n%s", out)
	}
	if out := e.mustWebhook("update", ep.ID, "--enable", "--event", "*"); strings.Contains(out, "disabled") || !strings.Contains(out, "events:       *") {
		t.Errorf("update --enable:\n%s", out)
	}
	out = e.mustWebhook("rotate-secret", ep.ID)
	if !strings.Contains(out, "secret:") || strings.Contains(out, ep.Secret) {
		t.Errorf("rotate-secret prints a new secret:\n%s", out)
	}
	payout := e.createJSON("--asset", "SUSD", "--amount", "1.5")
	evs, err := e.db.ListEvents(context.Background(), 0, 10)
	if err != nil || len(evs) != 1 || evs[0].ObjectID != payout["id"] {
		t.Fatalf("events %v, %v", evs, err)
	}
	if out := e.mustWebhook("redeliver", evs[0].ID, "--endpoint", ep.ID); !strings.Contains(out, evs[0].ID) || !strings.Contains(out, "pending") {
		t.Errorf("redeliver:\n%s", out)
	}
	if out := e.mustWebhook("deliveries", ep.ID); !strings.Contains(out, "payout.created") || !strings.Contains(out, "pending") {
		t.Errorf("deliveries:\n%s", out)
	}
	var log struct {
		Data []struct{ ID string }
	}
	if err := json.Unmarshal([]byte(e.mustWebhook("deliveries", ep.ID, "--json")), &log); err != nil || len(log.Data) != 1 {
		t.Fatalf("deliveries --json: %+v, %v", log, err)
	}
	if out := e.mustWebhook("attempts", log.Data[0].ID); !strings.HasPrefix(out, "ATTEMPT") {
		t.Errorf("attempts:\n%s", out)
	}
	if out := e.mustWebhook("delete", ep.ID); !strings.Contains(out, "deleted "+ep.ID) {
		t.Errorf("delete: %s", out)
	}
	if _, err := e.webhook("get", ep.ID); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("get after delete: %v", err)
	}
}

func TestWebhookCommandErrorsNameTheFlag(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	tests := []struct {
		args  []string
		usage bool
		want  []string
	}{
		{[]string{"create", "--url", "http://127.0.0.1:9/", "--event", "payout.nope"}, true, []string{"-event", `"payout.nope"`, "payout.completed"}},
		{[]string{"create", "--url", "ftp://example.com/", "--event", "*"}, true, []string{"--url", `"ftp://example.com/"`}},
		{[]string{"create", "--event", "*"}, true, []string{"--url is required"}},
		{[]string{"create", "--url", "http://127.0.0.1:9/"}, true, []string{"--event is required"}},
		{[]string{"create", "--url", "http://u:p@127.0.0.1:9/", "--event", "*"}, false, []string{"invalid_webhook_url", "user name or password"}},
		{[]string{"update", "we_x"}, true, []string{"needs --url, --event"}},
		{[]string{"update", "we_x", "--enable", "--disable"}, true, []string{"--enable or --disable"}},
		{[]string{"list", "--limit", "0"}, true, []string{"--limit 0"}},
		{[]string{"get"}, true, []string{"an endpoint id"}},
		{[]string{"frobnicate"}, true, []string{`"frobnicate"`}},
	}
	for _, tc := range tests {
		_, err := e.webhook(tc.args...)
		if err == nil || errors.Is(err, errUsage) != tc.usage {
			t.Errorf("%v: %v (usage error %v, want %v)", tc.args, err, errors.Is(err, errUsage), tc.usage)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q does not say %q", tc.args, err, w)
			}
		}
	}
}
