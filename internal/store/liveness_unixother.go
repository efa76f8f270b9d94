//go:build unix && !linux

package store

// threadOnly is false where a thread's ID does not answer kill(2) as a
// process would.
func threadOnly(int) bool { return false }
