//go:build unix

package tui

import (
	"syscall"
	"time"
)

// cpuTime is the user and system CPU time this process has used, which,
// unlike wall time, a busy machine does not inflate.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
