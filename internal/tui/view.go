package tui

import (
	"fmt"
	"math"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/store"
)

// Layout of the main table.
const (
	markerW = 2
	valueW  = 12
	rateW   = 10
	maxSpkW = 30
)

// View renders the current view at the current size.
func (m Model) View() string {
	if m.width <= 0 || m.height <= 0 {
		return ""
	}
	lines := make([]string, 0, m.height)
	lines = append(lines, m.titleLine(), m.statsLine(), m.statusLine())
	switch m.view {
	case viewBreakdown:
		lines = append(lines, m.breakdownLines()...)
	case viewHistogram:
		lines = append(lines, m.histogramLines()...)
	case viewSkipped:
		lines = append(lines, m.skippedLines()...)
	default:
		lines = append(lines, m.tableLines()...)
	}
	helpLines := strings.Split(m.help.View(m.keys), "\n")
	for len(lines)+len(helpLines) < m.height {
		lines = append(lines, "")
	}
	lines = append(lines[:min(len(lines), max(m.height-len(helpLines), 0))], helpLines...)
	if len(lines) > m.height {
		lines = lines[:m.height]
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > m.width {
			lines[i] = ansi.Truncate(l, m.width, "…")
		}
	}
	return strings.Join(lines, "\n")
}

func (m *Model) helpHeight() int {
	if m.help.ShowAll {
		return m.fullHelpH
	}
	return 1
}

// tableHeight is the number of series rows the main view shows.
func (m *Model) tableHeight() int {
	return m.height - 4 - m.helpHeight()
}

// detailHeight is the number of rows the breakdown and histogram views
// show.
func (m *Model) detailHeight() int {
	return max(m.height-4-m.helpHeight()-max(len(m.detailTitle()), 1)-max(len(m.histogramSummary()), 1), 1)
}

// maxTitleLines bounds the lines a detail view's series title takes.
const maxTitleLines = 3

// detailTitle is the breakdown or histogram view's title line(s): the
// series it shows, on as many lines as the width needs, up to
// maxTitleLines (the last cut with …); none in the other views. Cut to
// one line, the series of one family looked alike at 40 columns.
func (m *Model) detailTitle() []string {
	var text string
	switch {
	case m.view == viewHistogram && m.hist != nil:
		text = "▸ " + safeText(m.hist.Family) + m.hist.LabelText + "  histogram"
	case m.view == viewBreakdown && m.selected() != nil:
		sr := m.selected()
		text = "▸ " + safeText(sr.Name) + sr.LabelText + "  " + kindText(sr)
	default:
		return nil
	}
	if m.width <= 0 {
		return nil
	}
	lines := strings.Split(ansi.Hardwrap(text, m.width, true), "\n")
	if len(lines) > maxTitleLines {
		lines = lines[:maxTitleLines]
		lines[maxTitleLines-1] += "…" // fit cuts it to the width with …
	}
	for i, l := range lines {
		lines[i] = m.styles.Title.Render(fit(l, m.width))
	}
	return lines
}

// histogramSummary is the histogram view's count, sum, mean and estimated
// quantiles, on as many lines as the width needs, each item whole where it
// fits on a line (cut at the end of one line, at 40 columns the quantiles,
// what the view is for, were not seen at all); none outside the histogram
// view.
func (m *Model) histogramSummary() []string {
	h := m.hist
	if m.view != viewHistogram || h == nil {
		return nil
	}
	items := []string{"count " + formatValueW(h.Count, 0)} // exact, as dump prints them
	if h.HasSum {
		items = append(items, "sum "+formatValueW(h.Sum, 0))
		if h.Count > 0 {
			items = append(items, "mean "+formatEstimate(h.Sum/h.Count))
		}
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		items = append(items, fmt.Sprintf("p%g %s", q*100, formatEstimate(Quantile(q, h.Buckets))))
	}
	lines := []string{items[0]}
	for _, it := range items[1:] {
		if last := &lines[len(lines)-1]; ansi.StringWidth(*last+" · "+it) <= m.width {
			*last += " · " + it
			continue
		}
		lines = append(lines, it)
	}
	return lines
}

func (m *Model) detailLines() int {
	switch m.view {
	case viewHistogram:
		if m.hist != nil {
			return len(m.hist.Buckets)
		}
	case viewSkipped:
		return len(m.skippedRows())
	case viewBreakdown:
		if sr := m.selected(); sr != nil {
			n := len(sr.Contrib)
			if sr.Others > 0 {
				n++
			}
			return n
		}
	}
	return 0
}

