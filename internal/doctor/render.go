package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable writes the report as a CHECK / STATUS / DETAIL table, with the
// advice of each WARN and FAIL under its line, and a summary.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tDETAIL")
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", x.Check, x.Status, x.Detail)
		if x.Advice != "" {
			fmt.Fprintf(tw, "\t\t-> %s\n", x.Advice)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var warns, fails int
	for _, x := range r.Results {
		switch x.Status {
		case Warn:
			warns++
		case Fail:
			fails++
		}
	}
	_, err := fmt.Fprintf(w, "\n%s: %d checks, %d warnings, %d failures\n", r.Status, len(r.Results), warns, fails)
	return err
}

// WriteJSON writes the report as one indented JSON object.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
