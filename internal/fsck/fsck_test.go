package fsck

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/promstore/promstore/internal/cleanup"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
)

type ent struct {
	key string
	v   float64
}

// shard builds the bytes of a shard file as Python writes it: header,
// entries in the given layout, zeros up to size (when larger).
func shard(layout int, size int, ents ...ent) []byte {
	b := make([]byte, 8)
	for _, e := range ents {
		n := len(e.key)
		b = binary.LittleEndian.AppendUint32(b, uint32(n))
		b = append(b, e.key...)
		b = append(b, strings.Repeat(" ", 8-(n+4)%8)...)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(e.v))
		if layout == 16 {
			b = binary.LittleEndian.AppendUint64(b, 0)
		}
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	if len(b) < size {
		b = append(b, make([]byte, size-len(b))...)
	}
	return b
}

func key(family, name, help string, labels ...string) string {
	var ls []string
	for i := 0; i+1 < len(labels); i += 2 {
		ls = append(ls, `"`+labels[i]+`": "`+labels[i+1]+`"`)
	}
	return `["` + family + `", "` + name + `", {` + strings.Join(ls, ", ") + `}, "` + help + `"]`
}

var (
	c1 = ent{key("req", "req_total", "Requests.", "route", "/a"), 3}
	c2 = ent{key("req", "req_total", "Requests.", "route", "/b"), 4}
	c3 = ent{key("req", "req_total", "Requests.", "route", "/c"), 5}
)

