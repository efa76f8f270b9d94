//go:build unix

package tui

import (
	"errors"
	"os"
	"time"

	"github.com/charmbracelet/x/term"
	"golang.org/x/sys/unix"
)

// queryBackground asks the terminal in and out are for its background
// colour and returns whether it is dark; ok is false when the terminal
// does not say (no OSC 11, no answer within wait, not a terminal). The
// terminal's mode is raw while asking and restored after.
func queryBackground(in, out *os.File, wait time.Duration) (dark, ok bool) {
	if !term.IsTerminal(in.Fd()) || !term.IsTerminal(out.Fd()) {
		return false, false
	}
	// Only a process in the terminal's foreground may read it (a
	// background one is stopped by SIGTTIN).
	if pgrp, err := unix.IoctlGetInt(int(in.Fd()), unix.TIOCGPGRP); err != nil || pgrp != unix.Getpgrp() {
		return false, false
	}
	return askBackground(in, out, wait)
}

// askBackground is queryBackground's question and wait, on a terminal
// the process may read.
func askBackground(in, out *os.File, wait time.Duration) (dark, ok bool) {
	state, err := term.MakeRaw(in.Fd())
	if err != nil {
		return false, false
	}
	defer func() { _ = term.Restore(in.Fd(), state) }()
	if _, err := out.WriteString(oscBackgroundQuery + dsrQuery); err != nil {
		return false, false
	}
	var got []byte
	buf := make([]byte, 256)
	deadline := time.Now().Add(wait)
	for !dsrAnswered(got) && len(got) < 4096 {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		fds := []unix.PollFd{{Fd: int32(in.Fd()), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			break
		}
		if fds[0].Revents&unix.POLLIN == 0 {
			break
		}
		r, err := unix.Read(int(in.Fd()), buf)
		if r <= 0 || err != nil {
			break
		}
		got = append(got, buf[:r]...)
	}
	return oscBackground(got)
}
