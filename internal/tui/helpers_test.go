package tui

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
)

// sampleStore is the store real Python wrote for the README, read in
// place (scans never write), by a relative path so that the header is the
// same on every machine.
const sampleStore = "../../testdata/sample-store"

// clock is a settable clock, so that snapshot times and read durations
// in golden files do not depend on the machine.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// alivePolicy reports pid 4100 alive and every other decimal pid dead:
// the sample store's pids are not processes of the test machine, whose
// own processes may happen to have those numbers.
func alivePolicy(pid string) store.Liveness {
	switch pid {
	case "4100":
		return store.AliveYes
	case "4101", "4102":
		return store.AliveNo
	}
	return store.AliveUnknown
}

func openStore(t testing.TB, dir string) *filestore.Store {
	t.Helper()
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return st
}

// named renames the store in snapshots, for stores in temporary
// directories whose path changes from run to run.
func named(src Source, name string) Source {
	return SourceFunc(func(ctx context.Context) (*Snapshot, error) {
		s, err := src.Snapshot(ctx)
		if s != nil {
			s.Store = name
		}
		return s, err
	})
}

func mkKey(family, name string, labels ...string) *store.Key {
	k := &store.Key{Family: family, Name: name, Help: "help of " + family}
	for i := 0; i+1 < len(labels); i += 2 {
		k.Labels = append(k.Labels, store.Label{Name: labels[i], Value: labels[i+1]})
	}
	k.Text = store.EncodeKey(k.Family, k.Name, k.Labels, k.Help)
	return k
}

func writeShard(t testing.TB, st store.Writer, id store.ShardID, samples ...store.Sample) {
	t.Helper()
	if err := st.WriteShard(context.Background(), id, samples); err != nil {
		t.Fatalf("write shard %s: %v", id, err)
	}
}

func sample(k *store.Key, v float64) store.Sample { return store.Sample{Key: k, Value: v} }

// read runs one read the way the program would, and feeds it to the model.
func read(t testing.TB, m Model) Model {
	t.Helper()
	cmd := m.Init()
	msg := cmd()
	if _, ok := msg.(snapshotMsg); !ok {
		t.Fatalf("read returned %T, want snapshotMsg", msg)
	}
	return update(t, m, msg)
}

func update(t testing.TB, m Model, msgs ...tea.Msg) Model {
	t.Helper()
	for _, msg := range msgs {
		nm, _ := m.Update(msg)
		m = nm.(Model)
	}
	return m
}

func press(s ...string) []tea.Msg {
	var out []tea.Msg
	for _, k := range s {
		switch k {
		case "enter":
			out = append(out, tea.KeyMsg{Type: tea.KeyEnter})
		case "esc":
			out = append(out, tea.KeyMsg{Type: tea.KeyEsc})
		case "down":
			out = append(out, tea.KeyMsg{Type: tea.KeyDown})
		case "up":
			out = append(out, tea.KeyMsg{Type: tea.KeyUp})
		case "pgdown":
			out = append(out, tea.KeyMsg{Type: tea.KeyPgDown})
		case "pgup":
			out = append(out, tea.KeyMsg{Type: tea.KeyPgUp})
		case "ctrl+c":
			out = append(out, tea.KeyMsg{Type: tea.KeyCtrlC})
		default:
			for _, r := range k {
				out = append(out, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
			}
		}
	}
	return out
}

// screen is the model's view without ANSI sequences and with trailing
// spaces removed, as the golden files hold it.
func screen(m Model) string {
	lines := strings.Split(ansi.Strip(m.View()), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n") + "\n"
}

func sized(w, h int) tea.WindowSizeMsg { return tea.WindowSizeMsg{Width: w, Height: h} }
