package tui

import "github.com/charmbracelet/lipgloss"

// Styles are the lipgloss styles of top's views.
type Styles struct {
	Title        lipgloss.Style
	Stats        lipgloss.Style
	StatusOK     lipgloss.Style
	StatusWarn   lipgloss.Style
	StatusError  lipgloss.Style
	ColumnHeader lipgloss.Style
	Selected     lipgloss.Style
	Name         lipgloss.Style
	Labels       lipgloss.Style
	Value        lipgloss.Style
	Rate         lipgloss.Style
	Spark        lipgloss.Style
	Bar          lipgloss.Style
	Dim          lipgloss.Style
}

// DefaultStyles returns the default styles.
func DefaultStyles() Styles {
	return Styles{
		Title:        lipgloss.NewStyle().Bold(true),
		Stats:        lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#555555", Dark: "#AAAAAA"}),
		StatusOK:     lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#2E7D32", Dark: "#66BB6A"}),
		StatusWarn:   lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#B26A00", Dark: "#FFB74D"}),
		StatusError:  lipgloss.NewStyle().Bold(true).Foreground(lipgloss.AdaptiveColor{Light: "#C62828", Dark: "#EF5350"}),
		ColumnHeader: lipgloss.NewStyle().Bold(true).Underline(true),
		Selected:     lipgloss.NewStyle().Reverse(true),
		Name:         lipgloss.NewStyle(),
		Labels:       lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#4A4A8A", Dark: "#9FA8DA"}),
		Value:        lipgloss.NewStyle().Bold(true),
		Rate:         lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#00695C", Dark: "#4DB6AC"}),
		Spark:        lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#1565C0", Dark: "#64B5F6"}),
		Bar:          lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#6A1B9A", Dark: "#BA68C8"}),
		Dim:          lipgloss.NewStyle().Faint(true),
	}
}
