package store

import "strings"

// IsArchivePID reports whether pid names the archive shards that
// 'promstore cleanup' writes: "archive" (archives written before they had
// generations) or "archive-<n>", n a decimal number (the generation: a
// run writes n+1 and folds n into it). Such shards hold the merged
// samples of dead processes; they are not a process.
func IsArchivePID(pid string) bool {
	if pid == "archive" {
		return true
	}
	n, ok := strings.CutPrefix(pid, "archive-")
	return ok && DecimalPID(n)
}
