// Package tui is the bubbletea model behind `promstore top`: a live view
// of a store's aggregated series with rates, sparklines, a per-process
// breakdown and histogram quantiles.
//
// Every read of the store happens in a tea.Cmd; Update and View only
// rearrange what the reads returned, so a slow store never freezes the
// screen.
package tui

import (
	"context"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/promstore/promstore/internal/store"
)

// Defaults of New.
const (
	DefaultInterval = 2 * time.Second
	DefaultHistory  = 30
)

type viewKind int

const (
	viewMain viewKind = iota
	viewBreakdown
	viewHistogram
	viewSkipped
)

type sortKey int

const (
	sortName sortKey = iota
	sortValue
	sortRate
)

// Model is the top view. Create it with New.
type Model struct {
	keys   KeyMap
	styles Styles
	help   help.Model
	input  textinput.Model

	ctx      context.Context
	src      Source
	interval time.Duration
	history  int

	width, height int
	fullHelpH     int // lines of the full help at this width

	// snap is the last good snapshot; err the failure of the last read,
	// nil when it succeeded.
	snap    *Snapshot
	err     error
	reading bool
	paused  bool
	tickID  int
	reads   int

	// Per-series history across snapshots, by series key.
	seq    int
	times  []time.Time
	series map[string]*seriesState
	rates  []float64 // per snap.Series; NaN where there is none
	alive  map[string]store.Liveness

	visible []int // indices into snap.Series after filter and sort
	sortBy  sortKey
	desc    bool

	filtering  bool
	filterRE   *regexp.Regexp
	filterErr  error
	prevFilter string

	showRate bool
	view     viewKind
	cursor   int
	offset   int
	selKey   string // the series under the cursor
	// want is the series the user put the cursor on. A read that lacks it
	// (its shard vanished for a moment) leaves the cursor on its row; the
	// cursor goes back to want when it returns (see refilter).
	want   string
	detail int // scroll offset of the breakdown and histogram views
	hist   *Histogram
	note   string
}

// seriesState is one series' recent values, newest last in ring order.
type seriesState struct {
	vals []float64
	head int // index of the oldest value once the ring is full
	n    int
	seq  int // refresh in which the newest value was recorded
	idx  int // index in the snapshot of seq
}

func (s *seriesState) push(v float64) {
	if s.n < len(s.vals) {
		s.vals[(s.head+s.n)%len(s.vals)] = v
		s.n++
		return
	}
	s.vals[s.head] = v
	s.head = (s.head + 1) % len(s.vals)
}

func (s *seriesState) last() (float64, bool) {
	if s.n == 0 {
		return 0, false
	}
	return s.vals[(s.head+s.n-1)%len(s.vals)], true
}

// values returns the history oldest first.
func (s *seriesState) values() []float64 {
	out := make([]float64, s.n)
	for i := range out {
		out[i] = s.vals[(s.head+i)%len(s.vals)]
	}
	return out
}

// Option configures New.
type Option func(*Model)

// WithInterval sets the time between the end of one read and the start
// of the next.
func WithInterval(d time.Duration) Option { return func(m *Model) { m.interval = d } }

// WithContext sets the context reads run under.
func WithContext(ctx context.Context) Option { return func(m *Model) { m.ctx = ctx } }

// WithKeyMap replaces the key bindings.
func WithKeyMap(k KeyMap) Option { return func(m *Model) { m.keys = k } }

// WithStyles replaces the styles.
func WithStyles(s Styles) Option { return func(m *Model) { m.styles = s } }

// WithHistory sets how many recent values each series keeps for its
// sparkline.
func WithHistory(n int) Option { return func(m *Model) { m.history = n } }

// New returns a model reading snapshots from src.
func New(src Source, opts ...Option) Model {
	m := Model{
		keys:     DefaultKeyMap(),
		styles:   DefaultStyles(),
		help:     help.New(),
		input:    textinput.New(),
		ctx:      context.Background(),
		src:      src,
		interval: DefaultInterval,
		history:  DefaultHistory,
		series:   map[string]*seriesState{},
		width:    80,
		height:   24,
	}
	for _, o := range opts {
		o(&m)
	}
	if m.interval <= 0 {
		m.interval = DefaultInterval
	}
	if m.history < 2 {
		m.history = 2
	}
	m.fullHelpH = strings.Count(m.help.FullHelpView(m.keys.FullHelp()), "\n") + 1
	m.input.Prompt = "/"
	m.input.Placeholder = "regexp over family and labels"
	return m
}

