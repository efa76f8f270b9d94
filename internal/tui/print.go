package tui

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Print writes snap as a plain table: a header naming the store, then one
// line per series with its name, labels and value (exact, as the
// exposition of snap.Client writes it), the columns padded to the widest
// cell in terminal cells (a wide character takes two). It is what top
// prints when its output is not a terminal (Table.Print streams the same).
func Print(w io.Writer, snap *Snapshot) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# %s · read %s in %s\n", safeText(snap.Store), snap.Time.Format("2006-01-02 15:04:05"), roundDuration(snap.Took))
	fmt.Fprintf(bw, "# shards %d · %s · series %d · samples %d\n", snap.Shards, pidSummary(snap.PIDs), len(snap.Series), snap.Samples)
	for _, p := range snap.Problems {
		fmt.Fprintf(bw, "# skipped: %s\n", safeText(p))
	}
	rows := [][2]string{{"NAME", "LABELS"}}
	for i := range snap.Series {
		rows = append(rows, [2]string{safeText(snap.Series[i].Name), snap.Series[i].LabelText})
	}
	var widths [2]int
	for _, r := range rows {
		for c := range r {
			widths[c] = max(widths[c], textWidth([]byte(r[c])))
		}
	}
	const padding = 2
	for i, r := range rows {
		for c := range r {
			bw.WriteString(r[c])
			bw.WriteString(strings.Repeat(" ", widths[c]+padding-textWidth([]byte(r[c]))))
		}
		if i == 0 {
			bw.WriteString("VALUE\n")
			continue
		}
		bw.WriteString(snap.Client.FloatToGoString(snap.Series[i-1].Value))
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}
