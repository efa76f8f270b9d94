//go:build unix

package store

import (
	"errors"
	"syscall"
)

// processAlive probes pid with signal 0, which checks for existence and
// permission without delivering anything. EPERM means the process exists
// but belongs to someone else.
func processAlive(pid int) Liveness {
	err := syscall.Kill(pid, 0)
	switch {
	case err == nil, errors.Is(err, syscall.EPERM):
		return AliveYes
	case errors.Is(err, syscall.ESRCH):
		return AliveNo
	}
	return AliveUnknown
}
