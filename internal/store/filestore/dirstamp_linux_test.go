package filestore

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestKeepReadsUnchangedDirectory: a read with kept shards uses the last
// listing, without reading the directory, only while the directory's
// stamp is the one of a listing taken when its last change was older
// than the margin; any entry added, removed or replaced since is seen by
// the next read.
func TestKeepReadsUnchangedDirectory(t *testing.T) {
	dir, kept, fresh := keptStore(t)
	const margin = 250 * time.Millisecond
	kept.reuse.margin = margin
	settle := func() { time.Sleep(margin + margin/4) }
	read := func(what string, wantListed bool) {
		t.Helper()
		sameRead(t, kept, fresh, what)
		if st := kept.ReadStats(); st.Listed != wantListed {
			t.Fatalf("%s: %+v, want Listed %v", what, st, wantListed)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.db"))
	if len(files) < 3 {
		t.Fatalf("fixture has %d shards", len(files))
	}

	read("first read", true)
	read("changed within the margin", true) // the copies were just made
	settle()
	read("settled", true) // the read before listed a directory changed just before
	read("unchanged", false)
	if st := kept.ReadStats(); !st.Unchanged || st.Reused != st.Kept {
		t.Fatalf("unchanged directory: %+v, want every shard reused, unchanged", st)
	}
	read("unchanged again", false)

	// A new shard, right after a listing that was used again.
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	added := filepath.Join(dir, "counter_987654.db")
	if err := os.WriteFile(added, b, 0o644); err != nil {
		t.Fatal(err)
	}
	read("shard added", true)
	read("at once again", true)
	settle()
	read("settled again", true)
	read("unchanged after the addition", false)

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
	read("shard replaced", true)
	settle()
	read("settled after the replacement", true)
	if err := os.Remove(files[2]); err != nil {
		t.Fatal(err)
	}
	read("shard removed", true)
	settle()
	read("settled after the removal", true)
	read("unchanged after the removal", false)

	// A shard's bytes changed in place do not touch the directory: the
	// listing is used and the shard read again.
	writeFirstValue(t, files[0], 4242.5)
	read("value written in place", false)
	if st := kept.ReadStats(); st.Reparsed != 1 || st.Unchanged {
		t.Fatalf("value written in place: %+v, want one shard parsed again", st)
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
	last := stampOf(&base, now, margin)
	if !last.stable {
		t.Fatal("a directory last changed a minute before its listing: stamp not stable")
	}
	later := now.Add(15 * time.Second)
	for _, tc := range []struct {
		name string
		last dirStamp
		edit func(st *syscall.Stat_t)
		at   time.Time
		want bool
	}{
		{"unchanged", last, nil, later, true},
		{"unchanged, at the same instant", last, nil, now, true},
		{"mtime changed", last, func(st *syscall.Stat_t) { st.Mtim = ts(10 * time.Second) }, later, false},
		{"ctime changed", last, func(st *syscall.Stat_t) { st.Ctim = ts(10 * time.Second) }, later, false},
		{"a nanosecond later", last, func(st *syscall.Stat_t) { st.Mtim.Nsec++ }, later, false},
		{"other inode (directory replaced)", last, func(st *syscall.Stat_t) { st.Ino++ }, later, false},
		{"other device (mounted over)", last, func(st *syscall.Stat_t) { st.Dev++ }, later, false},
		{"link count", last, func(st *syscall.Stat_t) { st.Nlink++ }, later, false},
		{"size", last, func(st *syscall.Stat_t) { st.Size += 4096 }, later, false},
		{"clock set back", last, nil, now.Add(-time.Second), false},
		{"last changed within the margin", stampOf(&syscall.Stat_t{Dev: 7, Ino: 42, Nlink: 2, Size: 4096, Mtim: ts(-time.Second), Ctim: ts(-time.Minute)}, now, margin),
			func(st *syscall.Stat_t) { st.Mtim = ts(-time.Second) }, later, false},
		{"ctime within the margin", stampOf(&syscall.Stat_t{Dev: 7, Ino: 42, Nlink: 2, Size: 4096, Mtim: ts(-time.Minute), Ctim: ts(-2 * time.Second)}, now, margin),
			func(st *syscall.Stat_t) { st.Ctim = ts(-2 * time.Second) }, later, false},
		{"times in the future", stampOf(&syscall.Stat_t{Dev: 7, Ino: 42, Nlink: 2, Size: 4096, Mtim: ts(time.Hour), Ctim: ts(time.Hour)}, now, margin),
			func(st *syscall.Stat_t) { st.Mtim, st.Ctim = ts(time.Hour), ts(time.Hour) }, later, false},
		{"no listing before", dirStamp{}, nil, later, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := base
			if tc.edit != nil {
				tc.edit(&st)
			}
			if got := tc.last.unchanged(stampOf(&st, tc.at, margin)); got != tc.want {
				t.Fatalf("unchanged = %v, want %v", got, tc.want)
			}
		})
	}
}
