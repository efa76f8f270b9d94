package tui

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

// The golden files in testdata are the screens at a fixed size with ANSI
// stripped; `go test ./internal/tui -update` rewrites them.

func sampleModel(t *testing.T, w, h int) Model {
	t.Helper()
	c := newClock()
	src := NewStoreSource(openStore(t, sampleStore), SourceOptions{Alive: alivePolicy, Now: c.Now})
	return read(t, update(t, New(src), sized(w, h)))
}

func TestViewGolden(t *testing.T) {
	tests := []struct {
		name string
		w, h int
		keys []string
	}{
		{"main", 120, 30, nil},
		{"main_80", 80, 24, nil},
		{"main_52", 52, 16, nil}, // no history column
		{"main_40", 40, 16, nil}, // no history or rate column
		{"breakdown_40", 40, 12, []string{"/", `requests.*items/2`, "enter", "enter"}},
		{"histogram_40", 40, 12, []string{"/", `latency.*items/0`, "enter", "h"}},
		{"sorted_by_value", 100, 24, []string{"v"}},
		{"sorted_by_name_reversed", 100, 24, []string{"n"}},
		{"scrolled", 100, 24, []string{"pgdown", "pgdown", "down"}},
		{"filter_typing", 100, 24, []string{"/", "payload"}},
		{"filter_applied", 100, 24, []string{"/", "payload", "enter"}},
		{"filter_invalid", 100, 24, []string{"/", "payload", "enter", "/", "(x"}},
		{"filter_cancelled", 100, 24, []string{"/", "payload", "enter", "/", "xyz", "esc"}},
		{"filter_no_match", 100, 24, []string{"/", "nothing-matches-this", "enter"}},
		{"breakdown", 100, 24, []string{"/", `requests.*items/2`, "enter", "enter"}},
		{"breakdown_gauge_max", 100, 24, []string{"/", `gauge_max.*items/0`, "enter", "enter"}},
		{"histogram", 100, 30, []string{"/", `latency.*items/0`, "enter", "h"}},
		{"histogram_from_breakdown", 100, 30, []string{"/", `size_bytes_bucket.*"\+Inf".*r/1`, "enter", "enter", "h"}},
		{"not_a_histogram", 100, 24, []string{"h"}},
		{"back_from_breakdown", 100, 24, []string{"down", "down", "enter", "esc"}},
		{"full_help", 100, 24, []string{"?"}},
		{"paused", 100, 24, []string{"p"}},
		{"history_rate", 100, 24, []string{"t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := update(t, sampleModel(t, tt.w, tt.h), press(tt.keys...)...)
			testenv.Golden(t, t.Name()+".golden", []byte(screen(m)))
		})
	}
}

// TestViewRates reads a store three times while a counter grows and a
// gauge moves, two seconds apart, and checks rates and sparklines.
func TestViewRates(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	c := newClock()
	m := New(named(NewStoreSource(st, SourceOptions{Now: c.Now}), "dir rates"))
	m = update(t, m, sized(100, 12))
	reqs := mkKey("reqs", "reqs_total", "route", "/a")
	temp := mkKey("temp", "temp", "room", "lab")
	lat := mkKey("lat", "lat_count", "route", "/a")
	latSum := mkKey("lat", "lat_sum", "route", "/a")
	// The fourth read sees the counter go down (a restart): no rate for
	// that interval.
	steps := []struct{ reqs, temp, latSum float64 }{{10, 20, 1}, {30, 25, 3}, {31, 15, 3}, {5, 15, 3}, {9, 16, 4}}
	for i, s := range steps {
		writeShard(t, st, store.ShardID{Kind: store.KindCounter, PID: "7"}, sample(reqs, s.reqs))
		writeShard(t, st, store.ShardID{Kind: store.KindGauge, Mode: "livesum", PID: "7"}, sample(temp, s.temp))
		writeShard(t, st, store.ShardID{Kind: store.KindSummary, PID: "7"}, sample(lat, s.latSum), sample(latSum, s.latSum))
		if i > 0 {
			c.Advance(2 * time.Second)
		}
		m = read(t, m)
	}
	testenv.Golden(t, t.Name()+".golden", []byte(screen(m)))
	t.Run("rate_history", func(t *testing.T) {
		testenv.Golden(t, t.Name()+".golden", []byte(screen(update(t, m, press("t")...))))
	})
	t.Run("sorted_by_rate", func(t *testing.T) {
		m := update(t, m, press("r")...)
		testenv.Golden(t, t.Name()+".golden", []byte(screen(m)))
	})
}

