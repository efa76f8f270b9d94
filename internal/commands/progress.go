package commands

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/promstore/promstore/internal/migrate"
)

// progressBar draws a one-line progress bar on ErrOut when it is a
// terminal, at most once per interval.
type progressBar struct {
	w        io.Writer
	on       bool
	interval time.Duration
	last     time.Time
	drawn    bool
	erase    string // IOStreams.EraseLine
}

func newProgressBar(io *IOStreams, interval time.Duration) *progressBar {
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	return &progressBar{w: io.ErrOut, on: io.ErrTTY, interval: interval, erase: io.EraseLine()}
}

func (b *progressBar) update(p migrate.Progress) {
	if !b.on {
		return
	}
	if t := time.Now(); t.Sub(b.last) >= b.interval || p.Shards == p.TotalShards {
		b.last = t
		fmt.Fprint(b.w, b.erase+progressLine(p, 30))
		b.drawn = true
	}
}

func (b *progressBar) done() {
	if b.drawn {
		fmt.Fprint(b.w, b.erase)
	}
}

// progressLine renders e.g.
// "[=========>          ] 12/52 shards  4000/10000 samples  5876/s  ETA 1s".
func progressLine(p migrate.Progress, width int) string {
	frac := 1.0
	if p.TotalSamples > 0 {
		frac = float64(p.Samples) / float64(p.TotalSamples)
	}
	fill := int(frac * float64(width))
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat(" ", width-fill-1)
	}
	eta := "-"
	if d := p.ETA(); d > 0 {
		eta = d.Round(time.Second).String()
	}
	return fmt.Sprintf("[%s] %d/%d shards  %d/%d samples  %.0f/s  ETA %s",
		bar, p.Shards, p.TotalShards, p.Samples, p.TotalSamples, p.Rate(), eta)
}
