package tui

import "github.com/charmbracelet/bubbles/key"

// KeyMap holds the key bindings of top. It implements help.KeyMap.
type KeyMap struct {
	Up, Down, PageUp, PageDown, Home, End key.Binding

	SortName, SortValue, SortRate key.Binding
	Filter                        key.Binding
	ToggleRate                    key.Binding
	Pause                         key.Binding
	Breakdown                     key.Binding
	Histogram                     key.Binding
	Skipped                       key.Binding
	Back                          key.Binding
	Help                          key.Binding
	Quit                          key.Binding

	// AcceptFilter and CancelFilter end the editing of a filter.
	AcceptFilter, CancelFilter key.Binding
	// ForceQuit quits even while a filter is being typed.
	ForceQuit key.Binding
}

// DefaultKeyMap returns the default key bindings.
func DefaultKeyMap() KeyMap {
	return KeyMap{
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		PageUp:   key.NewBinding(key.WithKeys("pgup", "b"), key.WithHelp("pgup/b", "page up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown", "f"), key.WithHelp("pgdn/f", "page down")),
		Home:     key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g/home", "first")),
		End:      key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G/end", "last")),

		SortName:   key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "sort by name")),
		SortValue:  key.NewBinding(key.WithKeys("v"), key.WithHelp("v", "sort by value")),
		SortRate:   key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "sort by rate")),
		Filter:     key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		ToggleRate: key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "history: value/rate")),
		Pause:      key.NewBinding(key.WithKeys("p", " "), key.WithHelp("p", "pause")),
		Breakdown:  key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "per process")),
		Histogram:  key.NewBinding(key.WithKeys("h"), key.WithHelp("h", "histogram")),
		Skipped:    key.NewBinding(key.WithKeys("w"), key.WithHelp("w", "skipped shards")),
		Back:       key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Help:       key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:       key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),

		AcceptFilter: key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply filter")),
		CancelFilter: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel filter")),
		ForceQuit:    key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
	}
}

// ShortHelp returns the bindings shown in the one-line help, which a
// narrow terminal cuts: how to get the full help and how to quit first.
func (k KeyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Help, k.Quit, k.Filter, k.SortValue, k.SortRate, k.Breakdown, k.Histogram, k.Pause}
}

// FullHelp returns the bindings shown by `?`, in columns.
func (k KeyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Up, k.Down, k.PageUp, k.PageDown, k.Home, k.End},
		{k.SortName, k.SortValue, k.SortRate, k.Filter, k.ToggleRate},
		{k.Breakdown, k.Histogram, k.Skipped, k.Back, k.Pause, k.Help, k.Quit},
	}
}
