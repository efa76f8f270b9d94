// Package store is the adapter through which every promstore command reads
// and writes a Python multiprocess metrics store: a PROMETHEUS_MULTIPROC_DIR
// of *.db shards or the gunicorn-prometheus-exporter Redis layout.
//
// Nothing outside the backends knows a file offset, a file name or a Redis
// key, nor a backend's order of shards; commands see shards and samples,
// and ask the optional capabilities of capability.go (with As) for
// anything more. docs/formats.md describes the two stores.
package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Kind is a metric type as the shard names it.
type Kind string

// The metric kinds a shard can hold.
const (
	KindCounter   Kind = "counter"
	KindGauge     Kind = "gauge"
	KindHistogram Kind = "histogram"
	KindSummary   Kind = "summary"
)

// GaugeModes lists every multiprocess mode of a gauge, in Python's order.
var GaugeModes = []string{
	"all", "liveall", "min", "livemin", "max", "livemax",
	"sum", "livesum", "mostrecent", "livemostrecent",
}

// ValidGaugeMode reports whether m is one of GaugeModes.
func ValidGaugeMode(m string) bool {
	for _, g := range GaugeModes {
		if g == m {
			return true
		}
	}
	return false
}

// IsLiveMode reports whether a gauge mode is one of the live* modes whose
// shards Python's mark_process_dead removes.
func IsLiveMode(m string) bool { return strings.HasPrefix(m, "live") }

// ShardID names one process's samples of one kind (and gauge mode).
type ShardID struct {
	Kind Kind
	// Mode is the gauge multiprocess mode; empty for other kinds.
	Mode string
	// PID is the process identifier as the writer spelled it: usually a
	// decimal PID, but any string a program chose.
	PID string
}

// KindName is the shard's kind as the Redis layout spells it: "counter",
// "histogram", "summary" or "gauge_<mode>".
func (id ShardID) KindName() string {
	if id.Kind == KindGauge {
		return "gauge_" + id.Mode
	}
	return string(id.Kind)
}

// String is the shard's file base name without ".db", e.g. "gauge_all_4100".
func (id ShardID) String() string { return id.KindName() + "_" + id.PID }

// ParseKindName parses "counter", "histogram", "summary" or "gauge_<mode>"
// into a kind and gauge mode.
func ParseKindName(s string) (Kind, string, error) {
	switch s {
	case "counter", "histogram", "summary":
		return Kind(s), "", nil
	}
	if mode, ok := strings.CutPrefix(s, "gauge_"); ok {
		if !ValidGaugeMode(mode) {
			return "", "", fmt.Errorf("unknown gauge mode %q", mode)
		}
		return KindGauge, mode, nil
	}
	return "", "", fmt.Errorf("unknown metric kind %q", s)
}

// ParseShardName parses a shard file base name without ".db" the way
// Python's collector splits it on "_": type, [mode,] pid. The pid is the
// rest of the name, "_" included: a program may set a process identifier
// of its own ("web_1"), and Python's collector reads such files as well
// (it merges their samples by type and mode; the pid label of an
// all-mode gauge is another matter: see filestore).
func ParseShardName(base string) (ShardID, error) {
	// Cut rather than Split: a store of thousands of shards names each.
	if kind, rest, ok := strings.Cut(base, "_"); ok {
		switch kind {
		case "counter", "histogram", "summary":
			if rest == "" {
				return ShardID{}, fmt.Errorf("shard name %q: want <kind>_<pid>", base)
			}
			return ShardID{Kind: Kind(kind), PID: rest}, nil
		case "gauge":
			if mode, pid, ok := strings.Cut(rest, "_"); ok {
				if !ValidGaugeMode(mode) {
					return ShardID{}, fmt.Errorf("shard name %q: unknown gauge mode %q", base, mode)
				}
				if pid == "" {
					return ShardID{}, fmt.Errorf("shard name %q: want gauge_<mode>_<pid>", base)
				}
				return ShardID{Kind: KindGauge, Mode: mode, PID: pid}, nil
			}
		}
	}
	return ShardID{}, fmt.Errorf("shard name %q: not <kind>_<pid> or gauge_<mode>_<pid>", base)
}

// Label is one label name and value.
type Label struct {
	Name, Value string
}