// Init starts the first read.
func (m Model) Init() tea.Cmd {
	return m.startRead()
}

func (m *Model) startRead() tea.Cmd {
	m.reading = true
	return readCmd(m.ctx, m.src)
}

// Update handles reads, ticks, keys and resizes.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		if msg.Width <= 0 || msg.Height <= 0 {
			// A terminal that reports no size (a pty left at 0x0, as
			// script(1) makes): draw for the classic 80x24.
			msg.Width, msg.Height = 80, 24
		}
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		m.fullHelpH = strings.Count(m.help.FullHelpView(m.keys.FullHelp()), "\n") + 1
		m.input.Width = min(max(msg.Width/3, 10), 60)
		m.clampCursor()
		return m, nil
	case snapshotMsg:
		m.reading = false
		m.reads++
		if msg.err != nil {
			m.err = msg.err
		} else {
			m.err = nil
			m.apply(msg.snap)
		}
		m.tickID++
		return m, tickCmd(m.interval, m.tickID)
	case tickMsg:
		if msg.id != m.tickID || m.paused || m.reading {
			return m, nil
		}
		return m, m.startRead()
	case tea.KeyMsg:
		return m.handleKey(msg)
	}
	if m.filtering {
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		return m, cmd
	}
	return m, nil
}

func (m Model) handleKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste && !m.filtering {
		return m.handleRunes(msg.Runes)
	}
	m.note = ""
	if m.filtering {
		switch {
		case key.Matches(msg, m.keys.ForceQuit):
			return m, tea.Quit
		case key.Matches(msg, m.keys.AcceptFilter):
			if m.filterErr != nil {
				// An invalid expression is not taken: the error stays
				// shown (esc brings the filter before back).
				return m, nil
			}
			m.filtering = false
			m.filterErr = nil
			m.input.Blur()
			m.input.SetValue(m.filterText())
			return m, nil
		case key.Matches(msg, m.keys.CancelFilter):
			m.filtering = false
			m.filterErr = nil
			m.input.Blur()
			m.setFilter(m.prevFilter)
			return m, nil
		}
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		m.setFilter(m.input.Value())
		return m, cmd
	}
	switch {
	case key.Matches(msg, m.keys.Quit):
		return m, tea.Quit
	case key.Matches(msg, m.keys.Help):
		m.help.ShowAll = !m.help.ShowAll
		m.clampCursor()
		return m, nil
	case key.Matches(msg, m.keys.Pause):
		m.paused = !m.paused
		if !m.paused && !m.reading {
			m.tickID++ // a pending tick must not start a second read
			return m, m.startRead()
		}
		return m, nil
	case key.Matches(msg, m.keys.ToggleRate):
		m.showRate = !m.showRate
		return m, nil
	}
	if m.view != viewMain {
		return m.handleDetailKey(msg)
	}
	page := max(m.tableHeight()-1, 1)
	switch {
	case key.Matches(msg, m.keys.Up):
		m.moveCursor(-1)
	case key.Matches(msg, m.keys.Down):
		m.moveCursor(1)
	case key.Matches(msg, m.keys.PageUp):
		m.moveCursor(-page)
	case key.Matches(msg, m.keys.PageDown):
		m.moveCursor(page)
	case key.Matches(msg, m.keys.Home):
		m.moveCursor(-len(m.visible))
	case key.Matches(msg, m.keys.End):
		m.moveCursor(len(m.visible))
	case key.Matches(msg, m.keys.SortName):
		m.setSort(sortName)
	case key.Matches(msg, m.keys.SortValue):
		m.setSort(sortValue)
	case key.Matches(msg, m.keys.SortRate):
		m.setSort(sortRate)
	case key.Matches(msg, m.keys.Filter):
		m.filtering = true
		m.prevFilter = m.filterText()
		m.input.SetValue(m.prevFilter)
		m.input.CursorEnd()
		return m, m.input.Focus()
	case key.Matches(msg, m.keys.Back):
		if m.filterRE != nil {
			m.setFilter("")
			m.input.SetValue("")
		}
	case key.Matches(msg, m.keys.Breakdown):
		if sr := m.selected(); sr != nil {
			m.view, m.detail, m.want = viewBreakdown, 0, m.selKey
		}
	case key.Matches(msg, m.keys.Histogram):
		m.want = m.selKey
		m.openHistogram()
	case key.Matches(msg, m.keys.Skipped):
		if m.snap == nil || len(m.snap.Problems) == 0 {
			m.note = "the last read skipped no shard"
			return m, nil
		}
		m.view, m.detail = viewSkipped, 0
	}
	return m, nil
}

