package tui

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
)

// top's colours come in a light and a dark variant (lipgloss.AdaptiveColor),
// and lipgloss asks the terminal for its background the first time it
// draws one. Asked while Bubble Tea reads the terminal, the answer goes to
// Bubble Tea instead (as keys), and lipgloss waits 5 s for it
// (charmbracelet/lipgloss#73); a terminal that never answers (a pty with
// nothing behind it) costs those 5 s too, eating what is typed meanwhile.
// So top asks once, before the program starts, and tells lipgloss the
// answer.

// backgroundWait bounds the wait for the terminal's answer: terminals
// answer within milliseconds, a remote one within a round trip.
const backgroundWait = time.Second

// SetTerminalBackground tells lipgloss whether the terminal top draws on
// has a dark background, so that it never asks itself: from $COLORFGBG
// when set, else by asking the terminal in and out are (the same
// terminal) and waiting at most a second for the answer; dark when
// neither tells (lipgloss' own default).
func SetTerminalBackground(in, out *os.File) {
	lipgloss.SetHasDarkBackground(darkBackground(in, out, os.Getenv, backgroundWait))
}

// darkBackground is what SetTerminalBackground decides.
func darkBackground(in, out *os.File, getenv func(string) string, wait time.Duration) bool {
	if dark, ok := colorFGBGDark(getenv("COLORFGBG")); ok {
		return dark
	}
	// screen and tmux may show on several terminals at once and do not
	// answer for one of them; lipgloss does not ask them either.
	term := getenv("TERM")
	if in == nil || out == nil || strings.HasPrefix(term, "screen") || strings.HasPrefix(term, "tmux") || strings.HasPrefix(term, "dumb") {
		return true
	}
	if dark, ok := queryBackground(in, out, wait); ok {
		return dark
	}
	return true
}

// colorFGBGDark reads $COLORFGBG ("fg;bg", or "fg;default;bg" as some
// terminals write it): whether its last field, an ANSI colour index, is
// a dark colour.
func colorFGBGDark(v string) (dark, ok bool) {
	i := strings.LastIndexByte(v, ';')
	if i < 0 {
		return false, false
	}
	n, err := strconv.Atoi(v[i+1:])
	if err != nil || n < 0 {
		return false, false
	}
	// Of the 16 ANSI colours, black and the six dim ones are dark (the
	// lightness of xterm's palette under one half, as lipgloss reckons).
	return n <= 6, true
}

// Queries: the background colour (OSC 11), then the cursor's position
// (DSR), which every terminal answers, so that its answer ends the wait
// whether or not the terminal knows OSC 11.
const (
	oscBackgroundQuery = "\x1b]11;?\x1b\\"
	dsrQuery           = "\x1b[6n"
)

// dsrAnswered reports whether b holds the cursor position report
// (ESC [ row ; col R) that ends a query's answers.
func dsrAnswered(b []byte) bool {
	for {
		i := bytes.Index(b, []byte("\x1b["))
		if i < 0 {
			return false
		}
		b = b[i+2:]
		j := 0
		for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == ';') {
			j++
		}
		if j > 0 && j < len(b) && b[j] == 'R' {
			return true
		}
	}
}

// oscBackground finds the answer to OSC 11 in b
// (ESC ] 11 ; rgb:R/G/B, ended by BEL or ESC \, each of R, G and B one to
// four hex digits) and returns whether that colour is dark.
func oscBackground(b []byte) (dark, ok bool) {
	i := bytes.Index(b, []byte("\x1b]11;rgb:"))
	if i < 0 {
		return false, false
	}
	b = b[i+len("\x1b]11;rgb:"):]
	end := bytes.IndexAny(b, "\a\x1b")
	if end < 0 {
		return false, false
	}
	parts := strings.Split(string(b[:end]), "/")
	if len(parts) != 3 {
		return false, false
	}
	var c [3]float64
	for k, p := range parts {
		if len(p) < 1 || len(p) > 4 {
			return false, false
		}
		v, err := strconv.ParseUint(p, 16, 16)
		if err != nil {
			return false, false
		}
		c[k] = float64(v) / float64(uint64(1)<<(4*len(p))-1)
	}
	// The lightness of HSL, as lipgloss reckons dark: under one half.
	return (max(c[0], c[1], c[2])+min(c[0], c[1], c[2]))/2 < 0.5, true
}
