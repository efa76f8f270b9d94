//go:build unix

package testenv

import (
	"syscall"
	"time"
)

// CPUTime is the user and system CPU time this process has used so far.
// Benchmarks report it per operation because, unlike wall time, a busy
// machine does not inflate it.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
