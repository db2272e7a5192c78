package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/sluicepay/sluice/client"
	"github.com/sluicepay/sluice/internal/policy"
)

const listsUsage = `Usage:
  sluice lists import --name NAME --kind deny|allow [--sanctions] FILE
  sluice lists add --name NAME ADDRESS...
  sluice lists list

import loads FILE into the list NAME, creating it when missing, so that
the list holds exactly FILE's addresses, and reports what was added and
removed. FILE is OFAC's SDN advanced XML (its "Digital Currency Address -
<TICKER>" features whose value is an EVM address; others, e.g. XBT, are
counted and skipped), or a plain list: one 0x address a line, "#" starting
a comment. A list created from SDN XML (or with --sanctions) is a sanctions
list: a payout to one of its addresses is refused with
sanctioned_destination; other deny lists answer denied_destination. Both
are hard denies, before any rule; an allow list sets the allow_listed fact.
add adds addresses to a list; list shows the lists. All go through the API
(admin scope) and are audited.

Flags:
  --api-url URL   the API (default $SLUICE_API_URL, else http://127.0.0.1:8080)
  --api-key KEY   the API key (default $SLUICE_API_KEY; prefer the variable)
  --json          print JSON instead of text
`

// runLists runs `sluice lists …`.
func runLists(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, listsUsage)
		return fmt.Errorf("%w: sluice lists needs import, add or list", errUsage)
	}
	switch args[0] {
	case "import":
		return listsImport(ctx, args[1:], stdout, stderr)
	case "add":
		return listsAdd(ctx, args[1:], stdout, stderr)
	case "list":
		return listsList(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, listsUsage)
		return err
	}
	return fmt.Errorf("%w: unknown lists command %q (import, add, list)", errUsage, args[0])
}

// maxImport keeps one import within the API's 1 MiB body (an address
// takes about 45 bytes of JSON).
const maxImport = 20000

func listsImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := apiFlagSet("lists import", listsUsage, stderr)
	name := fs.String("name", "", "the list (created when missing)")
	kind := fs.String("kind", "deny", "deny or allow, when the list is created")
	sanctions := fs.Bool("sanctions", false, "a sanctions list, when created (SDN XML always is)")
	pos, err := parseFlags(fs, args, 1, "a FILE to import")
	if err != nil {
		return helpOr(err)
	}
	if *name == "" || (*kind != "deny" && *kind != "allow") {
		return fmt.Errorf("%w: sluice lists import needs --name and --kind deny|allow", errUsage)
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	lf, err := policy.ReadList(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	if len(lf.Entries) > maxImport {
		return fmt.Errorf("%s: %d addresses; one import takes at most %d", pos[0], len(lf.Entries), maxImport)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	created := false
	_, err = c.CreateList(ctx, client.CreateListParams{Name: *name, Kind: *kind, Sanctions: *sanctions || lf.SDN})
	switch {
	case client.ErrorCode(err) == "list_exists":
	case err != nil:
		return err
	default:
		created = true
	}
	addrs := make([]string, len(lf.Entries))
	for i, e := range lf.Entries {
		addrs[i] = e.Address.Hex()
	}
	note := "imported from " + pos[0]
	ch, err := c.AddListEntries(ctx, *name, client.ListEntriesParams{Addresses: addrs, Replace: true, Note: note})
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, map[string]any{"list": ch.List, "created": created, "sdn": lf.SDN,
			"skipped_non_evm": lf.Skipped, "added": ch.Added, "removed": ch.Removed})
	}
	verb := "Updated"
	if created {
		verb = "Created"
	}
	fmt.Fprintf(stdout, "%s %s list %q: %d address(es), %d added, %d removed", verb, ch.List.Kind, *name, ch.List.Entries, len(ch.Added), len(ch.Removed))
	if lf.SDN {
		fmt.Fprintf(stdout, " (OFAC SDN; %d non-EVM address(es) skipped)", lf.Skipped)
	}
	fmt.Fprintln(stdout)
	for _, a := range ch.Added {
		fmt.Fprintln(stdout, "  +", a)
	}
	for _, a := range ch.Removed {
		fmt.Fprintln(stdout, "  -", a)
	}
	return nil
}

func listsAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := apiFlagSet("lists add", listsUsage, stderr)
	name := fs.String("name", "", "the list")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return helpOr(fmt.Errorf("%w: %v", errUsage, err))
	}
	if *name == "" || len(pos) == 0 {
		return fmt.Errorf("%w: sluice lists add needs --name and addresses", errUsage)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	ch, err := c.AddListEntries(ctx, *name, client.ListEntriesParams{Addresses: pos})
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, ch)
	}
	_, err = fmt.Fprintf(stdout, "List %q: %d added; %d address(es) in all.\n", *name, len(ch.Added), ch.List.Entries)
	return err
}

func listsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := apiFlagSet("lists list", listsUsage, stderr)
	if _, err := parseFlags(fs, args, 0, ""); err != nil {
		return helpOr(err)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	page, err := c.ListLists(ctx)
	if err != nil {
		return err
	}
	if af.json {
		return writeJSONOut(stdout, page)
	}
	if len(page.Data) == 0 {
		_, err := fmt.Fprintln(stdout, "No lists.")
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSANCTIONS\tENTRIES\tUPDATED")
	for _, l := range page.Data {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%s\n", l.Name, l.Kind, l.Sanctions, l.Entries, l.UpdatedAt.Format("2006-01-02 15:04:05Z07:00"))
	}
	return tw.Flush()
}