// TestViewReadFailsThenRecovers reads a real store, makes the next read
// fail by moving its directory away, and brings it back: the failure shows
// in the status line while the last good data stays, then clears.
func TestViewReadFailsThenRecovers(t *testing.T) {
	dir := testenv.CopyStore(t, sampleStore)
	c := newClock()
	m := New(named(NewStoreSource(openStore(t, dir), SourceOptions{Alive: alivePolicy, Now: c.Now}), "dir sample-store"))
	m = read(t, update(t, m, sized(100, 12)))
	good := screen(m)
	if !strings.Contains(good, "✓ read ok") {
		t.Fatalf("first read failed:\n%s", good)
	}

	away := dir + ".away"
	if err := os.Rename(dir, away); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Second)
	m = read(t, m)
	if !errors.Is(m.err, fs.ErrNotExist) || !strings.Contains(m.err.Error(), dir) {
		t.Errorf("read error %v, want one naming %s that does not exist", m.err, dir)
	}
	failing := screen(m)
	gl, fl := strings.Split(good, "\n"), strings.Split(failing, "\n")
	if !strings.HasPrefix(fl[2], "✗ read failed (showing data read 15:09:26): list ") {
		t.Errorf("status line does not show the failure: %q", fl[2])
	}
	// Everything but the status line is the last good screen.
	for i := range gl {
		if i != 2 && gl[i] != fl[i] {
			t.Errorf("line %d changed while the read failed:\n got %q\nwant %q", i, fl[i], gl[i])
		}
	}
	// The status line ends in the temporary path, which is not the same
	// on every machine; the golden file holds the rest of the screen.
	fl[2] = "<status line>"
	testenv.Golden(t, t.Name()+".golden", []byte(strings.Join(fl, "\n")))

	if err := os.Rename(away, dir); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Second)
	m = read(t, m)
	recovered := screen(m)
	if strings.Contains(recovered, "read failed") || !strings.Contains(recovered, "✓ read ok") || !strings.Contains(recovered, "read 15:09:30") {
		t.Errorf("status did not recover:\n%s", recovered)
	}
}

// TestViewPartialRead shows a store with a corrupt shard: the rest of the
// store on screen, the skipped shard named in the status line.
func TestViewPartialRead(t *testing.T) {
	dir := testenv.CopyStore(t, sampleStore)
	if err := os.WriteFile(dir+"/counter_999.db", []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newClock()
	m := New(named(NewStoreSource(openStore(t, dir), SourceOptions{Alive: alivePolicy, Now: c.Now}), "dir sample-store"))
	m = read(t, update(t, m, sized(100, 10)))
	testenv.Golden(t, t.Name()+".golden", []byte(strings.ReplaceAll(screen(m), dir, "/tmp/store")))
}

// TestViewFirstReadFails shows a store that cannot be read at all.
func TestViewFirstReadFails(t *testing.T) {
	src := SourceFunc(func(ctx context.Context) (*Snapshot, error) {
		return nil, context.DeadlineExceeded
	})
	m := read(t, update(t, New(src), sized(80, 8)))
	if s := screen(m); !strings.Contains(s, "✗ read failed: context deadline exceeded") {
		t.Errorf("screen:\n%s", s)
	}
}

// TestViewFitsEverySize renders every view at many sizes: never more
// lines than the height, never a line wider than the width.
func TestViewFitsEverySize(t *testing.T) {
	base := sampleModel(t, 100, 30)
	views := map[string][]string{
		"main":      nil,
		"filter":    {"/", "lat"},
		"breakdown": {"enter"},
		"histogram": {"/", "latency", "enter", "h"},
		"help":      {"?"},
		"skipped":   {"w"},
	}
	for name, ks := range views {
		for w := 1; w <= 140; w += 17 {
			for h := 1; h <= 40; h += 6 {
				m := update(t, base, sized(w, h))
				m = update(t, m, press(ks...)...)
				m = update(t, m, press("pgdown", "down")...)
				lines := strings.Split(m.View(), "\n")
				if len(lines) > h {
					t.Errorf("%s at %dx%d: %d lines", name, w, h, len(lines))
				}
				for i, l := range lines {
					if lw := ansi.StringWidth(l); lw > w {
						t.Errorf("%s at %dx%d: line %d is %d wide: %q", name, w, h, i, lw, ansi.Strip(l))
					}
				}
			}
		}
	}
}

// TestViewCursorOutlivesMissingSeries reads a store whose selected series
// is missing from one read (its shard vanished for a moment): the cursor
// stays on its row meanwhile and goes back to the series when it returns,
// unless the user chose another row in between.
func TestViewCursorOutlivesMissingSeries(t *testing.T) {
	cursorOn := func(t *testing.T, m Model, wantRow int, wantFamily string) {
		t.Helper()
		sr := m.selected()
		if m.cursor != wantRow || sr == nil || sr.Family != wantFamily {
			got := "<none>"
			if sr != nil {
				got = sr.Family
			}
			t.Fatalf("cursor on row %d (%s), want row %d (%s)\n%s", m.cursor, got, wantRow, wantFamily, screen(m))
		}
	}
	tests := []struct {
		name string
		keys []string // pressed while c is missing
		// where the cursor is after c is back
		row    int
		family string
	}{
		{"back on the series", nil, 2, "c"},
		{"a move while it is missing is a new choice", []string{"down"}, 4, "e"},
		{"opening a row while it is missing is a new choice", []string{"enter", "esc"}, 3, "d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			st := openStore(t, dir)
			writeShard(t, st, store.ShardID{Kind: store.KindCounter, PID: "7"},
				sample(mkKey("a", "a_total"), 1), sample(mkKey("b", "b_total"), 2),
				sample(mkKey("d", "d_total"), 4), sample(mkKey("e", "e_total"), 5))
			writeShard(t, st, store.ShardID{Kind: store.KindCounter, PID: "8"}, sample(mkKey("c", "c_total"), 3))
			shard := filepath.Join(dir, "counter_8.db")
			data, err := os.ReadFile(shard)
			if err != nil {
				t.Fatal(err)
			}
			m := read(t, update(t, New(NewStoreSource(st, SourceOptions{})), sized(100, 12)))
			m = update(t, m, press("down", "down")...)
			cursorOn(t, m, 2, "c")

			if err := os.Remove(shard); err != nil {
				t.Fatal(err)
			}
			m = read(t, m)
			cursorOn(t, m, 2, "d")
			m = update(t, m, press(tt.keys...)...)

			if err := os.WriteFile(shard, data, 0o644); err != nil {
				t.Fatal(err)
			}
			m = read(t, m)
			cursorOn(t, m, tt.row, tt.family)
		})
	}
}

