package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/payout"
)

const webhookUsage = `Usage:
  sluice webhook create --url URL --event TYPE [--event TYPE]... [--description TEXT]
  sluice webhook list [--limit N] [--starting-after ID]
  sluice webhook get ID
  sluice webhook update ID [--url URL] [--event TYPE]... [--description TEXT] [--enable | --disable]
  sluice webhook delete ID
  sluice webhook rotate-secret ID
  sluice webhook deliveries ID [--limit N] [--starting-after ID]
  sluice webhook attempts DELIVERY_ID
  sluice webhook redeliver EVENT_ID [--endpoint ID]

An endpoint receives the events whose types it names (--event payout.completed,
repeatable or comma separated; --event '*' for all), POSTed with Standard
Webhooks headers and signed with its secret (whsec_…). The secret is printed
by create and rotate-secret only; after a rotation both secrets sign for 24
hours. Failed deliveries are retried for about 3 days; 'deliveries' shows
the log and 'redeliver' sends an event again.

Every subcommand takes --api-url, --api-key and --json (see 'sluice payout --help').
`

// runWebhook runs `sluice webhook …`.
func runWebhook(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: sluice webhook needs a subcommand: create, list, get, update, delete, rotate-secret, deliveries, attempts or redeliver\n\n%s", errUsage, webhookUsage)
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"create": webhookCreate, "list": webhookList, "get": webhookGet, "update": webhookUpdate,
		"delete": webhookDelete, "rotate-secret": webhookRotate, "deliveries": webhookDeliveries, "attempts": webhookAttempts, "redeliver": webhookRedeliver,
	}
	if f, ok := cmds[args[0]]; ok {
		return f(ctx, args[1:], stdout, stderr)
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		_, err := fmt.Fprint(stdout, webhookUsage)
		return err
	}
	return fmt.Errorf("%w: unknown subcommand %q of sluice webhook\n\n%s", errUsage, args[0], webhookUsage)
}

func webhookFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *apiFlags) {
	return apiFlagSet("webhook "+name, webhookUsage, stderr)
}

// eventTypeFlags collects --event values, each an event type or "*".
type eventTypeFlags []string

func (t *eventTypeFlags) String() string { return strings.Join(*t, ",") }

func (t *eventTypeFlags) Set(v string) error {
	for typ := range strings.SplitSeq(v, ",") {
		if typ != payout.AllEventTypes && !payout.KnownEventType(typ) {
			return fmt.Errorf("%q is not an event type; types are %s, or '*' for all", typ, strings.Join(payout.EventTypes(), ", "))
		}
		*t = append(*t, typ)
	}
	return nil
}

// urlFlag checks --url before any request is made.
func checkURLFlag(u string) error {
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return fmt.Errorf("%w: --url %q: must be an http:// or https:// URL", errUsage, u)
	}
	return nil
}

func webhookCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := webhookFlagSet("create", stderr)
	var p client.CreateWebhookEndpointParams
	fs.StringVar(&p.URL, "url", "", "the http(s) URL that receives events (required)")
	fs.Var((*eventTypeFlags)(&p.EnabledEvents), "event", "an event type to receive, or '*' (repeatable; required)")
	fs.StringVar(&p.Description, "description", "", "a note for people")
	if _, err := parseFlags(fs, args, 0, ""); err != nil {
		return helpOr(err)
	}
	if p.URL == "" {
		return fmt.Errorf("%w: --url is required", errUsage)
	}
	if err := checkURLFlag(p.URL); err != nil {
		return err
	}
	if len(p.EnabledEvents) == 0 {
		return fmt.Errorf("%w: --event is required: an event type such as payout.completed, or '*' for all", errUsage)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	e, err := c.CreateWebhookEndpoint(ctx, p)
	if err != nil {
		return err
	}
	return printEndpoint(stdout, af.json, e)
}

func webhookList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := webhookFlagSet("list", stderr)
	var p client.PageParams
	fs.IntVar(&p.Limit, "limit", 20, "page size, 1 to 100")
	fs.StringVar(&p.StartingAfter, "starting-after", "", "endpoints older than this id")
	if _, err := parseFlags(fs, args, 0, ""); err != nil {
		return helpOr(err)
	}
	if p.Limit < 1 || p.Limit > 100 {
		return fmt.Errorf("%w: --limit %d: must be from 1 to 100", errUsage, p.Limit)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	l, err := c.ListWebhookEndpoints(ctx, p)
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, l)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tURL\tEVENTS")
	for _, e := range l.Data {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.ID, endpointStatus(&e), e.URL, strings.Join(e.EnabledEvents, ","))
	}
	if l.HasMore && len(l.Data) > 0 {
		fmt.Fprintf(tw, "(more: --starting-after %s)\n", l.Data[len(l.Data)-1].ID)
	}
	return tw.Flush()
}

// oneEndpoint runs a subcommand that takes an endpoint id and prints the
// endpoint it gets back.
func oneEndpoint(ctx context.Context, name string, args []string, stdout, stderr io.Writer,
	call func(ctx context.Context, c *client.Client, id string) (*client.WebhookEndpoint, error)) error {
	fs, af := webhookFlagSet(name, stderr)
	pos, err := parseFlags(fs, args, 1, "an endpoint id (we_…)")
	if err != nil {
		return helpOr(err)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	e, err := call(ctx, c, pos[0])
	if err != nil {
		return err
	}
	return printEndpoint(stdout, af.json, e)
}

func webhookGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return oneEndpoint(ctx, "get", args, stdout, stderr, func(ctx context.Context, c *client.Client, id string) (*client.WebhookEndpoint, error) {
		return c.GetWebhookEndpoint(ctx, id)
	})
}

func webhookRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return oneEndpoint(ctx, "rotate-secret", args, stdout, stderr, func(ctx context.Context, c *client.Client, id string) (*client.WebhookEndpoint, error) {
		return c.RotateWebhookSecret(ctx, id)
	})
}

func webhookUpdate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := webhookFlagSet("update", stderr)
	var (
		p                client.UpdateWebhookEndpointParams
		url, description string
		enable, disable  bool
	)
	fs.StringVar(&url, "url", "", "a new URL")
	fs.Var((*eventTypeFlags)(&p.EnabledEvents), "event", "the event types to receive from now on (repeatable)")
	fs.StringVar(&description, "description", "", "a new description")
	fs.BoolVar(&enable, "enable", false, "enable the endpoint (its pending deliveries go out)")
	fs.BoolVar(&disable, "disable", false, "disable the endpoint")
	pos, err := parseFlags(fs, args, 1, "an endpoint id (we_…)")
	if err != nil {
		return helpOr(err)
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "url":
			p.URL = &url
		case "description":
			p.Description = &description
		}
	})
	switch {
	case enable && disable:
		return fmt.Errorf("%w: use --enable or --disable, not both", errUsage)
	case enable || disable:
		p.Enabled = &enable
	}
	if p.URL != nil {
		if err := checkURLFlag(url); err != nil {
			return err
		}
	}
	if p.URL == nil && p.Description == nil && p.Enabled == nil && p.EnabledEvents == nil {
		return fmt.Errorf("%w: sluice webhook update needs --url, --event, --description, --enable or --disable", errUsage)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	e, err := c.UpdateWebhookEndpoint(ctx, pos[0], p)
	if err != nil {
		return err
	}
	return printEndpoint(stdout, af.json, e)
}

func webhookDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := webhookFlagSet("delete", stderr)
	pos, err := parseFlags(fs, args, 1, "an endpoint id (we_…)")
	if err != nil {
		return helpOr(err)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	if err := c.DeleteWebhookEndpoint(ctx, pos[0]); err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, map[string]any{"id": pos[0], "deleted": true})
	}
	_, err = fmt.Fprintf(stdout, "deleted %s\n", pos[0])
	return err
}

func webhookDeliveries(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := webhookFlagSet("deliveries", stderr)
	var p client.PageParams
	fs.IntVar(&p.Limit, "limit", 20, "page size, 1 to 100")
	fs.StringVar(&p.StartingAfter, "starting-after", "", "deliveries older than this delivery id")
	pos, err := parseFlags(fs, args, 1, "an endpoint id (we_…)")
	if err != nil {
		return helpOr(err)
	}
	if p.Limit < 1 || p.Limit > 100 {
		return fmt.Errorf("%w: --limit %d: must be from 1 to 100", errUsage, p.Limit)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	l, err := c.ListWebhookDeliveries(ctx, pos[0], p)
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, l)
	}
	return printDeliveries(stdout, l.Data, l.HasMore)
}

func webhookAttempts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := webhookFlagSet("attempts", stderr)
	pos, err := parseFlags(fs, args, 1, "a delivery id (wd_…)")
	if err != nil {
		return helpOr(err)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	as, err := c.ListWebhookAttempts(ctx, pos[0])
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, as)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ATTEMPT	AT	STATUS	ERROR	MS")
	for _, a := range as {
		status, why := "-", "-"
		if a.StatusCode != 0 {
			status = fmt.Sprint(a.StatusCode)
		}
		if a.Error != "" {
			why = a.Error
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.1f\n", a.Attempt, a.AttemptedAt.UTC().Format(time.RFC3339), status, why, a.DurationMS)
	}
	return tw.Flush()
}

func webhookRedeliver(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := webhookFlagSet("redeliver", stderr)
	var endpoint string
	fs.StringVar(&endpoint, "endpoint", "", "only to this endpoint (default: every matching one)")
	pos, err := parseFlags(fs, args, 1, "an event id (evt_…)")
	if err != nil {
		return helpOr(err)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	ds, err := c.RedeliverEvent(ctx, pos[0], endpoint)
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, ds)
	}
	return printDeliveries(stdout, ds, false)
}

func endpointStatus(e *client.WebhookEndpoint) string {
	if e.DisabledReason != "" {
		return e.Status + " (" + e.DisabledReason + ")"
	}
	return e.Status
}

func printEndpoint(w io.Writer, jsonOut bool, e *client.WebhookEndpoint) error {
	if jsonOut {
		return writeJSONOut(w, e)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "id:\t%s\nurl:\t%s\nevents:\t%s\nstatus:\t%s\n", e.ID, e.URL, strings.Join(e.EnabledEvents, ", "), endpointStatus(e))
	if e.Description != "" {
		fmt.Fprintf(tw, "description:\t%s\n", e.Description)
	}
	fmt.Fprintf(tw, "created_at:\t%s\n", e.CreatedAt.UTC().Format(time.RFC3339))
	if e.Secret != "" {
		fmt.Fprintf(tw, "secret:\t%s\t(shown only now: store it with the receiver)\n", e.Secret)
	}
	return tw.Flush()
}

func printDeliveries(w io.Writer, ds []client.WebhookDelivery, more bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEVENT\tTYPE\tSTATUS\tATTEMPTS\tLAST\tNEXT")
	for _, d := range ds {
		last := "-"
		if d.LastAttemptAt != nil {
			last = fmt.Sprintf("%d", d.LastStatusCode)
			if d.LastError != "" {
				last = d.LastError
			}
		}
		next := "-"
		if d.NextAttemptAt != nil {
			next = d.NextAttemptAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.EventID, d.EventType, d.Status, d.Attempts, last, next)
	}
	if more && len(ds) > 0 {
		fmt.Fprintf(tw, "(more: --starting-after %s)\n", ds[len(ds)-1].ID)
	}
	return tw.Flush()
}