func (m *Model) titleLine() string {
	left := "promstore top"
	if m.snap != nil {
		left += "  " + safeText(m.snap.Store)
	}
	var right []string
	if m.snap != nil {
		right = append(right, fmt.Sprintf("read %s in %s", m.snap.Time.Format("15:04:05"), roundDuration(m.snap.Took)))
	}
	if m.paused {
		right = append(right, "PAUSED")
	} else if m.reading {
		right = append(right, "reading…")
	}
	return m.styles.Title.Render(spread(left, strings.Join(right, " · "), m.width))
}

func (m *Model) statsLine() string {
	if m.snap == nil {
		return m.styles.Stats.Render(fit(fmt.Sprintf("every %s", m.interval), m.width))
	}
	s := m.snap
	shown := fmt.Sprintf("series %d", len(s.Series))
	if m.filterRE != nil {
		shown = fmt.Sprintf("series %d of %d", len(m.visible), len(s.Series))
	}
	line := fmt.Sprintf("shards %d · %s · %s · samples %d · every %s",
		s.Shards, pidSummary(s.PIDs), shown, s.Samples, m.interval)
	return m.styles.Stats.Render(fit(line, m.width))
}

// pidSummary counts processes by liveness.
func pidSummary(pids []PID) string {
	var live, dead, unknown int
	archive := false
	for _, p := range pids {
		if store.IsArchivePID(p.ID) {
			archive = true
			continue
		}
		switch p.Alive {
		case store.AliveYes:
			live++
		case store.AliveNo:
			dead++
		default:
			unknown++
		}
	}
	n := live + dead + unknown
	suffix := ""
	if archive {
		suffix = " + archive"
	}
	switch {
	case n == 0:
		return "pids 0" + suffix
	case unknown == n:
		return fmt.Sprintf("pids %d (liveness unknown)%s", n, suffix)
	case unknown > 0:
		return fmt.Sprintf("pids %d (%d live, %d dead, %d unknown)%s", n, live, dead, unknown, suffix)
	}
	return fmt.Sprintf("pids %d (%d live, %d dead)%s", n, live, dead, suffix)
}

func (m *Model) statusLine() string {
	if m.filtering {
		line := m.input.View()
		if m.filterErr != nil {
			line += "  " + m.styles.StatusError.Render(safeText(m.filterErr.Error()))
		}
		return line
	}
	var st string
	switch {
	case m.err != nil && m.snap != nil:
		st = m.styles.StatusError.Render(fit("✗ read failed (showing data read "+m.snap.Time.Format("15:04:05")+"): "+safeText(m.err.Error()), m.width))
	case m.err != nil:
		st = m.styles.StatusError.Render(fit("✗ read failed: "+safeText(m.err.Error()), m.width))
	case m.snap == nil:
		st = m.styles.Dim.Render("waiting for the first read…")
	case len(m.snap.Problems) > 0:
		msg := fmt.Sprintf("! %d shard(s) skipped (w: why): %s", len(m.snap.Problems), safeText(m.snap.Problems[0]))
		st = m.styles.StatusWarn.Render(fit(msg, m.width))
	case m.snap.Shards == 0:
		// An empty or mistyped directory, a prefix with no keys: every
		// other command warns about it too.
		st = m.styles.StatusWarn.Render(fit("! the store holds no shards (a mistyped directory or prefix?)", m.width))
	default:
		st = m.styles.StatusOK.Render("✓ read ok")
	}
	var extra []string
	if m.filterRE != nil {
		extra = append(extra, "filter /"+safeText(m.filterRE.String())+"/")
	}
	if m.note != "" {
		extra = append(extra, m.note)
	}
	if len(extra) > 0 && m.err == nil && (m.snap == nil || len(m.snap.Problems) == 0) {
		st += "  " + m.styles.Dim.Render(strings.Join(extra, " · "))
	}
	return st
}

// Below these widths the main table leaves out its history column, then
// its rate column, so that the series names keep some room (a narrow
// terminal, or a pane of a split one).
const (
	minSeriesW      = 24
	narrowSeriesW   = 20
	withHistoryW    = markerW + minSeriesW + valueW + rateW + 8 + 3
	withRateW       = markerW + narrowSeriesW + valueW + rateW + 2
	historyWideFrom = 120
)

// narrowDetailW is the width below which the per-process and histogram
// views narrow their columns.
const narrowDetailW = 50

// columns computes the widths of the main table; a rate or history
// width of 0 leaves that column out.
func (m *Model) columns() (seriesW, rateCol, sparkW int) {
	switch {
	case m.width >= withHistoryW:
		sparkW = maxSpkW
		if m.width < historyWideFrom {
			sparkW = min(max(m.width/6, 8), maxSpkW)
		}
		return max(m.width-markerW-valueW-rateW-sparkW-3, 8), rateW, sparkW
	case m.width >= withRateW:
		return m.width - markerW - valueW - rateW - 2, rateW, 0
	}
	return max(m.width-markerW-valueW-1, 8), 0, 0
}