// TestViewZeroSizeTerminal: a terminal that reports a size of 0x0 (a pty
// script(1) leaves unsized) gets the 80x24 screen, not a blank one.
func TestViewZeroSizeTerminal(t *testing.T) {
	c := newClock()
	src := named(NewStoreSource(openStore(t, testenv.CopyStore(t, sampleStore)), SourceOptions{Alive: alivePolicy, Now: c.Now}), "dir sample-store")
	zero := read(t, update(t, New(src), sized(0, 0)))
	classic := read(t, update(t, New(src), sized(80, 24)))
	if got, want := screen(zero), screen(classic); got != want || !strings.Contains(got, "app_") {
		t.Errorf("0x0 terminal:\n%s\nwant the 80x24 screen:\n%s", got, want)
	}
}

// TestViewEmptyStoreWarns: a store with no shards (an empty or mistyped
// directory) is not "read ok": the status line says it holds no shards,
// as every other command warns.
func TestViewEmptyStoreWarns(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	m := New(named(NewStoreSource(openStore(t, dir), SourceOptions{Alive: alivePolicy, Now: c.Now}), "dir empty"))
	m = read(t, update(t, m, sized(100, 12)))
	if s := screen(m); strings.Contains(s, "read ok") || !strings.Contains(s, "the store holds no shards") {
		t.Errorf("empty store:\n%s", s)
	}
}

// TestFilterInvalidRegexNotTaken: enter on an invalid expression keeps
// the filter being edited, with its error shown, instead of clearing the
// filter without a word; esc then brings back the filter before it.
func TestFilterInvalidRegexNotTaken(t *testing.T) {
	m := update(t, sampleModel(t, 100, 12), press("/", "kind", "enter")...)
	if m.filterText() != "kind" {
		t.Fatalf("filter %q, want kind", m.filterText())
	}
	m = update(t, m, press("/")...)
	m.input.SetValue("")
	m = update(t, m, press("([", "enter")...)
	if !m.filtering || m.filterErr == nil || !strings.Contains(screen(m), "missing closing") {
		t.Errorf("after enter on ([: filtering %v, err %v, screen:\n%s", m.filtering, m.filterErr, screen(m))
	}
	m = update(t, m, press("esc")...)
	if m.filtering || m.filterText() != "kind" {
		t.Errorf("after esc: filtering %v, filter %q; want the filter before, kind", m.filtering, m.filterText())
	}
}

