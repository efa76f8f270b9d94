// Package fsck checks a multiprocess store shard by shard and repairs a
// directory so that Python's own collector reads it again: corrupt shards
// are rewritten with every entry that can still be read, empty and
// foreign files are moved to a quarantine directory, never deleted.
package fsck

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/promstore/promstore/internal/cleanup"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
)

// Problem kinds found across shards or outside the shards' bytes (the
// per-file kinds are filestore's Problem* constants).
const (
	KindForeign       = "foreign"         // a *.db file whose name is not a shard's
	KindKindMismatch  = "kind-mismatch"   // a sample whose name does not fit its shard's kind
	KindTypeMismatch  = "type-mismatch"   // one family under several kinds or gauge modes
	KindHelpMismatch  = "help-mismatch"   // one family with several help texts
	KindBucketsDiffer = "buckets-differ"  // a histogram's buckets differ between pids
	KindPIDCollision  = "pid-collision"   // a shard mapped by several live processes
	KindRedis         = "redis-key"       // a problem the Redis reader names (orphan, modeless, malformed)
	KindBarrier       = "cleanup-barrier" // filestore.BarrierName: a cleanup runs or was killed
	KindMixedLayout   = "mixed-layout"    // shards of both entry layouts in one directory
)

// Repair actions.
const (
	RepairRewrite    = "rewrite"    // rewritten with its readable entries, original quarantined
	RepairQuarantine = "quarantine" // moved to the quarantine directory
	RepairRemove     = "remove"     // removed (a cleanup barrier no cleanup needs)
)

