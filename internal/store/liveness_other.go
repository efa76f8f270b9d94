//go:build !unix

package store

// processAlive cannot probe processes without Unix signals.
func processAlive(int) Liveness { return AliveUnknown }