func (m *Model) tableLines() []string {
	seriesW, rateCol, sparkW := m.columns()
	arrow := map[bool]string{false: "▲", true: "▼"}[m.desc]
	name, value, rate := "SERIES", "VALUE", "RATE/s"
	switch m.sortBy {
	case sortName:
		name += arrow
	case sortValue:
		value += arrow
	case sortRate:
		rate += arrow
	}
	hist := "HISTORY"
	if m.showRate {
		hist = "HISTORY /s"
	}
	// cols joins the cells after the series's, leaving out those of
	// width 0.
	cols := func(value, rate, hist string) []string {
		out := []string{fitRight(value, valueW)}
		if rateCol > 0 {
			out = append(out, fitRight(rate, rateCol))
		}
		if sparkW > 0 {
			out = append(out, fit(hist, sparkW))
		}
		return out
	}
	header := strings.Repeat(" ", markerW) + fit(name, seriesW) + " " + strings.Join(cols(value, rate, hist), " ")
	lines := []string{m.styles.ColumnHeader.Render(header)}
	h := m.tableHeight()
	if m.snap == nil || h <= 0 {
		return lines
	}
	if len(m.visible) == 0 && m.filterRE != nil {
		return append(lines, m.styles.Dim.Render("  no series match the filter"))
	}
	for i := m.offset; i < len(m.visible) && i < m.offset+h; i++ {
		idx := m.visible[i]
		sr := &m.snap.Series[idx]
		var spark string
		if st := m.series[sr.Key]; st != nil && sparkW > 0 {
			spark = sparkline(m.sparkValues(st, sr), sparkW)
		}
		nm := safeText(sr.Name)
		nameCell := fit(nm, seriesW)
		labelCell := ""
		if nw := ansi.StringWidth(nm); nw < seriesW {
			nameCell = nm
			labelCell = fit(sr.LabelText, seriesW-nw)
		}
		cells := cols(formatValue(sr.Value), formatRate(m.rates[idx]), spark)
		if i == m.cursor {
			lines = append(lines, m.styles.Selected.Render("▸ "+nameCell+labelCell+" "+strings.Join(cells, " ")))
			continue
		}
		line := "  " + m.styles.Name.Render(nameCell) + m.styles.Labels.Render(labelCell) + " " + m.styles.Value.Render(cells[0])
		for j, c := range cells[1:] {
			st := m.styles.Spark
			if j == 0 && rateCol > 0 {
				st = m.styles.Rate
			}
			line += " " + st.Render(c)
		}
		lines = append(lines, line)
	}
	return lines
}

func kindText(sr *Series) string {
	if sr.Mode != "" {
		return fmt.Sprintf("%s (%s)", sr.Type, sr.Mode)
	}
	return string(sr.Type)
}

func (m *Model) breakdownLines() []string {
	sr := m.selected()
	if sr == nil {
		return []string{m.styles.Dim.Render("the series is no longer in the store (esc: back)")}
	}
	st := m.series[sr.Key]
	summary := fmt.Sprintf("value %s", formatValueW(sr.Value, 0)) // exact, as dump prints it
	if r := m.rates[st.idx]; !math.IsNaN(r) {
		summary += fmt.Sprintf(" · rate %s/s", formatEstimate(r))
	}
	n := len(sr.Contrib) + sr.Others
	summary += fmt.Sprintf(" · %d process", n)
	if n != 1 {
		summary += "es"
	}
	additive := !math.IsNaN(sr.OthersValue) || sr.Others == 0 && aggregate.MergeOf(sr.Type, sr.Mode) == aggregate.MergeSum
	pidW, aliveW, shareW := 12, 8, 7
	if m.width < narrowDetailW {
		pidW, aliveW = 8, 5 // the share still fits in 40 columns
	}
	barW := min(max(m.width-markerW-pidW-aliveW-valueW-shareW-4, 0), 40)
	lines := append(m.detailTitle(),
		m.styles.Stats.Render(fit(summary, m.width)),
		m.styles.ColumnHeader.Render(strings.Repeat(" ", markerW)+fit("PID", pidW)+" "+fit("ALIVE", aliveW)+" "+
			fitRight("VALUE", valueW)+" "+fitRight("SHARE", shareW)+" "+fit("", barW)),
	)
	peak := 0.0
	for _, c := range sr.Contrib {
		if !math.IsNaN(c.Value) && !math.IsInf(c.Value, 0) {
			peak = math.Max(peak, math.Abs(c.Value))
		}
	}
	row := func(pid, alive string, v float64, drawBar bool) string {
		share := ""
		if additive && sr.Value != 0 && !math.IsNaN(v) && !math.IsInf(sr.Value, 0) {
			share = fmt.Sprintf("%.1f%%", v/sr.Value*100)
		}
		b := ""
		if peak > 0 && drawBar {
			b = bar(math.Abs(v)/peak, barW)
		}
		return strings.Repeat(" ", markerW) + fit(safeText(pid), pidW) + " " + fit(alive, aliveW) + " " +
			m.styles.Value.Render(fitRight(formatValue(v), valueW)) + " " + fitRight(share, shareW) + " " + m.styles.Bar.Render(b)
	}
	var rows []string
	for _, c := range sr.Contrib {
		alive := m.alive[c.PID]
		switch {
		case store.IsArchivePID(c.PID):
			alive = "archive"
		case alive == "":
			alive = store.AliveUnknown
		}
		rows = append(rows, row(c.PID, string(alive), c.Value, true))
	}
	if sr.Others > 0 {
		label := fmt.Sprintf("+%d more", sr.Others)
		if math.IsNaN(sr.OthersValue) {
			rows = append(rows, strings.Repeat(" ", markerW)+m.styles.Dim.Render(label+" (not kept)"))
		} else {
			// The rest's sum, not one process: no bar against the
			// processes' (it would fill the column).
			rows = append(rows, row(label, "", sr.OthersValue, false))
		}
	}
	if len(rows) == 0 {
		rows = append(rows, m.styles.Dim.Render("  no per-process samples"))
	}
	return append(lines, window(rows, m.detail, m.detailHeight())...)
}

