//go:build unix

package store

import (
	"errors"
	"syscall"
)

// processAlive probes pid with signal 0, which checks for existence and
// permission without delivering anything. EPERM means the process exists
// but belongs to someone else. On Linux a thread's ID answers the probe
// too (the signal goes to its process): a dead worker's pid that the
// kernel gave to a thread of another process is no process (see
// threadOnly).
func processAlive(pid int) Liveness {
	err := syscall.Kill(pid, 0)
	switch {
	case err == nil, errors.Is(err, syscall.EPERM):
		if threadOnly(pid) {
			return AliveNo
		}
		return AliveYes
	case errors.Is(err, syscall.ESRCH):
		return AliveNo
	}
	return AliveUnknown
}
