package commands

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/promstore/promstore/internal/render"
)

// The text forms every command's human output shares: sizes, ages and
// table cells.

// formatBytes writes a size in binary units ("512 B", "1.5 KiB").
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// formatAge writes how long before now t was ("42s ago", "3m ago",
// "2h05m ago"), or the local date and time when longer ago than two days
// or later than now; "-" for the zero time.
func formatAge(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return t.Local().Format("2006-01-02 15:04:05")
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return t.Local().Format("2006-01-02 15:04")
}

// tableCell keeps a value on one line of a table: newline and CR shown
// escaped, a tab as a space.
func tableCell(s string) string {
	return strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", " ").Replace(s)
}

// tsvField escapes a field of a tab-separated line: backslash, tab,
// newline and CR as \\, \t, \n and \r (render.AppendTSVField).
func tsvField(s string) string {
	return string(render.AppendTSVField(nil, s))
}