// TestBreakdownRestHasNoBar: the "+N more" row of the per-process view is
// the sum of many processes, not one: it gets no bar against the
// processes' (it filled the column, as if it were the largest).
func TestBreakdownRestHasNoBar(t *testing.T) {
	m := update(t, sampleModel(t, 100, 24), press("/", `requests.*items/2`, "enter", "enter")...)
	sr := m.selected()
	if sr == nil || len(sr.Contrib) == 0 {
		t.Fatal("no series with processes selected")
	}
	sr.Others, sr.OthersValue = 24, 1000*math.Abs(sr.Contrib[0].Value)+1
	for _, l := range strings.Split(screen(m), "\n") {
		if strings.Contains(l, "+24 more") && strings.ContainsAny(l, "█▏") {
			t.Errorf("the rest's row has a bar: %q", l)
		}
	}
	if !strings.Contains(screen(m), "+24 more") {
		t.Errorf("no rest row:\n%s", screen(m))
	}
}

// TestKeysReadTogether: keys that reach the program in one read of the
// terminal (typed ahead over a slow link, a held key) come as one message
// with several runes; each must count, not none.
func TestKeysReadTogether(t *testing.T) {
	runes := func(s string) tea.Msg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }
	tests := []struct {
		name  string
		msgs  []tea.Msg
		check func(t *testing.T, m Model)
	}{
		{"moves", []tea.Msg{runes("jjj")}, func(t *testing.T, m Model) {
			if m.cursor != 3 {
				t.Errorf("cursor on row %d, want 3", m.cursor)
			}
		}},
		{"help then last row", []tea.Msg{runes("?G")}, func(t *testing.T, m Model) {
			if !m.help.ShowAll || m.cursor != len(m.visible)-1 {
				t.Errorf("full help %v, cursor %d; want full help, cursor %d", m.help.ShowAll, m.cursor, len(m.visible)-1)
			}
		}},
		{"filter typed after the slash", []tea.Msg{runes("/kind"), tea.KeyMsg{Type: tea.KeyEnter}}, func(t *testing.T, m Model) {
			if m.filtering || m.filterText() != "kind" {
				t.Errorf("filtering %v, filter %q; want the filter kind applied", m.filtering, m.filterText())
			}
		}},
		{"a paste is no keys", []tea.Msg{tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("jjq"), Paste: true}}, func(t *testing.T, m Model) {
			if m.cursor != 0 {
				t.Errorf("cursor on row %d after a paste, want 0", m.cursor)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, update(t, sampleModel(t, 100, 24), tt.msgs...))
		})
	}
}

// TestKeysReadTogetherQuit: a q among keys read together quits.
func TestKeysReadTogetherQuit(t *testing.T) {
	_, cmd := sampleModel(t, 100, 24).Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("jq")})
	if cmd == nil {
		t.Fatal("no command for jq, want quit")
	}
	msgs := []tea.Msg{cmd()}
	if b, ok := msgs[0].(tea.BatchMsg); ok {
		msgs = msgs[:0]
		for _, c := range b {
			if c != nil {
				msgs = append(msgs, c())
			}
		}
	}
	for _, msg := range msgs {
		if _, ok := msg.(tea.QuitMsg); ok {
			return
		}
	}
	t.Errorf("jq gave %v, want a quit", msgs)
}

// TestHistogramLongBounds: a bucket bound longer than the LE column's 14
// cells (1.23456789012e+12; 0.25 spells it 1.23456789012e+012) is shown
// whole where the terminal has room; cut short, "1.23456789012…" read as
// another bound. The summary above the buckets wraps between its items, so
// that the quantiles are seen at 40 columns.
func TestHistogramLongBounds(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	les := []string{"1e+09", "1.23456789012e+12", "1.23456789012345e+15", "+Inf"}
	var samples []store.Sample
	for i, le := range les {
		samples = append(samples, sample(mkKey("size", "size_bucket", "le", le), float64(i+1)))
	}
	samples = append(samples, sample(mkKey("size", "size_sum"), 5e12))
	writeShard(t, st, store.ShardID{Kind: store.KindHistogram, PID: "7"}, samples...)
	for _, w := range []int{100, 60, 40} {
		m := read(t, update(t, New(NewStoreSource(st, SourceOptions{})), sized(w, 20)))
		m = update(t, m, press("h")...)
		s := screen(m)
		// The summary wraps between its items: each is whole.
		for _, item := range []string{"count 10", "sum 5000000000000", "mean 500000000000", "p50 8.235e+14", "p90 1.235e+15", "p99 1.235e+15"} {
			if !strings.Contains(s, item) {
				t.Errorf("width %d: %q not shown whole:\n%s", w, item, s)
			}
		}
		if w < 60 {
			continue // the counts leave 15 cells for the bounds
		}
		for _, le := range les {
			if !strings.Contains(s, "  "+le+" ") {
				t.Errorf("width %d: bound %s not shown whole:\n%s", w, le, s)
			}
		}
	}
}

