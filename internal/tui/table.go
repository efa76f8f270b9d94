package tui

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/store"
)

// Table is one read of a store made for printing (top --once): the
// snapshot's facts and the engine's families, without the per-process
// breakdowns that only the interactive view shows.
type Table struct {
	// Snapshot holds the read's facts (store, time, shards, pids,
	// problems); its Series are left empty.
	Snapshot *Snapshot
	fams     []aggregate.Family
	series   int
}

// ReadTable reads st once, as a Source made with opts does, for Print.
func ReadTable(ctx context.Context, st store.Store, opts SourceOptions) (*Table, error) {
	src := NewStoreSource(st, opts).(*storeSource)
	snap, fams, err := src.read(ctx, aggregate.NewFor(opts.PythonClient))
	if err != nil {
		return nil, err
	}
	n := 0
	for i := range fams {
		n += len(fams[i].Samples)
	}
	return &Table{Snapshot: snap, fams: fams, series: n}, nil
}

// Series is how many series the table holds.
func (t *Table) Series() int { return t.series }

// Print writes the table as Print writes a snapshot of the same read,
// byte for byte, but row by row as it goes: the label texts are made and
// the columns measured first, then each row is written through a buffer
// (a tabwriter would hold every cell of 170,000 rows until the end, and
// measures runes, not cells).
func (t *Table) Print(w io.Writer) error {
	snap := t.Snapshot
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, "# %s · read %s in %s\n", safeText(snap.Store), snap.Time.Format("2006-01-02 15:04:05"), roundDuration(snap.Took))
	fmt.Fprintf(bw, "# shards %d · %s · series %d · samples %d\n", snap.Shards, pidSummary(snap.PIDs), t.series, snap.Samples)
	for _, p := range snap.Problems {
		fmt.Fprintf(bw, "# skipped: %s\n", safeText(p))
	}
	// The label texts, end to end, and the widths of the columns.
	var texts []byte
	ends := make([]int, 0, t.series)
	nameW, labelW := len("NAME"), len("LABELS")
	for i := range t.fams {
		for j := range t.fams[i].Samples {
			s := &t.fams[i].Samples[j]
			nameW = max(nameW, textWidth([]byte(safeText(s.Name))))
			start := len(texts)
			texts = appendLabelText(texts, s.Labels)
			labelW = max(labelW, textWidth(texts[start:]))
			ends = append(ends, len(texts))
		}
	}
	const padding = 2 // as Print
	var row []byte
	cell := func(text []byte, width int) {
		row = append(row, text...)
		for n := textWidth(text); n < width+padding; n++ {
			row = append(row, ' ')
		}
	}
	cell([]byte("NAME"), nameW)
	cell([]byte("LABELS"), labelW)
	row = append(row, "VALUE\n"...)
	start, k := 0, 0
	for i := range t.fams {
		for j := range t.fams[i].Samples {
			s := &t.fams[i].Samples[j]
			cell([]byte(safeText(s.Name)), nameW)
			cell(texts[start:ends[k]], labelW)
			row = append(row, snap.Client.FloatToGoString(s.Value)...)
			row = append(row, '\n')
			start = ends[k]
			k++
			if len(row) >= 32<<10 {
				if _, err := bw.Write(row); err != nil {
					return fmt.Errorf("write snapshot: %w", err)
				}
				row = row[:0]
			}
		}
	}
	bw.Write(row)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// textWidth is how many terminal cells text takes: a wide character (日,
// 🚀) two, a combining one none. Columns padded by runes instead stood
// out of line by a cell for each wide character of a row.
func textWidth(text []byte) int {
	for _, c := range text {
		if c >= utf8.RuneSelf {
			return ansi.StringWidth(string(text))
		}
	}
	return len(text)
}

// appendLabelText appends labelText(ls) to b.
func appendLabelText(b []byte, ls []store.Label) []byte {
	if len(ls) == 0 {
		return b
	}
	b = append(b, '{')
	for i, l := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSafe(b, l.Name)
		b = append(b, `="`...)
		b = appendSafe(b, l.Value)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendSafe appends s as writeSafe writes it.
func appendSafe(b []byte, s string) []byte {
	for _, r := range s {
		switch {
		case r == '\\':
			b = append(b, `\\`...)
		case r == '"':
			b = append(b, `\"`...)
		case r == '\n':
			b = append(b, `\n`...)
		case isControl(r):
			q := strconv.QuoteRuneToASCII(r)
			b = append(b, q[1:len(q)-1]...)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return b
}
