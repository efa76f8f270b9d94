package tui

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Print writes snap as a plain table: a header naming the store, then one
// line per series with its name, labels and value (exact, as the
// exposition of snap.Client writes it). It is what top prints when its output is not a
// terminal.
func Print(w io.Writer, snap *Snapshot) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "# %s · read %s in %s\n", safeText(snap.Store), snap.Time.Format("2006-01-02 15:04:05"), roundDuration(snap.Took))
	fmt.Fprintf(tw, "# shards %d · %s · series %d · samples %d\n", snap.Shards, pidSummary(snap.PIDs), len(snap.Series), snap.Samples)
	for _, p := range snap.Problems {
		fmt.Fprintf(tw, "# skipped: %s\n", safeText(p))
	}
	fmt.Fprintln(tw, "NAME\tLABELS\tVALUE")
	for i := range snap.Series {
		sr := &snap.Series[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\n", safeText(sr.Name), sr.LabelText, snap.Client.FloatToGoString(sr.Value))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}
