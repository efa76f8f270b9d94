package commands

import (
	"io"
	"os"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/mattn/go-isatty"
)

// IOStreams are the streams a command uses: data to Out, progress and
// warnings to ErrOut. Commands never touch os.Stdout directly.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// OutTTY and ErrTTY say whether Out and ErrOut are terminals.
	OutTTY, ErrTTY bool
}

// SystemIO returns the process's standard streams.
func SystemIO() *IOStreams {
	return &IOStreams{
		In:     os.Stdin,
		Out:    os.Stdout,
		ErrOut: os.Stderr,
		OutTTY: isTerminal(os.Stdout),
		ErrTTY: isTerminal(os.Stderr),
	}
}

func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// ColorScheme styles text written to Out; every style is plain when Out
// is not a terminal. Commands colour output only through it.
type ColorScheme struct {
	on                bool
	bold, warn, faint lipgloss.Style
}

// ColorScheme returns the styles for Out.
func (s *IOStreams) ColorScheme() *ColorScheme {
	if !s.OutTTY {
		return &ColorScheme{}
	}
	re := lipgloss.NewRenderer(s.Out)
	return &ColorScheme{on: true, bold: re.NewStyle().Bold(true), warn: re.NewStyle().Foreground(lipgloss.Color("3")), faint: re.NewStyle().Faint(true)}
}

// Enabled reports whether the styles colour anything.
func (c *ColorScheme) Enabled() bool { return c.on }

// Bold is t in bold (headers).
func (c *ColorScheme) Bold(t string) string { return c.render(c.bold, t) }

// Warn is t in the warning colour (yellow).
func (c *ColorScheme) Warn(t string) string { return c.render(c.warn, t) }

// Faint is t faint (what no longer runs).
func (c *ColorScheme) Faint(t string) string { return c.render(c.faint, t) }

func (c *ColorScheme) render(st lipgloss.Style, t string) string {
	if !c.on {
		return t
	}
	return st.Render(t)
}

// EraseLine is what takes ErrOut back to the start of its line and
// erases it, for a progress line redrawn in place on a terminal.
func (s *IOStreams) EraseLine() string { return "\r" + ansi.EraseLineRight }
