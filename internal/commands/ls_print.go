package commands

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/promstore/promstore/internal/store"
)

// lsJSON writes ls's JSON document: the store, its shards, their totals,
// the problems of what is no shard and the cleanup barrier's path when
// there is one.
func lsJSON(w io.Writer, storeName string, rows []lsRow, tot lsTotals, problems []string, barrier string) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Store    string   `json:"store"`
		Shards   []lsRow  `json:"shards"`
		Totals   lsTotals `json:"totals"`
		Problems []string `json:"problems"`
		// Barrier is the cleanup barrier's path when there is one.
		Barrier string `json:"cleanup_barrier,omitempty"`
	}{storeName, rows, tot, problems, barrier})
}

func lsLayout(l int) string {
	if l == 0 {
		return "-"
	}
	return strconv.Itoa(l)
}

func lsTSV(w io.Writer, rows []lsRow) error {
	var b bytes.Buffer
	b.WriteString("name\tkind\tmode\tpid\talive\tsamples\tbytes\tlayout\tupdated\tproblems\tallocated\tused\n")
	for _, r := range rows {
		upd := ""
		if !r.Updated.IsZero() {
			upd = r.Updated.UTC().Format(time.RFC3339Nano)
		}
		fields := []string{r.Name, r.Kind, r.Mode, r.PID, r.Alive, strconv.Itoa(r.Samples),
			strconv.FormatInt(r.Bytes, 10), lsLayout(r.Layout), upd, strings.Join(r.Problems, "; "),
			strconv.FormatInt(r.Allocated, 10), strconv.FormatInt(r.Used, 10)}
		for i, f := range fields {
			if i > 0 {
				b.WriteByte('\t')
			}
			b.WriteString(tsvField(f))
		}
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

// lsSize prints a shard's size, and the disk space it takes when that is
// less (a sparse file: Python grows shards by making holes).
func lsSize(r lsRow) string {
	if r.Allocated > 0 && r.Allocated < r.Bytes {
		return formatBytes(r.Bytes) + " (" + formatBytes(r.Allocated) + " on disk)"
	}
	return formatBytes(r.Bytes)
}

// lsTable lays the rows out with text/tabwriter and, when Out is a
// terminal, colours whole lines afterwards (so escape codes never upset
// the column widths): the header bold, rows with problems yellow, rows of
// dead pids faint.
func lsTable(io *IOStreams, rows []lsRow, tot lsTotals, now time.Time) error {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tMODE\tPID\tALIVE\tSAMPLES\tBYTES\tLAYOUT\tUPDATED\tPROBLEMS")
	for _, r := range rows {
		kind, mode := r.Kind, r.Mode
		if kind == "" {
			kind = r.Name
		}
		if mode == "" {
			mode = "-"
		}
		probs := "-"
		if len(r.Problems) > 0 {
			probs = strings.Join(r.Problems, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", tableCell(kind), mode, tableCell(r.PID), r.Alive,
			r.Samples, lsSize(r), lsLayout(r.Layout), formatAge(now, r.Updated), tableCell(probs))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(b.String(), "\n")
	cs := io.ColorScheme()
	var out strings.Builder
	for i, l := range lines {
		if l == "" {
			continue
		}
		text := strings.TrimSuffix(l, "\n")
		switch {
		case i == 0:
			text = cs.Bold(text)
		case len(rows[i-1].Problems) > 0:
			text = cs.Warn(text)
		case rows[i-1].Alive == string(store.AliveNo):
			text = cs.Faint(text)
		}
		out.WriteString(text)
		out.WriteByte('\n')
	}
	fmt.Fprintf(&out, "total: %d shards, %d pids (%d alive, %d dead, %d unknown)", tot.Shards, tot.PIDs, tot.Alive, tot.Dead, tot.Unknown)
	if tot.Archives > 0 {
		fmt.Fprintf(&out, " + %d archive shards of dead processes", tot.Archives)
	}
	fmt.Fprintf(&out, ", %d samples, %s", tot.Samples, formatBytes(tot.Bytes))
	if tot.Allocated > 0 && tot.Allocated < tot.Bytes {
		// As the rows show it: Python's shards are sparse files.
		fmt.Fprintf(&out, " (%s on disk)", formatBytes(tot.Allocated))
	}
	if tot.Problems > 0 {
		fmt.Fprintf(&out, ", %d with problems", tot.Problems)
	}
	out.WriteByte('\n')
	_, err := io.Out.Write([]byte(out.String()))
	return err
}

// lsArchive is the ALIVE cell of an archive shard: cleanup's merge of
// dead processes, not a process of its own.
const lsArchive = "archive"
