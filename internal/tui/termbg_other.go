//go:build !unix

package tui

import (
	"os"
	"time"
)

// queryBackground does not ask the terminal here: Windows consoles do
// not answer OSC 11, and lipgloss does not ask them either.
func queryBackground(in, out *os.File, wait time.Duration) (dark, ok bool) {
	return false, false
}
