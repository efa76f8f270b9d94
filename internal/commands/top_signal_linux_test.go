package commands

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/promstore/promstore/internal/testenv"
)

// openPTY returns a new pseudo-terminal: the terminal's side, where the
// test plays the terminal, and the program's side.
func openPTY(t *testing.T) (term, prog *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		testenv.Unavailable(t, "no pseudo-terminals: "+err.Error())
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pts: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 100}); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestTopEndsOnSIGTERM: top in a terminal ends with status 130 when sent
// SIGTERM, SIGINT or SIGHUP, every time, the terminal restored. With Bubble Tea's own signal handler beside
// promstore's, it hung in raw mode in about half the runs (the handler
// blocked on a message nothing read any more).
func TestTopEndsOnSIGTERM(t *testing.T) {
	store := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	for i := range 6 {
		term, prog := openPTY(t)
		cmd := exec.Command(os.Args[0], "top", "--dir", store, "--interval", "1s")
		cmd.Env = append(os.Environ(), asPromstore+"=1", "TERM=xterm-256color", "COLORFGBG=15;0")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = prog, prog, prog
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Play the terminal: answer its queries, wait for the screen.
		var screen []byte
		buf := make([]byte, 4096)
		deadline := time.Now().Add(10 * time.Second)
		for !bytes.Contains(screen, []byte("app_events_total")) && time.Now().Before(deadline) {
			fds := []unix.PollFd{{Fd: int32(term.Fd()), Events: unix.POLLIN}}
			if n, _ := unix.Poll(fds, 200); n == 0 {
				continue
			}
			n, err := unix.Read(int(term.Fd()), buf)
			if err != nil || n <= 0 {
				break
			}
			screen = append(screen, buf[:n]...)
			if bytes.Contains(buf[:n], []byte("\x1b[6n")) {
				_, _ = term.WriteString("\x1b]11;rgb:0000/0000/0000\x1b\\\x1b[1;1R")
			}
		}
		if !bytes.Contains(screen, []byte("app_events_total")) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("run %d: top drew no screen (%d bytes)", i, len(screen))
		}
		time.Sleep(300 * time.Millisecond)
		sig := []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP}[i%3]
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Drain what it writes on the way out.
		go func() {
			for {
				if _, err := term.Read(buf); err != nil {
					return
				}
			}
		}()
		select {
		case err := <-done:
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			if code != 130 {
				t.Errorf("run %d: %v: exit status %d, want 130 (%v)", i, sig, code, err)
			}
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("run %d: top still running 5 s after %v", i, sig)
		}
		st, err := unix.IoctlGetTermios(int(prog.Fd()), unix.TCGETS)
		if err == nil && (st.Lflag&unix.ICANON == 0 || st.Lflag&unix.ECHO == 0) {
			t.Errorf("run %d: terminal left raw: %s", i, strings.TrimSpace(fmt.Sprintf("lflag %#x", st.Lflag)))
		}
	}
}
