package store

import "strconv"

// ProcessAlive says whether the process with the given pid runs on this
// host. Only decimal pids greater than zero can be checked; any other pid
// (a name a program chose, or a pid of another host) is AliveUnknown, as
// is every pid on systems without signals.
//
// It only means something for stores on this host: callers showing a
// Redis store should report AliveUnknown instead.
func ProcessAlive(pid string) Liveness {
	if !DecimalPID(pid) {
		return AliveUnknown
	}
	n, _ := strconv.Atoi(pid)
	return processAlive(n)
}
