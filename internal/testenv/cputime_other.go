//go:build !unix

package testenv

import "time"

// CPUTime is unknown without getrusage; benchmarks then report zero.
func CPUTime() time.Duration { return 0 }