// handleRunes handles keys that reached the program in one read of the
// terminal (typed ahead over a slow link, a held key, "?G" sent at once):
// Bubble Tea hands them over as one message with several runes, which
// matches no binding, so all of them were lost. Each is a key of its own;
// those after a "/" go to the filter, as typed.
func (m Model) handleRunes(runes []rune) (tea.Model, tea.Cmd) {
	cmds := make([]tea.Cmd, 0, len(runes))
	for _, r := range runes {
		nm, cmd := m.handleKey(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
		m = nm.(Model)
		cmds = append(cmds, cmd)
	}
	return m, tea.Batch(cmds...)
}

func (m Model) handleDetailKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	page := max(m.detailHeight()-1, 1)
	switch {
	case key.Matches(msg, m.keys.Back):
		m.view, m.detail, m.hist = viewMain, 0, nil
		m.clampCursor()
	case key.Matches(msg, m.keys.Up):
		m.detail--
	case key.Matches(msg, m.keys.Down):
		m.detail++
	case key.Matches(msg, m.keys.PageUp):
		m.detail -= page
	case key.Matches(msg, m.keys.PageDown):
		m.detail += page
	case key.Matches(msg, m.keys.Home):
		m.detail = 0
	case key.Matches(msg, m.keys.End):
		m.detail = math.MaxInt32
	case key.Matches(msg, m.keys.Histogram):
		if m.view == viewBreakdown {
			m.openHistogram()
		}
	case key.Matches(msg, m.keys.Breakdown):
		if m.view == viewHistogram {
			m.view, m.detail, m.hist = viewBreakdown, 0, nil
		}
	}
	m.detail = min(max(m.detail, 0), max(m.detailLines()-m.detailHeight(), 0))
	return m, nil
}

func (m *Model) openHistogram() {
	sr := m.selected()
	if sr == nil {
		return
	}
	h, ok := histogramOf(m.snap, sr)
	if !ok {
		m.note = safeText(sr.Name) + " is not part of a histogram"
		return
	}
	m.view, m.detail, m.hist = viewHistogram, 0, h
}

// selected returns the series under the cursor (or shown in a detail
// view), nil when there is none.
func (m *Model) selected() *Series {
	if m.snap == nil || m.selKey == "" {
		return nil
	}
	st := m.series[m.selKey]
	if st == nil || st.seq != m.seq {
		return nil
	}
	return &m.snap.Series[st.idx]
}

// apply takes in a new snapshot: history, rates, filter, sort, cursor.
func (m *Model) apply(s *Snapshot) {
	var prevTime time.Time
	if len(m.times) > 0 {
		prevTime = m.times[len(m.times)-1]
	}
	m.seq++
	m.times = append(m.times, s.Time)
	if len(m.times) > m.history {
		m.times = append(m.times[:0], m.times[len(m.times)-m.history:]...)
	}
	dt := s.Time.Sub(prevTime).Seconds()
	m.rates = make([]float64, len(s.Series))
	for i := range s.Series {
		sr := &s.Series[i]
		m.rates[i] = math.NaN()
		st := m.series[sr.Key]
		switch {
		case st == nil:
			st = &seriesState{vals: make([]float64, m.history)}
			m.series[sr.Key] = st
		case st.seq == m.seq:
			continue // the same series twice in one snapshot: keep the first
		case st.seq != m.seq-1:
			st.head, st.n = 0, 0 // absent last time: its history has a gap
		}
		if prev, ok := st.last(); ok && sr.Monotonic && dt > 0 && sr.Value >= prev {
			// A decrease is a reset (or a dead process's shard removed):
			// no rate for that interval.
			m.rates[i] = (sr.Value - prev) / dt
		}
		st.push(sr.Value)
		st.seq, st.idx = m.seq, i
	}
	if len(m.series) > len(s.Series) {
		for k, st := range m.series {
			if st.seq != m.seq {
				delete(m.series, k)
			}
		}
	}
	m.alive = make(map[string]store.Liveness, len(s.PIDs))
	for _, p := range s.PIDs {
		m.alive[p.ID] = p.Alive
	}
	m.snap = s
	if m.view == viewHistogram {
		if sr := m.selected(); sr != nil {
			if h, ok := histogramOf(s, sr); ok {
				m.hist = h
			}
		}
	}
	m.refilter(true)
}

