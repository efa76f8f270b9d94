package store

import (
	"bytes"
	"os"
	"strconv"
	"sync"
)

// threadOnly reports whether id, which the kernel knows, is the ID of a
// thread that does not lead its thread group: a thread of another
// process, not a process of that pid. It reads the Tgid field of
// /proc/<id>/status. Where /proc is missing, or is not of this process's
// pid namespace (/proc/self is not our pid: a pid there may be another
// process than the one kill(2) found), it reports false and the probe's
// answer stands: a process is never taken for dead on a doubt.
func threadOnly(id int) bool {
	if !procIsOurs() {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(id) + "/status")
	if err != nil {
		return false
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("Tgid:")); ok {
			tgid, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			return err == nil && tgid > 0 && tgid != id
		}
	}
	return false
}

// procIsOurs reports whether /proc shows this process's pid namespace.
var procIsOurs = sync.OnceValue(func() bool {
	self, err := os.Readlink("/proc/self")
	return err == nil && self == strconv.Itoa(os.Getpid())
})
