// Package cleanup removes and compacts the shards of processes that no
// longer run, so that a long-lived multiprocess store stops growing with
// every worker restart while its aggregated output stays the same.
//
// # What happens to the shards of a selected (dead) pid
//
//   - live* gauge shards (liveall, livemin, livemax, livesum,
//     livemostrecent) are removed: this is what Python's
//     mark_process_dead does, and the only change to the output.
//   - counter, histogram and summary shards and gauge shards of modes
//     min, max, sum and mostrecent are compacted: their samples are merged
//     into one archive shard per kind and mode, whose pid names the
//     run's generation ("counter_archive-3.db", "gauge_max_archive-3.db",
//     or "<prefix>:counter:archive-3:..." in Redis; "archive" without a
//     number was written before generations). Archives are compacted
//     further on later runs, so a store holds at most one per kind and
//     mode.
//   - gauge shards of mode all are kept (each carries its pid as a label,
//     so there is nothing to merge) unless Options.DropDeadGauges.
//
// # Merge rules of an archive (per sample key text)
//
// counter, histogram (buckets are stored per le, not cumulative), summary
// and gauge sum: the sum. The sum adds the dead values apart from the
// live ones, an order of additions that a float sum can feel: values
// near the float range that overflow to +Inf in one order and meet a
// -Inf in it give NaN where the directory order gave -Inf, or the
// reverse. Gauge mostrecent: the value with the greatest
// timestamp, with that timestamp; ties keep the first in scan order; a
// series never set (timestamp 0) stays 0 and so stays out of the output.
//
// Gauge min/max need care with NaN. Python's collector starts with the
// first value it meets and replaces it only by a strictly smaller
// (greater) one, so a NaN met first wins and a NaN met later never does;
// compaction moves the dead values to the archive's place in the order.
// For files that order is the directory order, which promstore shares
// with Python and in which a new archive file lands where the file system
// puts it; the plan assumes name order ("archive" after decimal pids), so
// this is a best effort there. The archive value is the minimum (maximum) of the merged values
// that are not NaN, unless NaN is what keeps the output unchanged given
// where the archive sorts among the kept shards holding the series (e.g.
// every process of the series is dead and the first one held NaN). The
// output is the same as before whenever one of these two values can make
// it so; the remaining case (a live pid's NaN now met first where a dead
// number was, or the reverse) changes which value is first, as Python's
// own output changes with its directory listing order. Which help text a
// family shows when processes disagree on it, and mostrecent ties of
// identical timestamps, can likewise follow the new order.
//
// # Archive layout
//
// An archive file is written in the layout of the shards it merges
// (itself included): 8 bytes per value when every one of them has the
// 8-byte layout of prometheus_client < 0.18, else 16. Shards holding
// 3-element keys (prometheus_client < 0.16) are not compacted, because
// an archive holds 4-element keys that such a client cannot read.
//
// # Crash safety: the journal
//
// A run first computes every archive's complete new contents (absolute
// values, existing archive included), then writes a journal listing
// those contents and every shard to delete, durably (temporary file,
// fsync, rename; a Redis key in Redis). Only then does it write each
// archive and delete that archive's sources, then delete the live*
// (and dropped) gauge shards, then remove the journal. A run that finds
// a journal first applies it again (writing an archive with the same
// absolute values twice changes nothing, deleting a deleted shard is not
// an error) and never merges its sources again, so a run killed at any
// step and run again ends in the state of an uninterrupted run and no
// sample is counted twice. Runs hold a lock (flock on a file in the
// directory; a Redis key with an expiry) so two never interleave.
//
// # Readers
//
// promstore's readers (Consistent) hold the store's Gate shared for a
// whole read, and a run holds it exclusively only while it saves and
// while it removes its journal; a read that finds a journal reads the
// store as the journal leaves it. So a promstore read is exact at every
// step, and the steps themselves need no lock.
//
// Other readers (Python's collector, the exporter's) see the steps as
// they happen, and list a store before reading it. Each run's archives
// get a new name (generation n+1 folds generation n and the sources), so
// a listing that holds a new archive was not finished before it
// appeared. On a standalone Redis an archive, the deletion of its
// sources and of the archive it replaces are one MULTI/EXEC (see
// Target.Replace): such a reader never counts twice (it can miss
// samples: a key listed before the transaction and read after it). In a
// file store a barrier (filestore.BarrierName) stands from before an
// archive appears until its sources are gone: Python's collector fails
// on it instead of counting twice (barrier.go). A Redis Cluster has
// neither: other readers can count twice there while a step runs.
//
// # Safety against wrong liveness answers
//
// Pid checks are made right before planning and again right before the
// journal is written (a pid that started running in between aborts the
// run without changes), and once more after the run, to warn about pid
// reuse. A pid whose shards changed within Options.MinIdle is never
// treated as dead. When shards changed recently but none of their pids is
// visible, Plan refuses: those processes may have just exited, migrate
// redis-to-file may have written the shards (it stamps the files with the
// time it writes them; file-to-redis keeps each source file's mtime as
// the keys' updated_at), or promstore runs in another pid namespace (a sidecar
// container), where every pid looks dead. The refusal names that
// namespace only when no pid of the store is visible (freshPIDsRefusal).
package cleanup
