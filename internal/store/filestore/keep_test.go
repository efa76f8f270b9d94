package filestore

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

// deadAll says every numeric pid is gone.
func deadAll(pid string) store.Liveness {
	if store.ProcessAlive(pid) == store.AliveUnknown {
		return store.AliveUnknown
	}
	return store.AliveNo
}

// keptStore copies the fixture store written by prometheus_client 0.16
// and opens it twice: kept keeps its reads, every pid dead; fresh does
// not.
func keptStore(t *testing.T) (dir string, kept, fresh *Store) {
	t.Helper()
	return keptStoreOf(t, "python-0.16-files")
}

// keptStoreOf is keptStore of another fixture store.
func keptStoreOf(t *testing.T, fixture string) (dir string, kept, fresh *Store) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("KeepReads keeps nothing off Linux")
	}
	src := fixtureStore(t, fixture)
	dir = t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kept, err = Open(context.Background(), dir, Options{Alive: deadAll})
	if err != nil {
		t.Fatal(err)
	}
	kept.KeepReads(true)
	t.Cleanup(func() { kept.Close() })
	return dir, kept, openDir(t, dir, 0)
}

// sameRead scans both stores and fails unless they yield the same
// samples and the same error.
func sameRead(t *testing.T, kept, fresh *Store, what string) {
	t.Helper()
	got, gerr := scanAll(t, kept)
	want, werr := scanAll(t, fresh)
	if fmt.Sprint(gerr) != fmt.Sprint(werr) {
		t.Fatalf("%s: kept reader's error %v, new reader's %v", what, gerr, werr)
	}
	if g, w := bitsOf(got), bitsOf(want); g != w {
		t.Fatalf("%s: kept reader's %d samples differ from a new reader's %d", what, len(got), len(want))
	}
	checkKeptCounts(t, kept, what)
}

// checkKeptCounts checks what the kept shards' counts say (reuseState's
// entries and touched, kept as shards are read and dropped) against the
// shards themselves.
func checkKeptCounts(t *testing.T, s *Store, what string) {
	t.Helper()
	s.mu.Lock()
	r := s.reuse
	s.mu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	entries, touched := 0, 0
	for _, k := range r.shards {
		entries += len(k.entries)
		if k.gen == r.gen {
			touched++
		}
	}
	if entries != r.entries || touched != r.touched {
		t.Fatalf("%s: %d kept shards hold %d entries, %d read by the last read; counted %d and %d", what, len(r.shards), entries, touched, r.entries, r.touched)
	}
	if r.completed == r.gen && touched != len(r.shards) {
		t.Fatalf("%s: a complete read left %d of %d kept shards it did not read", what, len(r.shards)-touched, len(r.shards))
	}
}

// bitsOf spells samples with their values' bits (NaN equals NaN).
func bitsOf(ss []gotSample) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "%s %s %x %x\n", s.shard, s.key, math.Float64bits(s.value), math.Float64bits(s.ts))
	}
	return b.String()
}