// Key is a parsed sample key. Keys are shared between samples: never
// modify one you did not create.
type Key struct {
	// Text is the key exactly as stored, byte for byte.
	Text string
	// Family is the metric name (the family), e.g. "requests".
	Family string
	// Name is the sample name, e.g. "requests_total" or "latency_bucket".
	Name string
	// Labels in the order the key holds them (sorted by Python's encoder).
	Labels []Label
	// Help is the help text; LegacyHelp for 3-element keys.
	Help string
	// Legacy is true for a 3-element key written by prometheus_client < 0.16.
	Legacy bool
	// ID, when nonzero, is a small number the reader gave this key, dense
	// among the keys of one store, so that consumers can index by key
	// without hashing. Two keys may share an ID only if they come from
	// different stores; compare the pointer too.
	ID uint32
}

// LegacyHelp is the help Python shows for families of 3-element keys.
const LegacyHelp = "Multiprocess metric"

// Sample is one value of one process.
type Sample struct {
	Shard     ShardID
	Key       *Key
	Value     float64
	Timestamp float64
}

// Liveness says whether a shard's writer still runs.
type Liveness string

// Liveness values.
const (
	AliveYes     Liveness = "yes"
	AliveNo      Liveness = "no"
	AliveUnknown Liveness = "unknown"
)

// ShardInfo holds the facts about one shard that `ls` shows.
type ShardInfo struct {
	ID ShardID
	// Location is where the shard lives: a file path, or a Redis key pattern.
	Location string
	// Bytes is the storage the shard takes (file size; Redis memory where known).
	Bytes int64
	// Allocated is the disk space a file takes (st_blocks × 512), less than
	// Bytes for a sparse file (Python's shards are 1 MiB holes at first) and
	// what removing it gives back. Where not known (Redis) it equals Bytes.
	Allocated int64
	// Used is how many bytes of a file hold its header and entries (its
	// used size), 0 where it does not apply (Redis) or the file is unreadable.
	Used int64
	// Samples is the number of samples the shard holds.
	Samples int
	// Layout is 8 or 16 (bytes per value) for files, 0 where it does not apply.
	Layout int
	// Updated is the last update (file mtime; Redis updated_at).
	Updated time.Time
	// Alive says whether the pid runs; backends fill AliveUnknown.
	Alive Liveness
	// Problems lists what is wrong with the shard, empty when nothing is.
	Problems []string
	// Unreadable is true when some of the shard's samples could not be
	// read (reads skip them), so the shard must be neither merged nor
	// deleted; other problems (Redis orphan and modeless hashes beside a
	// shard) do not keep it from being read.
	Unreadable bool
}

// ScanFunc receives each sample of a scan. The sample's Key is shared and
// must not be modified. Returning an error stops the scan with that error.
type ScanFunc func(Sample) error

// Reader reads a store.
type Reader interface {
	// Scan streams every sample of every readable shard, shard by shard, in
	// an order that is stable while the store is unchanged (for files, the
	// directory order Python's collector reads them in). Shards that cannot be read are skipped and
	// reported in a *PartialError returned at the end; any other error
	// means the scan did not complete.
	Scan(ctx context.Context, fn ScanFunc) error
	// Shards lists the shards with their facts.
	Shards(ctx context.Context) ([]ShardInfo, error)
}

// Writer writes whole shards.
type Writer interface {
	// WriteShard stores samples in shard id: each sample replaces the one
	// with the same key text; other samples of the shard stay. Writing the
	// same shard twice leaves one copy.
	WriteShard(ctx context.Context, id ShardID, samples []Sample) error
	// DeleteShard removes a shard and everything in it. Deleting a shard
	// that does not exist is not an error.
	DeleteShard(ctx context.Context, id ShardID) error
}

// Store is an opened store.
type Store interface {
	Reader
	Writer
	// Describe names the store for humans (never with a password).
	Describe() string
	// Close releases connections and mappings.
	Close() error
}

// ShellWord quotes s for a POSIX shell when it holds anything but letters,
// digits and -_.:/@+,=, so that a flag value a message suggests can be
// pasted (--redis-prefix 'team a').
func ShellWord(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:/@+,=", r)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}
