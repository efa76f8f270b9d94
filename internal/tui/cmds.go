package tui

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// readCmd reads one snapshot off the UI goroutine.
func readCmd(ctx context.Context, src Source) tea.Cmd {
	return func() tea.Msg {
		snap, err := src.Snapshot(ctx)
		return snapshotMsg{snap: snap, err: err}
	}
}

// tickCmd asks for the next read after d.
func tickCmd(d time.Duration, id int) tea.Cmd {
	return tea.Tick(d, func(time.Time) tea.Msg { return tickMsg{id: id} })
}
