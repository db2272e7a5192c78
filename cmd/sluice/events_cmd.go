package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/payout"
)

const eventsUsage = `Usage:
  sluice events list [--type TYPE]... [--object ID] [--limit N] [--starting-after ID | --ending-before ID]
  sluice events get ID
  sluice events tail [--type TYPE]... [--after ID]

list prints events newest first (one page; --limit up to 100). To reconcile,
keep the newest event id you handled and list --ending-before it.

tail follows events as they happen (Server-Sent Events) until interrupted,
reconnecting by itself without losing or repeating one; --after resumes
after an event id, else it starts with the next event.

TYPE is an event type, e.g. payout.completed; --type may repeat.

Every subcommand takes:
  --api-url URL   the API (default $SLUICE_API_URL, else http://127.0.0.1:8080)
  --api-key KEY   the API key (default $SLUICE_API_KEY)
  --json          print JSON (tail: one event per line)
`

// runEvents runs `sluice events list|get|tail`.
func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: sluice events needs a subcommand: list, get or tail\n\n%s", errUsage, eventsUsage)
	}
	switch args[0] {
	case "list":
		return eventsList(ctx, args[1:], stdout, stderr)
	case "get":
		return eventsGet(ctx, args[1:], stdout, stderr)
	case "tail":
		return eventsTail(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, eventsUsage)
		return err
	default:
		return fmt.Errorf("%w: unknown subcommand %q of sluice events\n\n%s", errUsage, args[0], eventsUsage)
	}
}

// typeFlags collects repeated --type flags, each checked against the
// event catalogue so a typo is named before any request is made.
type typeFlags []string

func (t *typeFlags) String() string { return strings.Join(*t, ",") }

func (t *typeFlags) Set(v string) error {
	for typ := range strings.SplitSeq(v, ",") {
		if !payout.KnownEventType(typ) {
			return fmt.Errorf("%q is not an event type; types are %s", typ, strings.Join(payout.EventTypes(), ", "))
		}
		*t = append(*t, typ)
	}
	return nil
}

func eventsFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *apiFlags) {
	return apiFlagSet("events "+name, eventsUsage, stderr)
}

func eventsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := eventsFlagSet("list", stderr)
	var p client.ListEventsParams
	fs.Var((*typeFlags)(&p.Types), "type", "only events of this type (repeatable)")
	fs.StringVar(&p.ObjectID, "object", "", "only events about this object id")
	fs.IntVar(&p.Limit, "limit", 20, "page size, 1 to 100")
	fs.StringVar(&p.StartingAfter, "starting-after", "", "events older than this event id")
	fs.StringVar(&p.EndingBefore, "ending-before", "", "events newer than this event id")
	if _, err := parseFlags(fs, args, 0, ""); err != nil {
		return helpOr(err)
	}
	if p.Limit < 1 || p.Limit > 100 {
		return fmt.Errorf("%w: --limit %d: must be from 1 to 100", errUsage, p.Limit)
	}
	if p.StartingAfter != "" && p.EndingBefore != "" {
		return fmt.Errorf("%w: use --starting-after or --ending-before, not both", errUsage)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	page, err := c.ListEvents(ctx, p)
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, page)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CREATED\tTYPE\tOBJECT\tSEQ\tSUMMARY\tID")
	for i := range page.Data {
		e := &page.Data[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", e.CreatedAt.UTC().Format(time.RFC3339), e.Type, e.ObjectID, e.Sequence, eventSummary(e), e.ID)
	}
	if page.HasMore && len(page.Data) > 0 {
		next := "--starting-after " + page.Data[len(page.Data)-1].ID
		if p.EndingBefore != "" {
			next = "--ending-before " + page.Data[0].ID
		}
		fmt.Fprintf(tw, "(more: %s)\n", next)
	}
	return tw.Flush()
}

func eventsGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := eventsFlagSet("get", stderr)
	pos, err := parseFlags(fs, args, 1, "an event id (evt_…)")
	if err != nil {
		return helpOr(err)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	e, err := c.GetEvent(ctx, pos[0])
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, e)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "id:\t%s\ntype:\t%s\ncreated_at:\t%s\nobject:\t%s (change %d)\nsummary:\t%s\n",
		e.ID, e.Type, e.CreatedAt.UTC().Format(time.RFC3339Nano), e.ObjectID, e.Sequence, eventSummary(e))
	if err := tw.Flush(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(e.Data, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "data:\n%s\n", data)
	return err
}

func eventsTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := eventsFlagSet("tail", stderr)
	var p client.StreamParams
	fs.Var((*typeFlags)(&p.Types), "type", "only events of this type (repeatable)")
	fs.StringVar(&p.LastEventID, "after", "", "resume after this event id")
	if _, err := parseFlags(fs, args, 0, ""); err != nil {
		return helpOr(err)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	if !af.json {
		fmt.Fprintln(stderr, "following events; Ctrl-C stops")
	}
	enc := json.NewEncoder(stdout)
	for e, err := range c.StreamEvents(ctx, p) {
		if err != nil {
			return err
		}
		if af.json {
			if err := enc.Encode(e); err != nil {
				return err
			}
			continue
		}
		if _, err := fmt.Fprintf(stdout, "%s  %-26s %s #%d  %s  %s\n", e.CreatedAt.UTC().Format(time.RFC3339),
			e.Type, e.ObjectID, e.Sequence, eventSummary(e), e.ID); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// eventSummary is one line saying what an event means: for a payout, its
// status, amount and asset, and the reason or transaction where there is one.
func eventSummary(e *client.Event) string {
	p, err := e.Payout()
	if err != nil {
		return "-"
	}
	s := fmt.Sprintf("%s %s %s", p.Status, p.Amount, p.Asset)
	switch {
	case p.FailureCode != "":
		s += " " + p.FailureCode
	case p.StatusReason != "":
		s += " " + p.StatusReason
	case p.TxHash != "":
		s += " tx " + p.TxHash
	}
	return s
}