// sparkValues returns what the sparkline of series st shows: its values,
// or the rates between them.
func (m *Model) sparkValues(st *seriesState, sr *Series) []float64 {
	vals := st.values()
	if !m.showRate {
		return vals
	}
	if !sr.Monotonic || len(vals) < 2 {
		return nil
	}
	times := m.times[len(m.times)-len(vals):]
	out := make([]float64, 0, len(vals)-1)
	for i := 1; i < len(vals); i++ {
		dt := times[i].Sub(times[i-1]).Seconds()
		r := math.NaN()
		if dt > 0 && vals[i] >= vals[i-1] {
			r = (vals[i] - vals[i-1]) / dt
		}
		out = append(out, r)
	}
	return out
}

func (m *Model) filterText() string {
	if m.filterRE == nil {
		return ""
	}
	return m.filterRE.String()
}

// setFilter compiles and applies a filter; an invalid one is reported
// and the last valid one stays.
func (m *Model) setFilter(expr string) {
	if expr == "" {
		m.filterRE, m.filterErr = nil, nil
		m.refilter(false)
		return
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		m.filterErr = err
		return
	}
	m.filterRE, m.filterErr = re, nil
	m.refilter(false)
}

func (m *Model) setSort(k sortKey) {
	if m.sortBy == k {
		m.desc = !m.desc
	} else {
		m.sortBy, m.desc = k, k != sortName
	}
	m.refilter(false)
}

// refilter recomputes the visible rows and puts the cursor on the series
// the user chose where it is visible. Where it is not, a new read (sticky)
// leaves the cursor on the same row and the choice as it was, so that a
// series missing from one read does not lose the user's place; a new
// filter or sort starts at the top and makes what is there the choice.
func (m *Model) refilter(sticky bool) {
	m.visible = m.visible[:0]
	if m.snap == nil {
		return
	}
	for i := range m.snap.Series {
		sr := &m.snap.Series[i]
		if m.filterRE != nil && !m.filterRE.MatchString(sr.Family) && !m.filterRE.MatchString(sr.Name+sr.LabelText) {
			continue
		}
		m.visible = append(m.visible, i)
	}
	m.sortVisible()
	found := false
	for i, idx := range m.visible {
		if m.snap.Series[idx].Key == m.want {
			m.cursor, found = i, true
			break
		}
	}
	if !found && !sticky {
		m.cursor = 0
	}
	m.clampCursor()
	if !found && (!sticky || m.want == "") {
		m.want = m.selKey
	}
}

func (m *Model) sortVisible() {
	if m.sortBy == sortName {
		if m.desc {
			for i, j := 0, len(m.visible)-1; i < j; i, j = i+1, j-1 {
				m.visible[i], m.visible[j] = m.visible[j], m.visible[i]
			}
		}
		return
	}
	key := func(i int) float64 { return m.snap.Series[i].Value }
	if m.sortBy == sortRate {
		key = func(i int) float64 { return m.rates[i] }
	}
	desc := m.desc
	sort.SliceStable(m.visible, func(a, b int) bool {
		x, y := key(m.visible[a]), key(m.visible[b])
		// NaN (no value, no rate) always sorts last.
		if math.IsNaN(x) || math.IsNaN(y) {
			return !math.IsNaN(x) && math.IsNaN(y)
		}
		if desc {
			return x > y
		}
		return x < y
	})
}

func (m *Model) moveCursor(d int) {
	m.cursor += d
	m.clampCursor()
	m.want = m.selKey
}

// clampCursor keeps the cursor on a visible row and in the window, and
// remembers which series it is on.
func (m *Model) clampCursor() {
	m.cursor = min(max(m.cursor, 0), max(len(m.visible)-1, 0))
	h := max(m.tableHeight(), 1)
	if m.cursor < m.offset {
		m.offset = m.cursor
	}
	if m.cursor >= m.offset+h {
		m.offset = m.cursor - h + 1
	}
	m.offset = min(max(m.offset, 0), max(len(m.visible)-h, 0))
	if m.view == viewMain {
		m.selKey = ""
		if len(m.visible) > 0 {
			m.selKey = m.snap.Series[m.visible[m.cursor]].Key
		}
	}
}
