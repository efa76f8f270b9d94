package tui

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a new pseudo-terminal: the terminal's side (master),
// where the test plays the terminal, and the program's side.
func openPTY(t *testing.T) (term, prog *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
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
	return m, s
}

// pending returns what the program wrote on term within wait.
func pending(t *testing.T, term *os.File, wait time.Duration) string {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(term.Fd()), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(wait.Milliseconds()))
	if err != nil || n == 0 {
		return ""
	}
	buf := make([]byte, 64)
	r, _ := unix.Read(int(term.Fd()), buf)
	return string(buf[:max(r, 0)])
}

// playTerminal reads what the program writes on term until it has asked
// both questions, then writes answer (nothing for a terminal that does
// not answer) and returns what it was asked.
func playTerminal(t *testing.T, term *os.File, answer string) <-chan string {
	t.Helper()
	asked := make(chan string, 1)
	go func() {
		var got []byte
		buf := make([]byte, 64)
		for !bytes.Contains(got, []byte(dsrQuery)) {
			n, err := term.Read(buf)
			if err != nil {
				break
			}
			got = append(got, buf[:n]...)
		}
		if answer != "" {
			_, _ = term.WriteString(answer)
		}
		asked <- string(got)
	}()
	return asked
}

func TestAskBackground(t *testing.T) {
	const dsr = "\x1b[24;1R"
	cases := []struct {
		name     string
		answer   string
		dark, ok bool
	}{
		{"white, ST", "\x1b]11;rgb:ffff/ffff/ffff\x1b\\" + dsr, false, true},
		{"black, BEL", "\x1b]11;rgb:0000/0000/0000\a" + dsr, true, true},
		{"solarized light, two digits", "\x1b]11;rgb:fd/f6/e3\a" + dsr, false, true},
		{"dark grey", "\x1b]11;rgb:2828/2c2c/3434\x1b\\" + dsr, true, true},
		// A key typed before the answers is passed over.
		{"keys first", "jk\x1b]11;rgb:ffff/ffff/ffff\x1b\\" + dsr, false, true},
		// A terminal without OSC 11 answers the position only: no wait.
		{"no OSC 11", dsr, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			term, prog := openPTY(t)
			before, err := unix.IoctlGetTermios(int(prog.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			asked := playTerminal(t, term, tc.answer)
			start := time.Now()
			dark, ok := askBackground(prog, prog, 10*time.Second)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v: the position report should end the wait", took)
			}
			if dark != tc.dark || ok != tc.ok {
				t.Errorf("dark, ok = %v, %v; want %v, %v", dark, ok, tc.dark, tc.ok)
			}
			if q := <-asked; q != oscBackgroundQuery+dsrQuery {
				t.Errorf("asked %q", q)
			}
			after, err := unix.IoctlGetTermios(int(prog.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			if *after != *before {
				t.Errorf("terminal mode not restored:\n%+v\n%+v", after, before)
			}
		})
	}
}

// A terminal that never answers costs the wait, not lipgloss' 5 s, and
// its mode is restored.
func TestAskBackgroundSilentTerminal(t *testing.T) {
	term, prog := openPTY(t)
	asked := playTerminal(t, term, "")
	start := time.Now()
	dark, ok := askBackground(prog, prog, 200*time.Millisecond)
	took := time.Since(start)
	if ok {
		t.Errorf("ok with no answer (dark %v)", dark)
	}
	if took < 200*time.Millisecond || took > 3*time.Second {
		t.Errorf("took %v, want the 200ms wait", took)
	}
	<-asked
	st, err := unix.IoctlGetTermios(int(prog.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if st.Lflag&unix.ICANON == 0 || st.Lflag&unix.ECHO == 0 {
		t.Errorf("terminal left raw: lflag %#x", st.Lflag)
	}
}

// A terminal that is not the process's controlling terminal (the process
// is not in its foreground) is not asked: reading it could stop the
// process.
func TestQueryBackgroundNotForeground(t *testing.T) {
	term, prog := openPTY(t)
	if _, ok := queryBackground(prog, prog, 200*time.Millisecond); ok {
		t.Error("ok from a terminal not asked")
	}
	if q := pending(t, term, 100*time.Millisecond); q != "" {
		t.Errorf("the terminal was asked %q", q)
	}
}

func TestDarkBackgroundWithoutAsking(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	cases := []struct {
		name string
		env  func(string) string
		dark bool
	}{
		{"COLORFGBG light", env("COLORFGBG", "0;15", "TERM", "xterm"), false},
		{"COLORFGBG dark", env("COLORFGBG", "15;0"), true},
		{"COLORFGBG three fields", env("COLORFGBG", "0;default;7"), false},
		{"COLORFGBG bright grey", env("COLORFGBG", "0;8"), false},
		{"tmux, light unknown", env("TERM", "tmux-256color"), true},
		{"screen", env("TERM", "screen"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			term, prog := openPTY(t)
			if got := darkBackground(prog, prog, tc.env, time.Second); got != tc.dark {
				t.Errorf("dark = %v, want %v", got, tc.dark)
			}
			if q := pending(t, term, 50*time.Millisecond); q != "" {
				t.Errorf("the terminal was asked %q", q)
			}
		})
	}
}

func TestOSCBackgroundParse(t *testing.T) {
	cases := []struct {
		in       string
		dark, ok bool
	}{
		{"\x1b]11;rgb:ffff/ffff/ffff\x1b\\", false, true},
		{"\x1b]11;rgb:0/0/0\a", true, true},
		{"\x1b]11;rgb:7f7f/7f7f/7f7f\a", true, true},
		{"\x1b]11;rgb:8080/8080/8080\a", false, true},
		{"\x1b]11;rgb:ffff/ffff\a", false, false},
		{"\x1b]11;rgb:ggg/0/0\a", false, false},
		{"\x1b]11;rgb:fffff/0/0\a", false, false},
		{"\x1b]11;rgb:ffff/ffff/ffff", false, false},
		{"\x1b]10;rgb:ffff/ffff/ffff\a", false, false},
	}
	for _, tc := range cases {
		dark, ok := oscBackground([]byte(tc.in))
		if dark != tc.dark || ok != tc.ok {
			t.Errorf("oscBackground(%q) = %v, %v; want %v, %v", tc.in, dark, ok, tc.dark, tc.ok)
		}
	}
}