// TestKeepReadsChanges: what is kept is reused only while the file is
// the same, unchanged: a file truncated under its mapping (which would
// fault), then emptied under it, one replaced by another under the same name (rename, as
// promstore writes), one grown past its mapping, and one removed are each
// read as a new reader reads them, with the same problems.
func TestKeepReadsChanges(t *testing.T) {
	dir, kept, fresh := keptStore(t)
	sameRead(t, kept, fresh, "first read")
	sameRead(t, kept, fresh, "second read")
	st := kept.ReadStats()
	if st.Kept == 0 || st.Reused != st.Kept || !st.Unchanged {
		t.Fatalf("second read: %+v, want every shard kept and reused, unchanged", st)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.db"))
	if len(files) < 4 {
		t.Fatalf("fixture has %d shards", len(files))
	}

	// Truncated below its used size: the mapping's pages past the end
	// fault; the read reports the file as a new reader does.
	if err := os.Truncate(files[0], 12); err != nil {
		t.Fatal(err)
	}
	sameRead(t, kept, fresh, "truncated")
	if st := kept.ReadStats(); st.Unchanged {
		t.Fatalf("truncated: %+v, want changed", st)
	}

	// Replaced by another file under the same name.
	b, err := os.ReadFile(files[2])
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, files[1]); err != nil {
		t.Fatal(err)
	}
	sameRead(t, kept, fresh, "replaced")

	// A kept shard emptied under its mapping: even its first page
	// faults, which each read touches ahead of reading the kept shards
	// (touchKept).
	if err := os.Truncate(files[2], 0); err != nil {
		t.Fatal(err)
	}
	sameRead(t, kept, fresh, "emptied")

	// Grown past its mapping, with the used size moved to the end: a
	// new entry that is not there (zeros) is reported.
	f, err := os.OpenFile(files[3], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if err := f.Truncate(fi.Size() + 8192); err != nil {
		t.Fatal(err)
	}
	used := fi.Size() + 4096
	if _, err := f.WriteAt([]byte{byte(used), byte(used >> 8), byte(used >> 16), byte(used >> 24)}, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sameRead(t, kept, fresh, "grown")

	if err := os.Remove(files[2]); err != nil {
		t.Fatal(err)
	}
	sameRead(t, kept, fresh, "removed")
	if st := kept.ReadStats(); st.Unchanged {
		t.Fatalf("removed: %+v, want changed", st)
	}
	sameRead(t, kept, fresh, "read again")
	if st := kept.ReadStats(); st.Kept != len(files)-3 {
		t.Fatalf("after the changes: %+v, want %d shards kept (all but the truncated, grown and removed)", st, len(files)-3)
	}

	// A cleanup's barrier (a symbolic link to itself) is no shard.
	if err := os.Symlink(BarrierName, filepath.Join(dir, BarrierName)); err != nil {
		t.Fatal(err)
	}
	sameRead(t, kept, fresh, "barrier")

	// Off: nothing kept, reads as before.
	kept.KeepReads(false)
	sameRead(t, kept, fresh, "keeping off")
	if st := kept.ReadStats(); st != (ReadStats{}) {
		t.Fatalf("keeping off: %+v", st)
	}
}

// TestKeepReadsLivePIDs: the shards of a running pid are kept too, and
// their used bytes copied out and hashed on every read: a value written
// in place (same used size, and on tmpfs the same mtime) is read, as is
// an entry appended; a read of nothing changed reuses every shard and
// says the read is unchanged.
func TestKeepReadsLivePIDs(t *testing.T) {
	dir, kept, fresh := keptStore(t)
	kept.alive = func(string) store.Liveness { return store.AliveYes }
	kept.KeepReads(false)
	kept.KeepReads(true)
	sameRead(t, kept, fresh, "first read")
	if st := kept.ReadStats(); st.Kept == 0 || st.Reused != 0 || st.Unchanged {
		t.Fatalf("live pids, first read: %+v, want every shard kept, none reused, not unchanged", st)
	}
	sameRead(t, kept, fresh, "second read")
	st := kept.ReadStats()
	if st.Kept == 0 || st.Reused != st.Kept || !st.Unchanged || !kept.ReadUnchanged() {
		t.Fatalf("live pids, second read: %+v, want every shard kept and reused, unchanged", st)
	}

	// A value written in place by the running process.
	files, _ := filepath.Glob(filepath.Join(dir, "counter_*.db"))
	if len(files) == 0 {
		t.Fatal("fixture has no counter shard")
	}
	testenv.WriteFirstValue(t, files[0], 12345.5)
	sameRead(t, kept, fresh, "value written in place")
	if st := kept.ReadStats(); st.Revalued != 1 || st.Reparsed != 0 || st.Reused != st.Kept-1 || st.Unchanged {
		t.Fatalf("after a write in place: %+v, want one shard's values read again (its keys kept), not unchanged", st)
	}
	sameRead(t, kept, fresh, "read again")
	if st := kept.ReadStats(); !st.Unchanged {
		t.Fatalf("read again: %+v, want unchanged", st)
	}
}

// TestKeepReadsConcurrent: reads at the same time (one has what is kept,
// the others read the normal way) all read the same.
func TestKeepReadsConcurrent(t *testing.T) {
	_, kept, fresh := keptStore(t)
	want, werr := scanAll(t, fresh)
	if werr != nil {
		t.Fatal(werr)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				got, err := scanAll(t, kept)
				if err == nil && bitsOf(got) != bitsOf(want) {
					err = fmt.Errorf("%d samples differ from a new reader's %d", len(got), len(want))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestKeptShardGuessesItsOwnKeys: a kept shard parsed again takes its own
// keys, in its own order, as the guesses of its entries (not the last
// shard's of its kind): after a value written in place every entry is its
// guess and no key is looked up.
func TestKeptShardGuessesItsOwnKeys(t *testing.T) {
	dir, kept, fresh := keptStore(t)
	sameRead(t, kept, fresh, "first read")
	files, _ := filepath.Glob(filepath.Join(dir, "histogram_*.db"))
	if len(files) == 0 {
		t.Fatal("fixture has no histogram shard")
	}
	k := kept.reuse.shards[filepath.Base(files[0])]
	if k == nil || len(k.entries) < 2 {
		t.Fatalf("%s not kept with entries: %+v", files[0], k)
	}
	testenv.WriteFirstValue(t, files[0], 7.25)
	ps := &parser{keys: newKeyCache(nil, nil)}
	changed, ok := k.refresh(ps, kept.reuse.seed, true)
	if !changed || !ok {
		t.Fatalf("refresh after a write in place: changed %v, ok %v", changed, ok)
	}
	if ps.hits != len(k.entries) {
		t.Fatalf("%d of %d entries were their guess, want all", ps.hits, len(k.entries))
	}
	if ps.guess != nil {
		t.Fatal("the parser's guesses for its kind were not given back")
	}
	if k.entries[0].Value != 7.25 {
		t.Fatalf("first value %v, want 7.25", k.entries[0].Value)
	}
}

// TestKeptRevalue: the shards of running processes whose used size is
// unchanged have their values read again without their keys parsed
// only while nothing but values changed: a key rewritten in place (same
// length, same used size), however unlike what Python does, is parsed;
// a NaN of another payload is a new value; processes that end (their
// shards now hashed through their mappings) and pids running again are
// parsed once more and read as a new reader does. Both layouts.
func TestKeptRevalue(t *testing.T) {
	for _, fixture := range []string{"python-0.16-files", "python-0.25-files"} {
		t.Run(fixture, func(t *testing.T) {
			dir, kept, fresh := keptStoreOf(t, fixture)
			running := func(string) store.Liveness { return store.AliveYes }
			kept.alive = running
			kept.KeepReads(false)
			kept.KeepReads(true)
			files, _ := filepath.Glob(filepath.Join(dir, "counter_*.db"))
			if len(files) == 0 {
				t.Fatal("fixture has no counter shard")
			}
			path := files[0]
			all := -1 // every shard kept
			want := func(what string, revalued, reparsed int) {
				t.Helper()
				sameRead(t, kept, fresh, what)
				st := kept.ReadStats()
				if reparsed == all {
					reparsed = st.Kept
				}
				if st.Revalued != revalued || st.Reparsed != reparsed {
					t.Fatalf("%s: %+v, want %d revalued, %d parsed again", what, st, revalued, reparsed)
				}
			}
			want("first read", 0, 0)
			testenv.WriteFirstValue(t, path, 12.5)
			want("value written", 1, 0)
			want("nothing written", 0, 0)
			testenv.WriteFirstValue(t, path, math.Float64frombits(0x7ff8000000000001))
			want("a NaN", 1, 0)
			testenv.WriteFirstValue(t, path, math.Float64frombits(0x7ff8000000000002))
			want("a NaN of another payload", 1, 0)

			// A letter of the first key's text changed in place.
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			n := int(b[8]) | int(b[9])<<8 | int(b[10])<<16 | int(b[11])<<24
			key := b[12 : 12+n]
			at := strings.LastIndexAny(string(key), "abcdefghijklmnopqrstuvwxyz")
			if at < 0 {
				t.Fatalf("no letter in key %q", key)
			}
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte{'a' + (key[at]-'a'+1)%26}, int64(12+at)); err != nil {
				t.Fatal(err)
			}
			f.Close()
			want("a key rewritten in place", 0, 1)
			testenv.WriteFirstValue(t, path, 99)
			want("a value of the rewritten key", 1, 0)

			// The processes end: their shards, hashed through their
			// mappings from now on, are parsed once more for that hash;
			// then new ones of the pids run: their copies' hash is the
			// one kept, until a value is written: that shard is parsed
			// once more for the hash of its keys, and revalued from then.
			kept.reuse.alive = deadAll
			want("processes ended", 0, all)
			testenv.WriteFirstValue(t, path, 100)
			want("written while taken for dead", 0, 1)
			kept.reuse.alive = running
			want("running again", 0, 0)
			testenv.WriteFirstValue(t, path, 101)
			want("running, value written", 0, 1)
			testenv.WriteFirstValue(t, path, 102)
			want("running, value written again", 1, 0)
		})
	}
}
