//go:build linux && (amd64 || arm64)

package filestore

import (
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/promstore/promstore/internal/testenv"
)

// inblock is the process's block input count (getrusage, ru_inblock).
func inblock(t *testing.T) int64 {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Inblock
}

// TestUsualReadsCold: shards read the usual way (io_uring off) whose
// pages were dropped from the page cache. Once a worker saw the process
// read from the disk (it looks every coldCheckEvery shards), it advises
// POSIX_FADV_RANDOM before reading the next shards, which then leave only
// the page read in the page cache (one for a shard of one page of
// entries in a sparse 64 KiB file, as Python makes them); a store found
// in the page cache is read without advice. The samples are the same
// either way.
func TestUsualReadsCold(t *testing.T) {
	dir := droppableDir(t)
	const size = 64 << 10
	const n = 200
	for i := range n {
		writeSparseShard(t, filepath.Join(dir, "counter_"+strconv.Itoa(1000+i)+".db"), i, size)
	}
	read := func() []gotSample {
		t.Helper()
		var got []gotSample
		withRing(t, false, func() {
			var err error
			if got, err = scanAll(t, openDir(t, dir, LayoutTimestamp)); err != nil {
				t.Fatal(err)
			}
		})
		return got
	}
	warm := read()
	if len(warm) != 2*n {
		t.Fatalf("%d samples, want %d", len(warm), 2*n)
	}
	advisedBefore, inBefore := advisedRaw.Load(), inblock(t)
	again := read()
	if inblock(t) == inBefore && advisedRaw.Load() != advisedBefore {
		t.Errorf("a store in the page cache (no block read meanwhile): %d shards advised, want none", advisedRaw.Load()-advisedBefore)
	}
	if len(again) != len(warm) {
		t.Fatalf("read again: %d samples, want %d", len(again), len(warm))
	}
	dropAll(t, dir)
	advisedBefore, inBefore = advisedRaw.Load(), inblock(t)
	cold := read()
	if inblock(t) == inBefore {
		testenv.Unavailable(t, "reading pages dropped from the page cache counted no block input (no task I/O accounting?)")
	}
	if len(cold) != len(warm) {
		t.Fatalf("read with its pages dropped: %d samples, want %d", len(cold), len(warm))
	}
	for i := range cold {
		if cold[i] != warm[i] {
			t.Fatalf("sample %d read with the pages dropped %+v, in the page cache %+v", i, cold[i], warm[i])
		}
	}
	// Each worker reads up to coldCheckEvery+1 shards before it sees the
	// disk reads, with readahead; the rest without.
	before := parseWorkers * (coldCheckEvery + 1)
	if got := advisedRaw.Load() - advisedBefore; got < n-int64(before) {
		t.Errorf("%d shards advised POSIX_FADV_RANDOM after their pages were dropped, want at least %d", got, n-before)
	}
	more := 0
	for i := range n {
		if residentPages(t, filepath.Join(dir, "counter_"+strconv.Itoa(1000+i)+".db"), size) > 1 {
			more++
		}
	}
	if more > before {
		t.Errorf("%d shards of one page have more pages in the page cache after the read, want at most %d (read before a worker saw the disk reads)", more, before)
	}
}
