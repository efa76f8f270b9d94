package tui

// snapshotMsg carries the outcome of one read of the source.
type snapshotMsg struct {
	snap *Snapshot
	err  error
}

// tickMsg asks for the next read. Only the tick whose id matches the
// model's current one counts, so stale ticks (after a pause, or a read
// started by hand) never start a second read.
type tickMsg struct {
	id int
}