// TestViewSkippedShards: w lists every shard the last read skipped, each
// message whole (wrapped), at any width; the status line had room for the
// first one only, cut at 80 columns before saying what was wrong with it.
func TestViewSkippedShards(t *testing.T) {
	dir := testenv.CopyStore(t, sampleStore)
	for _, name := range []string{"counter_998.db", "counter_999.db"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, size := range [][2]int{{40, 40}, {80, 24}, {200, 60}} {
		m := New(NewStoreSource(openStore(t, dir), SourceOptions{Alive: alivePolicy}))
		m = read(t, update(t, m, sized(size[0], size[1])))
		if len(m.snap.Problems) != 2 {
			t.Fatalf("problems %q, want two", m.snap.Problems)
		}
		m = update(t, m, press("w")...)
		var body strings.Builder
		for _, l := range strings.Split(screen(m), "\n")[6:] {
			body.WriteString(strings.TrimPrefix(l, "• "))
		}
		flat := func(s string) string { return strings.Join(strings.Fields(s), "") }
		for _, p := range m.snap.Problems {
			if !strings.Contains(flat(body.String()), flat(p)) {
				t.Errorf("%dx%d: %q not shown whole:\n%s", size[0], size[1], p, screen(m))
			}
		}
		if m = update(t, m, press("esc")...); m.view != viewMain {
			t.Errorf("%dx%d: esc left view %d, want the main view", size[0], size[1], m.view)
		}
	}
	m := update(t, sampleModel(t, 100, 24), press("w")...)
	if m.view != viewMain || !strings.Contains(screen(m), "the last read skipped no shard") {
		t.Errorf("w on a store read whole:\n%s", screen(m))
	}
}

// TestDetailTitleWraps: the breakdown and histogram views name their
// series on as many lines as the width needs (up to three, the last cut
// with …), so series of one family that differ late in their labels are
// told apart at 40 columns; the screen keeps its height.
func TestDetailTitleWraps(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	writeShard(t, st, store.ShardID{Kind: store.KindCounter, PID: "7"},
		sample(mkKey("req", "req_total", "route", "/api/v1/items/{id}/attachments", "tag", "first"), 1),
		sample(mkKey("req", "req_total", "route", "/api/v1/items/{id}/attachments/"+strings.Repeat("x", 200), "tag", "second"), 2))
	writeShard(t, st, store.ShardID{Kind: store.KindHistogram, PID: "7"},
		sample(mkKey("lat", "lat_bucket", "le", "+Inf", "route", "/api/v1/items/{id}/attachments"), 3))
	tests := []struct {
		keys  []string
		title []string // the title's lines, as shown
	}{
		// Sorted by name: lat_bucket, lat_count, then the two req_total.
		{[]string{"G", "k", "enter"}, []string{`▸ req_total{route="/api/v1/items/{id}/at`, `tachments",tag="first"}  counter`}},
		{[]string{"G", "enter"}, []string{`▸ req_total{route="/api/v1/items/{id}/at`, `tachments/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx`, strings.Repeat("x", 39) + "…"}},
		{[]string{"h"}, []string{`▸ lat{route="/api/v1/items/{id}/attachme`, `nts"}  histogram`}},
	}
	for _, tc := range tests {
		m := read(t, update(t, New(NewStoreSource(st, SourceOptions{})), sized(40, 16)))
		m = update(t, m, press(tc.keys...)...)
		lines := strings.Split(strings.TrimSuffix(screen(m), "\n"), "\n")
		if len(lines) != 16 {
			t.Errorf("%v: %d lines, want the terminal's 16:\n%s", tc.keys, len(lines), screen(m))
		}
		for i, want := range tc.title {
			if i+3 >= len(lines) || strings.TrimRight(lines[i+3], " ") != want {
				t.Errorf("%v: title line %d, want %q:\n%s", tc.keys, i, want, screen(m))
			}
		}
	}
}
