package tui

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

// Interaction tests run the model in a real bubbletea program and wait
// for what it prints; they never sleep.

func startProgram(t *testing.T, m Model) *teatest.TestModel {
	t.Helper()
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 24))
	t.Cleanup(func() { _ = tm.Quit() })
	return tm
}

// expect waits until the program prints every one of wants.
func expect(t *testing.T, tm *teatest.TestModel, wants ...string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		for _, w := range wants {
			if !bytes.Contains(b, []byte(w)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(15*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
}

func send(tm *teatest.TestModel, keys ...string) {
	for _, k := range press(keys...) {
		tm.Send(k)
	}
}

func finalModel(t *testing.T, tm *teatest.TestModel) Model {
	t.Helper()
	return tm.FinalModel(t, teatest.WithFinalTimeout(15*time.Second)).(Model)
}

func TestInteractSortFilterDrillDownQuit(t *testing.T) {
	c := newClock()
	src := NewStoreSource(openStore(t, sampleStore), SourceOptions{Alive: alivePolicy, Now: c.Now})
	tm := startProgram(t, New(src, WithInterval(time.Hour)))
	expect(t, tm, `app_events_total{kind="café"}`, "✓ read ok")

	send(tm, "v")
	expect(t, tm, "VALUE▼")
	send(tm, "v")
	expect(t, tm, "VALUE▲")
	send(tm, "r")
	expect(t, tm, "RATE/s▼")
	send(tm, "n")
	expect(t, tm, "SERIES▲")

	send(tm, "/", "requests.*items/2")
	expect(t, tm, "series 1 of 290")
	send(tm, "enter")
	expect(t, tm, "filter /requests.*items/2/")

	send(tm, "enter")
	expect(t, tm, `▸ app_requests_total{route="/api/v1/items/2",tag=" spaced "}  counter`, "35.8%")
	send(tm, "esc")
	expect(t, tm, "SERIES▲")
	send(tm, "esc") // clears the filter
	expect(t, tm, "series 290 ·")

	send(tm, "/", `latency.*items/0`, "enter", "h")
	expect(t, tm, "p50 0.75 · p90 10 · p99 10")
	send(tm, "esc", "?")
	expect(t, tm, "page down")

	send(tm, "q")
	m := finalModel(t, tm)
	if m.view != viewMain || !m.help.ShowAll || m.filterText() != "latency.*items/0" {
		t.Errorf("final model: view %v, full help %v, filter %q", m.view, m.help.ShowAll, m.filterText())
	}
}

func TestInteractQuitKeys(t *testing.T) {
	src := NewStoreSource(openStore(t, sampleStore), SourceOptions{})
	t.Run("q types while filtering, ctrl+c quits", func(t *testing.T) {
		tm := startProgram(t, New(src, WithInterval(time.Hour)))
		expect(t, tm, "✓ read ok")
		send(tm, "/", "q")
		expect(t, tm, "/q")
		send(tm, "ctrl+c")
		if m := finalModel(t, tm); !m.filtering || m.input.Value() != "q" {
			t.Errorf("filtering %v, input %q; want the q typed into the filter", m.filtering, m.input.Value())
		}
	})
	t.Run("q quits", func(t *testing.T) {
		tm := startProgram(t, New(src, WithInterval(time.Hour)))
		expect(t, tm, "✓ read ok")
		send(tm, "q")
		finalModel(t, tm)
	})
}

// TestInteractReadFailsThenRecovers moves a real store's directory away
// while top refreshes it, then brings it back.
func TestInteractReadFailsThenRecovers(t *testing.T) {
	dir := testenv.CopyStore(t, sampleStore)
	away := dir + ".away"
	src := NewStoreSource(openStore(t, dir), SourceOptions{Alive: alivePolicy})
	tm := startProgram(t, New(src, WithInterval(10*time.Millisecond)))
	expect(t, tm, "✓ read ok", `app_events_total{kind="café"}`)

	if err := os.Rename(dir, away); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Rename(away, dir) })
	expect(t, tm, "✗ read failed (showing data read ")

	if err := os.Rename(away, dir); err != nil {
		t.Fatal(err)
	}
	expect(t, tm, "✓ read ok")
	send(tm, "q")
	m := finalModel(t, tm)
	if v := screen(m); !strings.Contains(v, `app_events_total{kind="café"}`) || strings.Contains(v, "read failed") {
		t.Errorf("final screen:\n%s", v)
	}
	if m.reads < 3 {
		t.Errorf("%d reads, want at least 3", m.reads)
	}
}

// TestInteractSlowReadKeepsScreenAlive blocks a read and checks that
// keys still work while it is in flight.
func TestInteractSlowReadKeepsScreenAlive(t *testing.T) {
	dir := testenv.CopyStore(t, sampleStore)
	st := openStore(t, dir)
	real := NewStoreSource(st, SourceOptions{})
	release := make(chan struct{})
	var calls atomic.Int32
	slow := SourceFunc(func(ctx context.Context) (*Snapshot, error) {
		if calls.Add(1) > 1 {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return real.Snapshot(ctx)
	})
	tm := startProgram(t, New(slow, WithInterval(time.Millisecond)))
	expect(t, tm, "✓ read ok", "reading…")

	send(tm, "?")
	expect(t, tm, "page down")
	send(tm, "v")
	expect(t, tm, "VALUE▼")

	writeShard(t, st, store.ShardID{Kind: store.KindCounter, PID: "4100"}, sample(mkKey("late", "late_total"), 1e9))
	close(release)
	expect(t, tm, "samples 711")
	send(tm, "q")
	finalModel(t, tm)
}

var _ tea.Model = Model{}