func (m *Model) histogramLines() []string {
	h := m.hist
	if h == nil {
		return nil
	}
	leW, cumW, inW := 14, 12, 12
	if m.width < narrowDetailW {
		leW, cumW, inW = 10, 10, 10 // the count in the bucket still fits in 40 columns
	}
	// A bound longer than the column (1.23456789012e+12, as 0.25 spells
	// it 1.23456789012e+012) widens it as far as the counts leave room:
	// cut short, it reads as another bound.
	for _, b := range h.Buckets {
		leW = max(leW, min(ansi.StringWidth(safeText(b.LEText)), m.width-markerW-cumW-inW-3))
	}
	barW := min(max(m.width-markerW-leW-cumW-inW-3, 0), 40)
	lines := m.detailTitle()
	for _, l := range m.histogramSummary() {
		lines = append(lines, m.styles.Stats.Render(fit(l, m.width)))
	}
	lines = append(lines, m.styles.ColumnHeader.Render(strings.Repeat(" ", markerW)+fit("LE", leW)+" "+fitRight("CUMULATIVE", cumW)+" "+
		fitRight("IN BUCKET", inW)+" "+fit("", barW)))
	in := make([]float64, len(h.Buckets))
	peak := 0.0
	for i, b := range h.Buckets {
		in[i] = b.Count
		if i > 0 {
			in[i] -= h.Buckets[i-1].Count
		}
		if !math.IsNaN(in[i]) && !math.IsInf(in[i], 0) {
			peak = math.Max(peak, in[i])
		}
	}
	rows := make([]string, 0, len(h.Buckets))
	for i, b := range h.Buckets {
		bb := ""
		if peak > 0 {
			bb = bar(in[i]/peak, barW)
		}
		rows = append(rows, strings.Repeat(" ", markerW)+fit(safeText(b.LEText), leW)+" "+fitRight(formatValueW(b.Count, cumW), cumW)+" "+
			m.styles.Value.Render(fitRight(formatValueW(in[i], inW), inW))+" "+m.styles.Bar.Render(bb))
	}
	return append(lines, window(rows, m.detail, m.detailHeight())...)
}

// skippedRows are the problems of the last read, each wrapped to the
// width of the screen: the status line has room for the first one only,
// cut at its end.
func (m *Model) skippedRows() []string {
	if m.snap == nil {
		return nil
	}
	var rows []string
	w := max(m.width-markerW, 1)
	for _, p := range m.snap.Problems {
		for i, l := range strings.Split(ansi.Wrap(safeText(p), w, " "), "\n") {
			marker := "• "
			if i > 0 {
				marker = "  "
			}
			rows = append(rows, marker+l)
		}
	}
	return rows
}

func (m *Model) skippedLines() []string {
	n := 0
	if m.snap != nil {
		n = len(m.snap.Problems)
	}
	summary := fmt.Sprintf("%d shard(s) could not be read; the rest of the store is shown", n)
	if n == 0 {
		summary = "the last read skipped no shard"
	}
	lines := []string{
		m.styles.Title.Render(fit("skipped shards", m.width)),
		m.styles.Stats.Render(fit(summary, m.width)),
		m.styles.Dim.Render(fit("esc: back", m.width)),
	}
	return append(lines, window(m.skippedRows(), m.detail, m.detailHeight())...)
}

// window returns at most h rows starting at off.
func window(rows []string, off, h int) []string {
	off = min(max(off, 0), len(rows))
	return rows[off:min(off+h, len(rows))]
}