func write(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckNamesEveryKind(t *testing.T) {
	good := shard(16, 4096, c1, c2, c3)
	tests := []struct {
		name   string
		files  map[string][]byte
		mkdir  string    // a directory named like a shard
		fifo   string    // a named pipe of this name
		link   [2]string // a symbolic link: its name and target
		shard  string
		kind   string
		detail string
		repair string
		kept   int
	}{
		{name: "empty file", files: map[string][]byte{"counter_1.db": {}},
			shard: "counter_1.db", kind: filestore.ProblemEmpty, detail: "empty file (0 bytes)", repair: RepairQuarantine},
		{name: "shorter than the header", files: map[string][]byte{"counter_1.db": {1, 2, 3}},
			shard: "counter_1.db", kind: filestore.ProblemHeader, detail: "shorter than the 8-byte header", repair: RepairQuarantine},
		{name: "used below the header", files: map[string][]byte{"counter_1.db": append([]byte{4, 0, 0, 0}, good[4:]...)},
			shard: "counter_1.db", kind: filestore.ProblemHeader, detail: "used size 4 is less than the 8-byte header", repair: RepairRewrite, kept: 3},
		{name: "truncated mid-entry", files: map[string][]byte{"counter_1.db": good[:len(shard(16, 0, c1, c2))+10]},
			shard: "counter_1.db", kind: filestore.ProblemTruncated, detail: "exceeds file size", repair: RepairRewrite, kept: 2},
		{name: "bad key mid-file", files: map[string][]byte{"counter_1.db": func() []byte {
			b := append([]byte(nil), good...)
			b[len(shard(16, 0, c1))+4] = 'X' // the second key's '['
			return b
		}()}, shard: "counter_1.db", kind: filestore.ProblemCorrupt, detail: "does not start with '['", repair: RepairRewrite, kept: 1},
		{name: "negative key length", files: map[string][]byte{"counter_1.db": func() []byte {
			b := append([]byte(nil), good...)
			binary.LittleEndian.PutUint32(b[len(shard(16, 0, c1, c2)):], 0xfffffff0)
			return b
		}()}, shard: "counter_1.db", kind: filestore.ProblemCorrupt, detail: "negative key length", repair: RepairRewrite, kept: 2},
		{name: "garbage of the right name", files: map[string][]byte{"counter_1.db": []byte("SQLite format 3\x00 and more bytes than a header")},
			shard: "counter_1.db", kind: filestore.ProblemTruncated, repair: RepairQuarantine},
		{name: "entries past used", files: map[string][]byte{"counter_1.db": func() []byte {
			b := append([]byte(nil), good...)
			binary.LittleEndian.PutUint32(b, uint32(len(shard(16, 0, c1))))
			return b
		}()}, shard: "counter_1.db", kind: filestore.ProblemPastUsed, detail: "2 whole entries after used size"},
		{name: "duplicate key", files: map[string][]byte{"counter_1.db": shard(16, 4096, c1, c2, c1)},
			shard: "counter_1.db", kind: filestore.ProblemDuplicate, detail: "1 keys occur more than once (Python's collector adds them up;"},
		// What Python 0.16's _accumulate_metrics makes of a key read twice.
		{name: "duplicate key in an all-mode gauge", files: map[string][]byte{"gauge_all_1.db": shard(16, 4096, ent{key("g", "g", "G."), 5}, ent{key("g", "g", "G."), 2})},
			shard: "gauge_all_1.db", kind: filestore.ProblemDuplicate, detail: "(Python's collector keeps the last, as its one sample for this pid;"},
		{name: "duplicate key in a livemin gauge", files: map[string][]byte{"gauge_livemin_1.db": shard(16, 4096, ent{key("g", "g", "G."), 5}, ent{key("g", "g", "G."), 2})},
			shard: "gauge_livemin_1.db", kind: filestore.ProblemDuplicate, detail: "(Python's collector keeps the smallest;"},
		{name: "duplicate key in a max gauge", files: map[string][]byte{"gauge_max_1.db": shard(16, 4096, ent{key("g", "g", "G."), 5}, ent{key("g", "g", "G."), 2})},
			shard: "gauge_max_1.db", kind: filestore.ProblemDuplicate, detail: "(Python's collector keeps the largest;"},
		{name: "duplicate key in a sum gauge", files: map[string][]byte{"gauge_sum_1.db": shard(16, 4096, ent{key("g", "g", "G."), 5}, ent{key("g", "g", "G."), 2})},
			shard: "gauge_sum_1.db", kind: filestore.ProblemDuplicate, detail: "(Python's collector adds them up;"},
		{name: "duplicate key in a mostrecent gauge", files: map[string][]byte{"gauge_mostrecent_1.db": shard(16, 4096, ent{key("g", "g", "G."), 5}, ent{key("g", "g", "G."), 2})},
			shard: "gauge_mostrecent_1.db", kind: filestore.ProblemDuplicate, detail: "of 0.18 and later keeps the one with the greatest timestamp"},
		{name: "histogram sample in a counter shard", files: map[string][]byte{"counter_1.db": shard(16, 4096, c1, ent{key("lat", "lat_bucket", "L.", "le", "1.0"), 1})},
			shard: "counter_1.db", kind: KindKindMismatch, detail: "family lat do not fit a counter shard, e.g. sample lat_bucket"},
		{name: "type differs across shards", files: map[string][]byte{"counter_1.db": good, "gauge_all_2.db": shard(16, 4096, ent{key("req", "req", "Requests."), 1})},
			shard: "family req", kind: KindTypeMismatch, detail: "counter (first in counter_1.db), gauge_all (first in gauge_all_2.db)"},
		{name: "gauge mode differs across shards", files: map[string][]byte{"gauge_max_1.db": shard(16, 4096, ent{key("t", "t", "T."), 1}), "gauge_min_2.db": shard(16, 4096, ent{key("t", "t", "T."), 1})},
			shard: "family t", kind: KindTypeMismatch, detail: "gauge_max (first in gauge_max_1.db), gauge_min (first in gauge_min_2.db)"},
		{name: "help differs across shards", files: map[string][]byte{"counter_1.db": good, "counter_2.db": shard(16, 4096, ent{key("req", "req_total", "Old help.", "route", "/a"), 1})},
			shard: "family req", kind: KindHelpMismatch, detail: `"Old help." (first in counter_2.db), "Requests." (first in counter_1.db)`},
		{name: "buckets differ across pids", files: map[string][]byte{
			"histogram_1.db": shard(16, 4096, ent{key("lat", "lat_bucket", "L.", "le", "1.0"), 1}, ent{key("lat", "lat_bucket", "L.", "le", "+Inf"), 1}),
			"histogram_2.db": shard(16, 4096, ent{key("lat", "lat_bucket", "L.", "le", "0.5"), 1}, ent{key("lat", "lat_bucket", "L.", "le", "+Inf"), 1}),
		}, shard: "family lat", kind: KindBucketsDiffer, detail: "histogram_1.db has le 1.0,+Inf; histogram_2.db has le 0.5,+Inf"},
		{name: "foreign file", files: map[string][]byte{"sessions.db": []byte("whatever")},
			shard: "sessions.db", kind: KindForeign, detail: `shard name "sessions"`, repair: RepairQuarantine},
		// Python's collector reads these (kind from the name's first
		// part, an unknown gauge mode merged as "all"): moving them
		// would take their samples out of what it serves.
		{name: "unknown gauge mode", files: map[string][]byte{"gauge_median_1.db": good},
			shard: "gauge_median_1.db", kind: KindForeign, detail: `unknown gauge mode "median"), whose readers skip it; Python's collector reads it as a shard of kind gauge`},
		{name: "all-mode gauge of a pid with an underscore", files: map[string][]byte{"gauge_all_web_1.db": good},
			shard: "gauge_all_web_1.db", kind: KindForeign, detail: `pid="", not "web_1"`},
		{name: "a metric type promstore knows no shard of", files: map[string][]byte{"info_1.db": good},
			shard: "info_1.db", kind: KindForeign, detail: "Python's collector reads it as a shard of kind info and serves its samples; left as it is"},
		{name: "FIFO of a foreign name", fifo: "sessions.db",
			shard: "sessions.db", kind: KindForeign, detail: "a named pipe (FIFO); Python's collector waits on it for a writer", repair: RepairQuarantine},
		{name: "directory of a foreign name", mkdir: "cache.db",
			shard: "cache.db", kind: KindForeign, detail: "a directory; Python's collector fails on it", repair: RepairQuarantine},
		{name: "directory named like a shard", mkdir: "counter_7.db",
			shard: "counter_7.db", kind: KindForeign, detail: "a directory; Python's collector fails on it", repair: RepairQuarantine},
		// Python follows a link: no failure, the target's samples twice.
		{name: "symbolic link to a shard", files: map[string][]byte{"counter_1.db": good}, link: [2]string{"counter_2.db", "counter_1.db"},
			shard: "counter_2.db", kind: KindForeign, detail: `a symbolic link to "counter_1.db"; promstore's readers skip it (links are not followed); Python's collector follows it and counts that file's samples as this shard's`, repair: RepairQuarantine},
		{name: "dangling symbolic link", link: [2]string{"counter_2.db", "gone.db"},
			shard: "counter_2.db", kind: KindForeign, detail: `a symbolic link to "gone.db", which cannot be opened`, repair: RepairQuarantine},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, b := range tt.files {
				write(t, dir, n, b)
			}
			if tt.link[0] != "" {
				if err := os.Symlink(tt.link[1], filepath.Join(dir, tt.link[0])); err != nil {
					t.Fatal(err)
				}
			}
			if tt.mkdir != "" {
				if err := os.Mkdir(filepath.Join(dir, tt.mkdir), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if tt.fifo != "" {
				if err := syscall.Mkfifo(filepath.Join(dir, tt.fifo), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r, err := CheckDir(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			var found *Problem
			for i := range r.Problems {
				if r.Problems[i].Shard == tt.shard && r.Problems[i].Kind == tt.kind {
					found = &r.Problems[i]
				}
			}
			if found == nil {
				t.Fatalf("no %s problem of %s among %+v", tt.kind, tt.shard, r.Problems)
			}
			if len(r.Problems) != 1 {
				t.Errorf("want only that problem, got %+v", r.Problems)
			}
			if !strings.Contains(found.Detail, tt.detail) || found.Repair != tt.repair || found.Salvaged != tt.kept {
				t.Errorf("problem = %+v, want detail containing %q, repair %q, %d kept", *found, tt.detail, tt.repair, tt.kept)
			}
		})
	}
}

func TestCheckCleanStoreBothLayouts(t *testing.T) {
	for _, layout := range []int{8, 16} {
		dir := t.TempDir()
		write(t, dir, "counter_1.db", shard(layout, 1<<16, c1, c2))
		write(t, dir, "counter_2.db", shard(layout, 1<<16, c1, c3))
		write(t, dir, "counter_3.db", shard(layout, 1<<16))
		write(t, dir, "counter_4.db", make([]byte, 1<<16)) // created, header not written yet
		write(t, dir, "notes.txt", []byte("not a .db file: Python never reads it"))
		r, err := CheckDir(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Clean() || r.Shards != 4 || r.Samples != 4 {
			t.Fatalf("layout %d: report = %+v, want clean, 4 shards, 4 samples", layout, r)
		}
	}
}

// TestCheckMixedLayouts: shards of both layouts in one directory (a client
// upgraded without emptying it) are a problem, named on the rarer layout's
// shards: whichever release's collector reads the directory fails on the
// other's files. Shards without entries have no layout to mix.
func TestCheckMixedLayouts(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "counter_1.db", shard(16, 1<<16, c1, c2))
	write(t, dir, "counter_2.db", shard(8, 1<<16, c1, c3))
	write(t, dir, "counter_3.db", shard(8, 1<<16, c2))
	write(t, dir, "counter_4.db", shard(16, 1<<16))
	r, err := CheckDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 1 || r.Problems[0].Shard != "counter_1.db" || r.Problems[0].Kind != KindMixedLayout || r.Problems[0].Repair != "" ||
		!strings.Contains(r.Problems[0].Detail, "16-byte layout (0.18 and later), where 2 other shards have the 8-byte layout") {
		t.Fatalf("problems = %+v", r.Problems)
	}
}

func TestInspectLayout(t *testing.T) {
	for _, layout := range []int{8, 16} {
		in := filestore.Inspect(shard(layout, 0, c1, c2, c3)[:len(shard(layout, 0, c1, c2))+3], 0)
		if in.Layout != layout || len(in.Entries) != 2 || in.Problem != filestore.ProblemTruncated {
			t.Errorf("layout %d: inspection = %+v", layout, in)
		}
		if in.Entries[1].Key.Text != c2.key || in.Entries[1].Value != c2.v {
			t.Errorf("layout %d: second entry = %+v", layout, in.Entries[1])
		}
	}
}

func TestCheckStoreNamesRedisProblemsAndCrossShard(t *testing.T) {
	// CheckStore over a file store (the adapter path Redis takes): the
	// cross-shard checks see the samples Scan delivers.
	dir := t.TempDir()
	write(t, dir, "counter_1.db", shard(16, 4096, c1))
	write(t, dir, "counter_2.db", shard(16, 4096, ent{key("req", "req_total", "Other.", "route", "/a"), 1}))
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := CheckStore(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 1 || r.Problems[0].Kind != KindHelpMismatch || r.Samples != 2 {
		t.Fatalf("report = %+v", r)
	}
}

// TestBarrier: a cleanup barrier left without a journal is reported as
// such (not as a foreign file) and --repair removes it; with a journal
// the repair refuses and names the journal.
func TestBarrier(t *testing.T) {
	dir := t.TempDir()
	barrier := filepath.Join(dir, filestore.BarrierName)
	if err := os.Symlink(filestore.BarrierName, barrier); err != nil {
		t.Fatal(err)
	}
	r, err := CheckDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 1 || r.Problems[0].Kind != KindBarrier || r.Problems[0].Repair != RepairRemove {
		t.Fatalf("problems %+v", r.Problems)
	}
	journal := filepath.Join(dir, cleanup.JournalName)
	if err := os.WriteFile(journal, []byte(`{"version":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Repair(context.Background(), dir, RepairOptions{}); err == nil || !strings.Contains(err.Error(), cleanup.JournalName) {
		t.Fatalf("repair with a journal: %v", err)
	}
	if err := os.Remove(journal); err != nil {
		t.Fatal(err)
	}
	r, err = Repair(context.Background(), dir, RepairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 1 || !r.Problems[0].Done {
		t.Fatalf("repair: %+v", r.Problems)
	}
	if _, err := os.Lstat(barrier); !os.IsNotExist(err) {
		t.Errorf("barrier still there: %v", err)
	}
}

// TestCheckBucketSpellings: le values that Python's float() parses to one
// bound (1 and 1.0, +Inf and inf) are one bucket to its collector and to
// dump, so they are no buckets-differ problem; other bounds still are.
func TestCheckBucketSpellings(t *testing.T) {
	b := func(le string) ent { return ent{key("lat", "lat_bucket", "L.", "le", le), 1} }
	tests := []struct {
		name       string
		one, other []ent
		differ     bool
	}{
		{"1 and 1.0", []ent{b("1.0"), b("+Inf")}, []ent{b("1"), b("+Inf")}, false},
		{"1e3 and 1000.0, inf and +Inf", []ent{b("1000.0"), b("+Inf")}, []ent{b("1e3"), b("inf")}, false},
		{"0.5 and 1.0", []ent{b("1.0"), b("+Inf")}, []ent{b("0.5"), b("+Inf")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "histogram_1.db", shard(16, 4096, tt.one...))
			write(t, dir, "histogram_2.db", shard(16, 4096, tt.other...))
			r, err := CheckDir(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			differ := false
			for _, p := range r.Problems {
				if p.Kind == KindBucketsDiffer {
					differ = true
				} else {
					t.Errorf("unexpected problem %+v", p)
				}
			}
			if differ != tt.differ {
				t.Errorf("buckets-differ reported: %v, want %v (%+v)", differ, tt.differ, r.Problems)
			}
		})
	}
}

// TestRepairRefusesQuarantineInStore: a --quarantine that is the store
// directory, or a *.db name in it (a directory Python's collector globs
// and fails on), is refused before anything is moved, dry run included.
func TestRepairRefusesQuarantineInStore(t *testing.T) {
	for _, q := range []string{"quar.db", ".", "sub/../q.db"} {
		for _, dry := range []bool{false, true} {
			dir := t.TempDir()
			empty := filepath.Join(dir, "counter_4100.db")
			if err := os.WriteFile(empty, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := Repair(context.Background(), dir, RepairOptions{Quarantine: filepath.Join(dir, q), DryRun: dry, Alive: func(string) store.Liveness { return store.AliveNo }})
			if err == nil || !strings.Contains(err.Error(), "give --quarantine another") {
				t.Errorf("quarantine %q (dry run %v): err %v, want a refusal", q, dry, err)
			}
			if _, err := os.Stat(empty); err != nil {
				t.Errorf("quarantine %q: the shard was moved: %v", q, err)
			}
			names, _ := filepath.Glob(filepath.Join(dir, "*.db"))
			if len(names) != 1 {
				t.Errorf("quarantine %q: *.db in the store: %v", q, names)
			}
		}
	}
	// Another name inside the store, as the default, is fine.
	dir := t.TempDir()
	if _, err := Repair(context.Background(), dir, RepairOptions{Quarantine: filepath.Join(dir, "quarantine")}); err != nil {
		t.Errorf("quarantine inside the store under another name: %v", err)
	}
}

// TestRepairKeepsTheDirectorysLayout: a shard cut short within its first
// entry's timestamp reads as one whole entry in the 8-byte layout only
// (the value sits at the same place in both), so its layout cannot be
// told from its own bytes. The repair rewrites it in the layout of the
// directory's other shards, keeping the value: written in the 8-byte
// layout beside 16-byte shards it made the directory mixed-layout, which
// fsck then reported. The same for a legacy directory's first shard
// whose second entry is damaged: one entry reads in either layout, and no
// shard before it hinted at the directory's.
func TestRepairKeepsTheDirectorysLayout(t *testing.T) {
	for _, layout := range []int{16, 8} {
		dir := t.TempDir()
		cut := shard(layout, 0, c1, c2)
		entry1 := len(shard(layout, 0, c1)) // the end of the first entry
		want := filestore.ProblemTruncated
		if layout == 16 {
			cut = cut[:entry1-5] // within the first entry's timestamp
		} else {
			cut = append([]byte(nil), cut...)
			cut[entry1+4] = '{' // the second entry's key is no JSON list
			want = filestore.ProblemCorrupt
		}
		write(t, dir, "counter_1.db", cut)
		write(t, dir, "counter_2.db", shard(layout, 1<<16, c1, c3))
		write(t, dir, "counter_3.db", shard(layout, 1<<16, c2))
		r, err := Repair(context.Background(), dir, RepairOptions{Quarantine: filepath.Join(t.TempDir(), "q"), Alive: func(string) store.Liveness { return store.AliveNo }})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Problems) != 1 || r.Problems[0].Kind != want || !r.Problems[0].Done || r.Problems[0].Salvaged != 1 ||
			layout == 8 && !strings.Contains(r.Problems[0].Detail, fmt.Sprintf("entry at offset %d: ", entry1)) {
			t.Fatalf("layout %d: repair = %+v", layout, r.Problems)
		}
		in, err := filestore.InspectFile(filepath.Join(dir, "counter_1.db"), 0)
		if err != nil {
			t.Fatal(err)
		}
		if in.Layout != layout || len(in.Entries) != 1 || in.Entries[0].Value != c1.v || !in.Sound() {
			t.Errorf("layout %d: rewritten shard = %+v", layout, in)
		}
		if r, err = CheckDir(context.Background(), dir); err != nil || !r.Clean() {
			t.Errorf("layout %d: after the repair: %+v, %v", layout, r, err)
		}
	}
}
