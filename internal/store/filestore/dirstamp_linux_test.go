package filestore

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/testenv"
)

// TestKeepReadsUnchangedDirectory: a read with kept shards uses the last
// listing, without reading the directory, only while the directory's
// stamp is the one of a listing taken when its last change was older
// than the margin; any entry added, removed or replaced since is seen by
// the next read. Where a read may have begun on either side of the
// margin (a slow machine), whether it listed is not checked, what it read
// always is.
func TestKeepReadsUnchangedDirectory(t *testing.T) {
	dir, kept, fresh := keptStore(t)
	const margin = 250 * time.Millisecond
	if !localFS(dirFD(t, dir)) {
		t.Skipf("%s is not on a local file system: listings are never skipped there", dir)
	}
	if coarseTimes(t, dir) {
		t.Skipf("%s has timestamps coarser than the test's margin of %v", dir, margin)
	}
	kept.reuse.margin = margin
	settle := func() { time.Sleep(margin + margin/4) }
	// stableBefore tells whether the last read's stamp was surely stable
	// (1), surely not (-1), or either (0), from when it ran and when the
	// directory last changed.
	var lastStart, lastEnd time.Time
	stableBefore := func() int {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		switch changed := fi.ModTime(); {
		case lastEnd.Sub(changed) < margin-10*time.Millisecond:
			return -1
		case lastStart.Sub(changed) > margin+10*time.Millisecond:
			return 1
		}
		return 0
	}
	read := func(what string, unchangedSince bool) {
		t.Helper()
		before := stableBefore()
		lastStart = time.Now()
		sameRead(t, kept, fresh, what)
		lastEnd = time.Now()
		listed := kept.ReadStats().Listed
		switch {
		case !unchangedSince && !listed:
			t.Fatalf("%s: the directory changed since the last read, which did not list it", what)
		case unchangedSince && before == 1 && listed:
			t.Fatalf("%s: unchanged since a stable listing, listed again", what)
		case unchangedSince && before == -1 && !listed:
			t.Fatalf("%s: the last listing was within the margin of a change, not listed again", what)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.db"))
	if len(files) < 3 {
		t.Fatalf("fixture has %d shards", len(files))
	}

	read("first read", false)
	read("changed within the margin", true) // the copies were just made
	settle()
	read("settled", true) // the read before listed a directory changed just before
	read("unchanged", true)
	if st := kept.ReadStats(); st.Listed || !st.Unchanged || st.Reused != st.Kept {
		t.Fatalf("unchanged directory: %+v, want not listed, every shard reused, unchanged", st)
	}
	read("unchanged again", true)

	// A new shard, right after a listing that was used again.
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	added := filepath.Join(dir, "counter_987654.db")
	if err := os.WriteFile(added, b, 0o644); err != nil {
		t.Fatal(err)
	}
	read("shard added", false)
	read("at once again", true)
	settle()
	read("settled again", true)
	read("unchanged after the addition", true)

	// Replaced under its name (another inode) and removed.
	b, err = os.ReadFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, added); err != nil {
		t.Fatal(err)
	}
	read("shard replaced", false)
	settle()
	read("settled after the replacement", true)
	if err := os.Remove(files[2]); err != nil {
		t.Fatal(err)
	}
	read("shard removed", false)
	settle()
	read("settled after the removal", true)
	read("unchanged after the removal", true)

	// A shard's bytes changed in place do not touch the directory: the
	// listing is used and the shard read again.
	testenv.WriteFirstValue(t, files[0], 4242.5)
	read("value written in place", true)
	if st := kept.ReadStats(); st.Listed || st.Reparsed != 1 || st.Unchanged {
		t.Fatalf("value written in place: %+v, want not listed, one shard parsed again", st)
	}
}

// TestDirStamp: a listing is used again only when its stamp was stable
// (the directory's mtime and ctime older than the margin when it was
// listed) and the directory's stamp now is the same in every field, with
// the clock not set back.
func TestDirStamp(t *testing.T) {
	now := time.Unix(1_700_000_000, 500_000_000)
	ts := func(d time.Duration) syscall.Timespec { return syscall.NsecToTimespec(now.Add(d).UnixNano()) }
	base := syscall.Stat_t{Dev: 7, Ino: 42, Nlink: 2, Size: 4096, Mtim: ts(-time.Minute), Ctim: ts(-time.Minute)}
	const margin = 3 * time.Second
	last := stampOf(&base, now, time.Hour, margin)
	if !last.stable {
		t.Fatal("a directory last changed a minute before its listing: stamp not stable")
	}
	later := now.Add(15 * time.Second)
	at := func(s dirStamp, wall time.Time, mono time.Duration) dirStamp { s.wall, s.mono = wall, mono; return s }
	for _, tc := range []struct {
		name string
		last dirStamp
		edit func(st *syscall.Stat_t)
		at   time.Time
		mono time.Duration // since the last stamp
		want bool
	}{
		{"unchanged", last, nil, later, 15 * time.Second, true},
		{"unchanged, at the same instant", last, nil, now, 0, true},
		{"unchanged, the wall clock 5 ms behind after an hour", last, nil, now.Add(time.Hour - 5*time.Millisecond), time.Hour, true},
		{"the wall clock 1.8 s behind after an hour (a step)", last, nil, now.Add(time.Hour - 1800*time.Millisecond), time.Hour, false},
		{"clock set back 3.5 s, a day ago", last, nil, now.Add(24*time.Hour - 3500*time.Millisecond), 24 * time.Hour, false},
		{"clock set back", last, nil, now.Add(-time.Second), time.Second, false},
		{"clock set back an hour, 2 s ago", last, nil, now.Add(-time.Hour + 2*time.Second), 2 * time.Second, false},
		{"clock set back a minute, an hour ago", last, nil, now.Add(59 * time.Minute), time.Hour, false},
		{"mtime changed", last, func(st *syscall.Stat_t) { st.Mtim = ts(10 * time.Second) }, later, 15 * time.Second, false},
		{"ctime changed", last, func(st *syscall.Stat_t) { st.Ctim = ts(10 * time.Second) }, later, 15 * time.Second, false},
		{"a nanosecond later", last, func(st *syscall.Stat_t) { st.Mtim.Nsec++ }, later, 15 * time.Second, false},
		{"other inode (directory replaced)", last, func(st *syscall.Stat_t) { st.Ino++ }, later, 15 * time.Second, false},
		{"other device (mounted over)", last, func(st *syscall.Stat_t) { st.Dev++ }, later, 15 * time.Second, false},
		{"link count", last, func(st *syscall.Stat_t) { st.Nlink++ }, later, 15 * time.Second, false},
		{"size", last, func(st *syscall.Stat_t) { st.Size += 4096 }, later, 15 * time.Second, false},
		{"last changed within the margin", stampOf(&syscall.Stat_t{Dev: 7, Ino: 42, Nlink: 2, Size: 4096, Mtim: ts(-time.Second), Ctim: ts(-time.Minute)}, now, time.Hour, margin),
			func(st *syscall.Stat_t) { st.Mtim = ts(-time.Second) }, later, 15 * time.Second, false},
		{"ctime within the margin", stampOf(&syscall.Stat_t{Dev: 7, Ino: 42, Nlink: 2, Size: 4096, Mtim: ts(-time.Minute), Ctim: ts(-2 * time.Second)}, now, time.Hour, margin),
			func(st *syscall.Stat_t) { st.Ctim = ts(-2 * time.Second) }, later, 15 * time.Second, false},
		{"times in the future", stampOf(&syscall.Stat_t{Dev: 7, Ino: 42, Nlink: 2, Size: 4096, Mtim: ts(time.Hour), Ctim: ts(time.Hour)}, now, time.Hour, margin),
			func(st *syscall.Stat_t) { st.Mtim, st.Ctim = ts(time.Hour), ts(time.Hour) }, later, 15 * time.Second, false},
		{"times clamped at 2038 (clock past it)", stampOf(&syscall.Stat_t{Dev: 7, Ino: 42, Nlink: 2, Size: 4096, Mtim: syscall.Timespec{Sec: math.MaxInt32}, Ctim: syscall.Timespec{Sec: math.MaxInt32}}, time.Unix(math.MaxInt32+3600, 0), time.Hour, margin),
			func(st *syscall.Stat_t) {
				st.Mtim, st.Ctim = syscall.Timespec{Sec: math.MaxInt32}, syscall.Timespec{Sec: math.MaxInt32}
			}, time.Unix(math.MaxInt32+3615, 0), 15 * time.Second, false},
		{"no listing before", dirStamp{}, nil, later, 15 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := base
			if tc.edit != nil {
				tc.edit(&st)
			}
			cur := at(stampOf(&st, tc.at, 0, margin), tc.at, tc.last.mono+tc.mono)
			if got := tc.last.unchanged(cur); got != tc.want {
				t.Fatalf("unchanged = %v, want %v", got, tc.want)
			}
		})
	}
}

// dirFD opens dir for the test's life and returns its descriptor.
func dirFD(t *testing.T, dir string) int {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

// coarseTimes tells whether dir's file system keeps whole seconds only:
// three files made apart all have a zero nanosecond part.
func coarseTimes(t *testing.T, dir string) bool {
	t.Helper()
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf(".probe%d", i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(p)
		if fi.ModTime().Nanosecond() != 0 {
			return false
		}
		time.Sleep(3 * time.Millisecond)
	}
	return true
}
