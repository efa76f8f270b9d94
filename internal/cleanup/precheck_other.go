//go:build !unix

package cleanup

// writable is not checked ahead where access(2) does not exist: the run
// itself reports it.
func writable(string) error { return nil }

// freeBytes is not known here (-1): the run itself reports a full disk.
func freeBytes(string) (int64, error) { return -1, nil }
