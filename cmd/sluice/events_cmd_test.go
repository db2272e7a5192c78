package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// events runs `sluice events ARGS` against the env's API.
func (e *cliEnv) events(args ...string) (string, error) {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	err := runEvents(context.Background(), append(args, e.base...), &stdout, &stderr)
	return stdout.String(), err
}

func TestEventsCommands(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	a := e.createJSON("--asset", "ETH", "--amount", "0.5")
	e.createJSON("--asset", "SUSD", "--amount", "2")
	e.mustRun("cancel", a["id"].(string))

	out, err := e.events("list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "payout.cancelled") || !strings.Contains(lines[1], "cancelled 500000000000000000 ETH") {
		t.Fatalf("list:\n%s", out)
	}

	out, err = e.events("list", "--type", "payout.created", "--limit", "1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Data []struct {
			ID, Type string
		} `json:"data"`
		HasMore bool `json:"has_more"`
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Data) != 1 || page.Data[0].Type != "payout.created" || !page.HasMore {
		t.Fatalf("list --json: %v\n%s", err, out)
	}

	out, err = e.events("get", page.Data[0].ID)
	if err != nil || !strings.Contains(out, "type:        payout.created") || !strings.Contains(out, `"object": "payout"`) {
		t.Fatalf("get: %v\n%s", err, out)
	}

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "--type", "payout.paid"}, `"payout.paid" is not an event type`},
		{[]string{"list", "--limit", "500"}, "--limit 500"},
		{[]string{"list", "--starting-after", "evt_a", "--ending-before", "evt_b"}, "not both"},
		{[]string{"get"}, "needs an event id"},
		{[]string{"tail", "--type", "nope"}, `"nope" is not an event type`},
		{[]string{"frob"}, `unknown subcommand "frob"`},
	} {
		_, err := e.events(bad.args...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("events %v: %v; want a usage error naming %s", bad.args, err, bad.want)
		}
	}
	if _, err := e.events("get", "evt_missing"); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("get of an unknown event: %v", err)
	}
}

func TestEventsTail(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	first := e.createJSON("--asset", "ETH", "--amount", "1")
	out, err := e.events("list", "--limit", "1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Data []struct{ ID string } `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := runEvents(ctx, append([]string{"tail", "--json", "--after", page.Data[0].ID}, e.base...), pw, io.Discard)
		_ = pw.CloseWithError(err)
		done <- err
	}()
	second := e.createJSON("--asset", "SUSD", "--amount", "3")
	e.mustRun("cancel", first["id"].(string))

	rd := bufio.NewScanner(pr)
	var got []string
	for len(got) < 2 && rd.Scan() {
		var ev struct {
			Type     string `json:"type"`
			ObjectID string `json:"object_id"`
		}
		if err := json.Unmarshal(rd.Bytes(), &ev); err != nil {
			t.Fatalf("tail --json line %q: %v", rd.Text(), err)
		}
		got = append(got, ev.Type+" "+ev.ObjectID)
	}
	want := []string{"payout.created " + second["id"].(string), "payout.cancelled " + first["id"].(string)}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("tail printed %v, want %v", got, want)
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("tail ended with %v", err)
	}
}