// Problem is one thing wrong with a store.
type Problem struct {
	// Shard names the shard (file name, Redis shard) or, for problems of
	// a family across shards, the family.
	Shard  string `json:"shard"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
	// Repair is what --repair does about it; empty when it leaves it
	// (Detail says why).
	Repair string `json:"repair,omitempty"`
	// Salvaged and Lost count a rewritten shard's entries kept and the
	// entries known to be lost (unknown past the first bad one: 0).
	Salvaged int `json:"salvaged,omitempty"`
	// Done is true once the repair was carried out.
	Done bool `json:"repaired,omitempty"`
	// Quarantined is where the original went.
	Quarantined string `json:"quarantined,omitempty"`

	path string
	in   *filestore.Inspection
}

// Report is the outcome of a check (and repair).
type Report struct {
	Store    string    `json:"store"`
	Shards   int       `json:"shards"`
	Samples  int       `json:"samples"`
	Problems []Problem `json:"problems"`
	// DryRun is true when the repairs were only planned.
	DryRun bool `json:"dry_run,omitempty"`
	// Quarantine is the quarantine directory of a repair.
	Quarantine string `json:"quarantine,omitempty"`
}

// Clean reports whether no problem was found.
func (r *Report) Clean() bool { return len(r.Problems) == 0 }

func (r *Report) add(p Problem) { r.Problems = append(r.Problems, p) }

// sort orders problems by shard, then kind.
func (r *Report) sort() {
	sort.SliceStable(r.Problems, func(i, j int) bool {
		a, b := &r.Problems[i], &r.Problems[j]
		if a.Shard != b.Shard {
			return a.Shard < b.Shard
		}
		return a.Kind < b.Kind
	})
}

// CheckDir checks every *.db file of a multiprocess directory.
func CheckDir(ctx context.Context, dir string) (*Report, error) {
	names, types, err := dbFiles(dir)
	if err != nil {
		return nil, err
	}
	r := &Report{Store: "dir " + dir}
	xc := newCrossCheck()
	byLayout := map[int][]string{} // the sound shards of each entry layout
	var ins filestore.Inspector    // each key text parsed once
	hint := 0
	for i, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		path := filepath.Join(dir, name)
		if name == filestore.BarrierName {
			r.add(Problem{Shard: name, Kind: KindBarrier, Repair: RepairRemove, path: path,
				Detail: "the barrier of a cleanup that is running, or was killed (then its journal " + cleanup.JournalName + " is there too): " +
					"Python's collector fails every scrape while it exists, instead of counting samples twice; promstore's readers skip it. " +
					"promstore cleanup finishes an interrupted run and removes it; --repair removes it when no journal is left"})
			continue
		}
		id, _, nameErr := filestore.ShardFile(name)
		if typ := types[i]; nameErr != nil || !typ.IsRegular() {
			p := Problem{Shard: name, Kind: KindForeign, Repair: RepairQuarantine, path: path}
			switch kind, reads := pythonReadsName(name); {
			case nameErr == nil || (!typ.IsRegular() && typ&fs.ModeSymlink == 0):
				// What Python does with a directory or FIFO does not
				// depend on its name: it opens it first.
				p.Detail = notRegular(path, typ)
				if nameErr != nil {
					p.Detail = fmt.Sprintf("not a shard (%v) and %s", nameErr, p.Detail)
				}
			case reads:
				// Moving it would take its samples out of what Python
				// serves (a counter would go backwards).
				p.Repair = ""
				p.Detail = fmt.Sprintf("not a shard to promstore (%v), whose readers skip it; Python's collector reads it as a shard of kind %s and serves its samples; left as it is (rename it to a shard's name when no process writes it)", nameErr, kind)
			default:
				p.Detail = fmt.Sprintf("not a shard: %v; Python's collector fails on it once it holds an entry", nameErr)
			}
			r.add(p)
			continue
		}
		in, err := ins.File(path, hint)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since the listing (a cleanup, a restart)
		}
		r.Shards++
		if err != nil {
			r.add(Problem{Shard: name, Kind: filestore.ProblemIO, Detail: err.Error(), path: path})
			continue
		}
		if in.Layout != 0 && in.Sound() {
			hint = in.Layout
			byLayout[in.Layout] = append(byLayout[in.Layout], name)
		}
		r.Samples += len(in.Entries)
		fileProblems(r, name, path, in)
		for _, e := range in.Entries {
			xc.add(name, id, e.Key)
		}
	}
	mixedLayouts(r, byLayout, dir)
	inDirLayout(r, byLayout)
	xc.report(r)
	for _, c := range mappedBy(dir, names) {
		r.add(c)
	}
	r.sort()
	return r, nil
}

// mixedLayouts reports the shards of the rarer entry layout when a
// directory holds both (8 bytes an entry's value: prometheus_client
// before 0.18; 16, value and timestamp: 0.18 and later). Nothing in a
// file says which it has, and Python's collector reads every file with
// its own release's: whichever release reads the directory fails on the
// other's files (a client upgraded, or downgraded, without emptying the
// directory; a rollback migrated into it in the other layout).
func mixedLayouts(r *Report, byLayout map[int][]string, dir string) {
	old, cur := byLayout[filestore.LayoutLegacy], byLayout[filestore.LayoutTimestamp]
	if len(old) == 0 || len(cur) == 0 {
		return
	}
	few, many, fewL, manyL := old, cur, "8-byte layout (prometheus_client before 0.18)", "16-byte layout (0.18 and later)"
	if len(cur) < len(old) {
		few, many, fewL, manyL = cur, old, manyL, fewL
	}
	for _, name := range few {
		r.add(Problem{Shard: name, Kind: KindMixedLayout, path: filepath.Join(dir, name),
			Detail: fmt.Sprintf("the %s, where %d other shards have the %s: Python's collector of either release fails on the other's files; left as they are (remove the older release's shards once no process of it runs, or migrate the directory into one layout)", fewL, len(many), manyL)})
	}
}

// inDirLayout makes the shards to rewrite keep the entry layout of the
// directory's sound shards (the more numerous one's, when it holds both).
// A damaged shard's own bytes may not tell its layout: one cut short
// within its first entry's timestamp reads as a whole entry in the 8-byte
// layout only, and one whose second entry is damaged reads one entry in
// either. Rewritten in the other layout, it would make the directory one
// that Python's collector of either release fails on (mixed-layout); in
// the directory's, its values are kept and read (timestamps, which the
// 8-byte layout has none of, are 0 in the 16-byte one, as an entry never
// set() holds them; entries read in the 16-byte layout lose theirs in the
// 8-byte one, which its clients never read).
func inDirLayout(r *Report, byLayout map[int][]string) {
	old, cur := len(byLayout[filestore.LayoutLegacy]), len(byLayout[filestore.LayoutTimestamp])
	layout := filestore.LayoutTimestamp
	switch {
	case old == cur:
		return
	case old > cur:
		layout = filestore.LayoutLegacy
	}
	for i := range r.Problems {
		p := &r.Problems[i]
		if p.Repair != RepairRewrite || p.in == nil || p.in.Layout == layout {
			continue
		}
		// A tie between the layouts goes to the hint: read again so,
		// the detail names what is wrong in the directory's layout.
		if again, err := filestore.InspectFile(p.path, layout); err == nil && again.Layout == layout &&
			len(again.Entries) == len(p.in.Entries) && again.Problem != "" {
			p.in, p.Detail = again, fmt.Sprintf("%s; %d entries readable before it", again.Detail, len(again.Entries))
			continue
		}
		in := *p.in
		in.Layout = layout
		p.in = &in
		p.Detail += fmt.Sprintf("; a repair writes it in the %d-byte layout of the directory's other shards", layout)
	}
}

// dbFiles lists the names Python's glob("*.db") finds, in name order,
// with their types as the listing gives them (a file removed or replaced
// after it is found out when it is opened).
func dbFiles(dir string) ([]string, []fs.FileMode, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var names []string
	var types []fs.FileMode
	for _, e := range ents {
		n := e.Name()
		if _, ok, _ := filestore.ShardFile(n); ok {
			names, types = append(names, n), append(types, e.Type())
		}
	}
	return names, types, nil
}

func fileProblems(r *Report, name, path string, in *filestore.Inspection) {
	if !in.Sound() {
		p := Problem{Shard: name, Kind: in.Problem, Detail: in.Detail, path: path, in: in, Salvaged: len(in.Entries)}
		switch {
		case len(in.Entries) > 0:
			p.Repair = RepairRewrite
			p.Detail += fmt.Sprintf("; %d entries readable before it", len(in.Entries))
		case in.Problem == filestore.ProblemHeader && in.Used > 0 && in.Used < 8:
			// Python reads it as empty; nothing to salvage.
			p.Repair = RepairQuarantine
		default:
			p.Repair = RepairQuarantine
		}
		r.add(p)
	}
	if in.PastUsed > 0 {
		r.add(Problem{Shard: name, Kind: filestore.ProblemPastUsed, path: path,
			Detail: fmt.Sprintf("%d whole entries after used size %d, which no reader sees (a writer killed between writing an entry and raising the used size); left as they are", in.PastUsed, in.Used)})
	}
	if len(in.Duplicates) > 0 {
		r.add(Problem{Shard: name, Kind: filestore.ProblemDuplicate, path: path,
			Detail: fmt.Sprintf("%d keys occur more than once (Python's collector %s; its writer updates only the last), first %s; left as they are", len(in.Duplicates), duplicateRule(name), in.Duplicates[0])})
	}
}

// duplicateRule says what Python's collector (prometheus_client 0.16's
// MultiProcessCollector._accumulate_metrics) makes of a key that occurs
// twice in the shard named name: it reads every occurrence as a sample
// and merges them as it merges the samples of several processes.
func duplicateRule(name string) string {
	id, _, err := filestore.ShardFile(name)
	if err != nil || id.Kind != store.KindGauge {
		return "adds them up" // counters, histograms, summaries
	}
	switch strings.TrimPrefix(id.Mode, "live") {
	case "min":
		return "keeps the smallest"
	case "max":
		return "keeps the largest"
	case "sum":
		return "adds them up"
	case "mostrecent":
		return "of 0.18 and later keeps the one with the greatest timestamp; older releases, which know no such mode, keep the last"
	}
	return "keeps the last, as its one sample for this pid" // all, liveall
}

// CheckStore checks a store through the store adapter (a Redis store):
// every key its scan cannot read (orphan metric hashes, values that do
// not parse, keys of the wrong type), each metric hash's own meta hash
// (which Python's collector reads for it, where a read names every
// metric hash of an md5 by one of them), and the checks across shards. The
// modeless gauge hashes the listing notes are the exporter's normal
// artefacts, not problems.
func CheckStore(ctx context.Context, st store.Store) (*Report, error) {
	r := &Report{Store: st.Describe()}
	// Every record on its own: in Redis, each metric hash's meta hash,
	// which Python's collector reads for it.
	store.CheckEveryRecord(st, true)
	defer store.CheckEveryRecord(st, false)
	infos, err := st.Shards(ctx)
	if _, partial := store.Partial(err); err != nil && !partial {
		return nil, err
	}
	// The keys the listing found in no shard (a name that is not UTF-8,
	// an unknown kind) come again from the scan, as problems.
	r.Shards = len(infos)
	xc := newCrossCheck()
	scanErr := st.Scan(ctx, func(s store.Sample) error {
		r.Samples++
		xc.add(s.Shard.String(), s.Shard, s.Key)
		return nil
	})
	if problems, ok := store.Partial(scanErr); ok {
		for _, p := range problems {
			// Reason or Err may be empty (a value that does not parse
			// has only its error): no empty part before a colon.
			detail := p.Reason
			if p.Err != nil {
				if detail != "" {
					detail += ": "
				}
				detail += p.Err.Error()
			}
			r.add(Problem{Shard: p.Shard, Kind: KindRedis, Detail: detail})
		}
	} else if scanErr != nil {
		return nil, scanErr
	}
	xc.report(r)
	r.sort()
	return r, nil
}

// pythonReadsName reports whether Python's collector reads a file name
// promstore takes for no shard's as a shard, and of which kind: it splits
// the name at "_" and takes the first part for the kind (any metric type
// it knows, info_1.db's samples merging into the family as a counter's
// do; another fails the collector on the file's first entry); a gauge's
// second part is its mode (one it does not know merges as mode "all")
// and the third its pid.
func pythonReadsName(name string) (kind string, ok bool) {
	parts := strings.Split(name, "_")
	switch parts[0] {
	case "counter", "histogram", "summary", "gaugehistogram", "unknown", "info", "stateset":
		return parts[0], len(parts) >= 2
	case "gauge":
		return parts[0], len(parts) >= 3
	}
	return "", false
}

// notRegular describes a shard name that is not a regular file (type
// typ, as listed): what promstore's readers do with it (they skip it) and
// what Python's collector does, which opens every *.db name it globs.
func notRegular(path string, typ fs.FileMode) string {
	const skipped = "; promstore's readers skip it"
	switch {
	case typ&fs.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			return fmt.Sprintf("a symbolic link to %q, which cannot be opened (%v)%s; Python's collector fails on it", target, err, skipped)
		case fi.Mode().IsRegular():
			return fmt.Sprintf("a symbolic link to %q%s (links are not followed); Python's collector follows it and counts that file's samples as this shard's "+
				"(twice, when it is a shard of this directory too)", target, skipped)
		default:
			return fmt.Sprintf("a symbolic link to %q, %s%s", target, notRegularPython(fi.Mode()), skipped)
		}
	default:
		return notRegularPython(typ) + skipped
	}
}

// notRegularPython says what a file of type typ that is not a regular
// file is, and what Python's collector does when it opens it.
func notRegularPython(typ fs.FileMode) string {
	switch {
	case typ.IsDir():
		return "a directory; Python's collector fails on it (IsADirectoryError)"
	case typ&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO); Python's collector waits on it for a writer: its scrapes hang"
	case typ&fs.ModeSocket != 0:
		return "a socket; Python's collector fails on it"
	case typ&fs.ModeDevice != 0:
		return "a device; Python's collector reads it as a shard"
	}
	return fmt.Sprintf("not a regular file (mode %s); Python's collector fails on it", typ)
}
