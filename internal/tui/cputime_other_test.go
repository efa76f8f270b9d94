//go:build !unix

package tui

import "time"

// cpuTime is unknown without getrusage; benchmarks then report zero.
func cpuTime() time.Duration { return 0 }
