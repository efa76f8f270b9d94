//go:build linux && (amd64 || arm64)

package filestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/promstore/promstore/internal/testenv"
)

// withRing runs fn with io_uring switched on (as far as the kernel
// allows) or off, and returns how many shards a ring read meanwhile.
func withRing(t *testing.T, on bool, fn func()) int64 {
	t.Helper()
	was := ringOff.Load()
	t.Cleanup(func() { ringOff.Store(was) })
	ringOff.Store(!on)
	before := ringFiles.Load()
	fn()
	return ringFiles.Load() - before
}

// ringKernel reports whether this kernel lets the process use io_uring
// for the batch reader (and says so in the log either way).
func ringKernel(t *testing.T) bool {
	t.Helper()
	was := ringOff.Load()
	defer ringOff.Store(was)
	ringOff.Store(false)
	r := newRing()
	if r == nil {
		t.Logf("io_uring is not available here (%s/%s): only the usual reads are tested", runtime.GOOS, runtime.GOARCH)
		return false
	}
	r.close()
	return true
}

// ringOn switches io_uring on for the test and reports whether this
// kernel allows it (see ringKernel).
func ringOn(t *testing.T) bool {
	t.Helper()
	if !ringKernel(t) {
		return false
	}
	was := ringOff.Load()
	t.Cleanup(func() { ringOff.Store(was) })
	ringOff.Store(false)
	return true
}

// mustRing returns a new ring, closed after the test.
func mustRing(t *testing.T) *ring {
	t.Helper()
	r := newRing()
	if r == nil {
		t.Fatal("newRing failed after it worked")
	}
	t.Cleanup(r.close)
	return r
}

// TestRingMatchesUsualReads: a store of many small shards with every
// kind of odd one among them (larger than a page, exactly a page, empty,
// a header alone, corrupt, the other layout, a directory, a symbolic
// link, a FIFO) reads the same, sample for sample and problem for
// problem, with the first pages read ahead by io_uring as without: on
// the temporary directory's file system and on tmpfs (where the ring's
// reads wait).
func TestRingMatchesUsualReads(t *testing.T) {
	t.Run("temporary directory", func(t *testing.T) { ringMatchesUsualReads(t, t.TempDir(), false) })
	t.Run("tmpfs", func(t *testing.T) { ringMatchesUsualReads(t, tmpfsDir(t), false) })
	// The shards' pages dropped from the page cache before the ring's
	// read: the rings turn cold and read the later batches with no
	// readahead (see ring.cold).
	t.Run("cold", func(t *testing.T) {
		if ringOn(t) && !mustRing(t).fadvise {
			testenv.Unavailable(t, "this kernel's io_uring has no IORING_OP_FADVISE")
		}
		ringMatchesUsualReads(t, droppableDir(t), true)
	})
}

func ringMatchesUsualReads(t *testing.T, dir string, cold bool) {
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for pid := range 150 {
		var keys []string
		for i := range pid % 9 {
			keys = append(keys, `["req", "req_total", {"path": "/r/`+strconv.Itoa(i)+`"}, "Requests."]`)
		}
		write("counter_"+strconv.Itoa(1000+pid)+".db", shardBytes(t, LayoutTimestamp, keys...))
	}
	// Larger than the page read ahead: read again the usual way.
	var many []string
	for i := range 200 {
		many = append(many, `["big", "big_total", {"path": "/many/`+strconv.Itoa(i)+strings.Repeat("z", i%50)+`"}, "Big."]`)
	}
	write("counter_big.db", shardBytes(t, LayoutTimestamp, many...))
	// Used sizes on both sides of the page read ahead (each entry of
	// these is 64 bytes).
	for n := 40; n < 70; n++ {
		var keys []string
		for i := range n {
			keys = append(keys, `["e", "e_total", {"i": "`+strconv.Itoa(1000+i)+`"}, "E."]`)
		}
		write("counter_edge"+strconv.Itoa(n)+".db", shardBytes(t, LayoutTimestamp, keys...))
	}
	write("counter_empty.db", nil)
	write("counter_header.db", withUsed(make([]byte, 64<<10), 8))
	write("counter_corrupt.db", withInt32(shardBytes(t, LayoutTimestamp, keyA, keyB), 12, 0x7b7b7b7b))
	write("counter_old.db", shardBytes(t, LayoutLegacy, keyA, keyB))
	write("counter_short.db", shardBytes(t, LayoutTimestamp, keyB)[:200])
	write("counter_cut.db", shardBytes(t, LayoutTimestamp, many...)[:3*firstRead]) // used says more than there is
	if err := os.Mkdir(filepath.Join(dir, "counter_dir.db"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "counter_1001.db"), filepath.Join(dir, "counter_link.db")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "counter_fifo.db"), 0o644); err != nil {
		t.Fatal(err)
	}

	type result struct {
		samples []gotSample
		err     string
	}
	read := func() result {
		st := openDir(t, dir, LayoutTimestamp)
		got, err := scanAll(t, st)
		r := result{samples: got}
		if err != nil {
			r.err = err.Error()
		}
		return r
	}
	var usual, ahead result
	if n := withRing(t, false, func() { usual = read() }); n != 0 {
		t.Fatalf("with io_uring off a ring read %d shards", n)
	}
	if cold {
		dropAll(t, dir)
	}
	advisedBefore, waitedBefore := advised.Load(), waited.Load()
	n := withRing(t, true, func() { ahead = read() })
	if cold && ringKernel(t) && waited.Load() == waitedBefore {
		testenv.Unavailable(t, "reads of pages dropped from the page cache found them there at once (a device that reads synchronously?)")
	}
	if a := advised.Load() - advisedBefore; cold && ringKernel(t) && a == 0 {
		t.Errorf("no read was advised POSIX_FADV_RANDOM after the store's pages were dropped")
	} else if !cold && a != 0 {
		t.Errorf("%d reads were advised POSIX_FADV_RANDOM though the store was in the page cache", a)
	}
	if !reflect.DeepEqual(usual, ahead) {
		t.Errorf("read ahead with io_uring:\n%+v\nread the usual way:\n%+v", ahead, usual)
	}
	if usual.err == "" || len(usual.samples) < 500 {
		t.Fatalf("the store's odd shards went unnoticed or its samples unread: %d samples, error %q", len(usual.samples), usual.err)
	}
	if ringKernel(t) && n < 150 {
		t.Errorf("io_uring is available, but a ring read %d of the 150 small shards", n)
	}
}

// TestRingPrefetch: what prefetch makes of files that are not what the
// listing said (gone, a directory, a FIFO), and that it leaves no file
// descriptor open: with reads from the page cache only, with reads that
// wait (as on a file system that refuses the others), and on tmpfs,
// which refuses them (the ring must turn blocking by itself).
func TestRingPrefetch(t *testing.T) {
	if !ringOn(t) {
		return
	}
	t.Run("page cache only", func(t *testing.T) {
		dir := t.TempDir()
		if r := ringPrefetchCase(t, dir, false, false); r.blocking && !onTmpfs(t, dir) {
			t.Errorf("the ring turned blocking on %s (not a tmpfs), where a regular file's read from the page cache only worked", dir)
		}
	})
	t.Run("blocking", func(t *testing.T) { ringPrefetchCase(t, t.TempDir(), true, false) })
	// A cold ring advises POSIX_FADV_RANDOM before every first page's
	// read (a FIFO's advice fails, ESPIPE; its read runs all the same).
	t.Run("cold", func(t *testing.T) {
		before := advised.Load()
		if r := ringPrefetchCase(t, t.TempDir(), false, true); r.fadvise && !r.blocking && advised.Load() == before {
			t.Error("a cold ring advised no read")
		}
	})
	t.Run("tmpfs", func(t *testing.T) {
		dir := tmpfsDir(t)
		if r := ringPrefetchCase(t, dir, false, false); !r.blocking {
			t.Errorf("the ring did not turn blocking on tmpfs (%s)", dir)
		}
	})
}

// tmpfsDir returns a new directory on tmpfs (under /dev/shm), removed
// after the test.
func tmpfsDir(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/dev/shm"); err != nil || !onTmpfs(t, "/dev/shm") {
		testenv.Unavailable(t, "/dev/shm is not a tmpfs here")
	}
	dir, err := os.MkdirTemp("/dev/shm", "promstore-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// onTmpfs reports whether dir is on a tmpfs.
func onTmpfs(t *testing.T, dir string) bool {
	t.Helper()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	return fs.Type == 0x01021994 // TMPFS_MAGIC
}

// ringPrefetchCase runs the odd files of TestRingPrefetch in dir with a
// ring made blocking first or not, and cold first or not (see
// ring.cold), and returns the ring (closed).
func ringPrefetchCase(t *testing.T, dir string, blocking, cold bool) *ring {
	t.Helper()
	small := shardBytes(t, LayoutTimestamp, keyA, keyB)
	files := []shardFile{}
	add := func(name string, regular bool) {
		files = append(files, shardFile{name: name, path: filepath.Join(dir, name), regular: regular})
	}
	if err := os.WriteFile(filepath.Join(dir, "counter_1.db"), small, 0o644); err != nil {
		t.Fatal(err)
	}
	add("counter_1.db", true)
	add("counter_gone.db", true)
	if err := os.Mkdir(filepath.Join(dir, "counter_dir.db"), 0o755); err != nil {
		t.Fatal(err)
	}
	add("counter_dir.db", true)
	if err := syscall.Mkfifo(filepath.Join(dir, "counter_fifo.db"), 0o644); err != nil {
		t.Fatal(err)
	}
	add("counter_fifo.db", true)
	if err := os.WriteFile(filepath.Join(dir, "counter_2.db"), []byte("tiny"), 0o644); err != nil {
		t.Fatal(err)
	}
	add("counter_2.db", true)
	add("counter_1.db", false) // the listing said: not a regular file
	var keys []string
	for i := range 150 {
		keys = append(keys, `["e", "e_total", {"i": "`+strconv.Itoa(1000+i)+`"}, "E."]`)
	}
	large := shardBytes(t, LayoutTimestamp, keys...) // used: 8 + 150*64 bytes, past the first page
	if err := os.WriteFile(filepath.Join(dir, "counter_3.db"), large, 0o644); err != nil {
		t.Fatal(err)
	}
	add("counter_3.db", true)

	// A FIFO some process holds open for writing, without writing: a read
	// that waited would wait for ever.
	if err := syscall.Mkfifo(filepath.Join(dir, "counter_held.db"), 0o644); err != nil {
		t.Fatal(err)
	}
	writer, err := os.OpenFile(filepath.Join(dir, "counter_held.db"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	add("counter_held.db", true)

	fds := openFDs(t)
	r := mustRing(t)
	r.wait = kernelTimespec{nsec: int64(100 * time.Millisecond)} // the held FIFO's read canceled sooner
	r.blocking, r.cold = blocking, cold
	for round := range 3 {
		done := make(chan []*prefetched, 1)
		go func() { done <- r.prefetch(files, nil) }()
		var pre []*prefetched
		select {
		case pre = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("prefetch still waiting after 10 s (a FIFO held open for writing?)")
		}
		if len(pre) != len(files) {
			t.Fatalf("round %d: prefetch returned %d pages for %d files", round, len(pre), len(files))
		}
		if p := pre[0]; p == nil || !reflect.DeepEqual(p.data, small[:firstRead]) || p.eof {
			t.Errorf("counter_1.db: %+v, want its first page", p)
		}
		for _, i := range []int{1, 2, 5} {
			if pre[i] != nil {
				t.Errorf("%s (regular %v): read ahead as %q", files[i].name, files[i].regular, pre[i].data)
			}
		}
		if p := pre[3]; p != nil && (len(p.data) != 0 || !p.eof) {
			t.Errorf("FIFO without a writer read ahead as %+v", p)
		}
		if p := pre[4]; p == nil || string(p.data) != "tiny" || !p.eof {
			t.Errorf("4-byte file read ahead as %+v", p)
		}
		if pre[7] != nil {
			t.Errorf("FIFO held open for writing read ahead as %q", pre[7].data)
		}
		if p := pre[6]; p == nil || !reflect.DeepEqual(p.data, large[:8+150*64]) || p.eof {
			if p == nil {
				t.Errorf("shard of 3 pages not read ahead, want its %d used bytes", 8+150*64)
			} else {
				t.Errorf("shard of 3 pages read ahead as %d bytes (eof %v), want its %d used bytes", len(p.data), p.eof, 8+150*64)
			}
		}
	}
	if got := openFDs(t); got != fds+2 {
		t.Errorf("open file descriptors: %d before, %d with the ring open (want two more: the ring's and its directory's)", fds, got)
	}
	return r
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1 // the directory read itself
}

// TestPrefetchedReadAt: a page read ahead serves what it holds, says
// io.EOF past the end of a file it holds whole, and errPastPage past a
// page that is not the whole file.
func TestPrefetchedReadAt(t *testing.T) {
	data := []byte("0123456789")
	tests := []struct {
		eof     bool
		off, n  int
		want    string
		wantErr error
	}{
		{false, 0, 4, "0123", nil},
		{false, 6, 4, "6789", nil},
		{false, 8, 4, "89", errPastPage},
		{false, 10, 4, "", errPastPage},
		{false, 12, 4, "", errPastPage},
		{true, 8, 4, "89", io.EOF},
		{true, 10, 1, "", io.EOF},
		{true, 0, 10, "0123456789", nil},
	}
	for _, tt := range tests {
		p := &prefetched{data: data, eof: tt.eof}
		b := make([]byte, tt.n)
		n, err := p.ReadAt(b, int64(tt.off))
		if string(b[:n]) != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("eof %v: ReadAt(%d bytes at %d) = %q, %v; want %q, %v", tt.eof, tt.n, tt.off, b[:n], err, tt.want, tt.wantErr)
		}
	}
}

// TestRingSwitch: PROMSTORE_IO_URING=off switches the ring off in a new
// process.
func TestRingSwitch(t *testing.T) {
	if os.Getenv("PROMSTORE_RING_CHILD") == "1" {
		if !ringOff.Load() {
			t.Fatal("PROMSTORE_IO_URING=off did not switch io_uring off")
		}
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(context.Background(), exe, "-test.run", "^TestRingSwitch$")
	cmd.Env = append(os.Environ(), "PROMSTORE_RING_CHILD=1", "PROMSTORE_IO_URING=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// TestRingPrefetchCold: a shard whose pages are not in the page cache
// (dropped with POSIX_FADV_DONTNEED) is read by the ring all the same:
// its first page's read from the page cache only gives up, and the read
// that waits gets it.
func TestRingPrefetchCold(t *testing.T) {
	if !ringOn(t) {
		return
	}
	dir := droppableDir(t)
	small := shardBytes(t, LayoutTimestamp, keyA, keyB)
	var keys []string
	for i := range 150 {
		keys = append(keys, `["e", "e_total", {"i": "`+strconv.Itoa(1000+i)+`"}, "E."]`)
	}
	large := shardBytes(t, LayoutTimestamp, keys...)
	var files []shardFile
	for i, b := range [][]byte{small, large, small} {
		path := filepath.Join(dir, "counter_"+strconv.Itoa(i)+".db")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, shardFile{name: filepath.Base(path), path: path, regular: true})
	}
	r := mustRing(t)
	for round := range 2 {
		for _, f := range files[:2] { // the third stays in the page cache
			dropPages(t, f.path)
		}
		before := waited.Load()
		pre := r.prefetch(files, nil)
		if len(pre) != len(files) {
			t.Fatalf("round %d: prefetch returned %d pages for %d files", round, len(pre), len(files))
		}
		for i, want := range [][]byte{small[:firstRead], large[:8+150*64], small[:firstRead]} {
			// The rest of a large shard not in the page cache may be
			// left to the usual way (nil); what is read must be right.
			if p := pre[i]; (p == nil && i != 1) || p != nil && !reflect.DeepEqual(p.data, want) {
				t.Errorf("round %d: %s read ahead as %+v", round, files[i].name, p)
			}
		}
		// A dropped first page is read again waiting, unless the read
		// from the page cache only found it: the readahead that read
		// starts may complete before it looks again (CI runs saw 1 and
		// 0 of the 2; the other cold tests give up on a device where
		// every such read does). The pages read are checked above
		// either way; no more than the dropped ones may wait.
		if got := waited.Load() - before; got > 2 {
			t.Errorf("round %d: %d first pages read again waiting, want the 2 dropped from the page cache", round, got)
		}
		if r.blocking {
			t.Errorf("round %d: the ring turned blocking", round)
		}
	}
}

// droppableDir returns a new directory on a file system whose pages can
// be dropped from the page cache: t.TempDir(), or where that is a tmpfs,
// one in the package's directory (on the clone's file system). The test
// gives up where the file system refuses reads from the page cache only
// (RWF_NOWAIT: a ring reading there waits, and never finds a page
// missing).
func droppableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if onTmpfs(t, dir) {
		var err error
		if dir, err = os.MkdirTemp(".", "ringcold-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if onTmpfs(t, dir) {
			testenv.Unavailable(t, "both %s and this package's directory are on tmpfs, whose pages cannot be dropped", t.TempDir())
		}
	}
	probe := filepath.Join(dir, ".nowait")
	if err := os.WriteFile(probe, make([]byte, firstRead), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(probe)
	f, err := os.Open(probe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := unix.Preadv2(int(f.Fd()), [][]byte{make([]byte, firstRead)}, 0, unix.RWF_NOWAIT); errors.Is(err, syscall.EOPNOTSUPP) {
		testenv.Unavailable(t, "the file system of %s refuses reads from the page cache only", dir)
	}
	return dir
}

// TestRingColdNoReadahead: once a ring met a first page that was not in
// the page cache, it reads the next batches' shards with no readahead
// (POSIX_FADV_RANDOM): a shard of 64 KiB (sparse, as Python makes it)
// whose used bytes fit its first page leaves that page alone in the page
// cache, where a read with readahead brings a window of several. A ring
// that found every first page cached does not advise at all.
func TestRingColdNoReadahead(t *testing.T) {
	if !ringOn(t) {
		return
	}
	r := mustRing(t)
	if !r.fadvise {
		testenv.Unavailable(t, "this kernel's io_uring has no IORING_OP_FADVISE")
	}
	dir := droppableDir(t)
	const size = 64 << 10
	var files []shardFile
	var want [][]byte
	for i := range 8 {
		path := filepath.Join(dir, "counter_"+strconv.Itoa(100+i)+".db")
		files = append(files, shardFile{name: filepath.Base(path), path: path, regular: true})
		want = append(want, writeSparseShard(t, path, i, size))
	}
	read := func(what string) {
		t.Helper()
		pre := r.prefetch(files, nil)
		if len(pre) != len(files) {
			t.Fatalf("%s: prefetch returned %d pages for %d files", what, len(pre), len(files))
		}
		for i, p := range pre {
			if p == nil || !reflect.DeepEqual(p.data, want[i]) {
				t.Fatalf("%s: %s read ahead as %+v", what, files[i].name, p)
			}
		}
	}
	read("cached")
	if r.cold {
		t.Fatal("a ring that found every first page in the page cache turned cold")
	}
	resident := func() (most int) {
		for _, f := range files {
			most = max(most, residentPages(t, f.path, size))
		}
		return most
	}
	for _, f := range files {
		dropPages(t, f.path)
	}
	waitedBefore := waited.Load()
	read("dropped, first batch")
	if waited.Load() == waitedBefore {
		// Every read from the page cache only found its page: the
		// device completed the readahead before the read looked again.
		testenv.Unavailable(t, "reads of pages dropped from the page cache found them there at once (a device that reads synchronously?)")
	}
	if !r.cold {
		t.Fatal("the ring did not turn cold on first pages that were not in the page cache")
	}
	// The first batch was read with readahead: how many pages it brings
	// is the kernel's; logged to show what the advice saves.
	t.Logf("pages of a shard in the page cache after a read with readahead: up to %d", resident())
	for _, f := range files {
		dropPages(t, f.path)
	}
	read("dropped, second batch")
	if got := resident(); got != 1 {
		t.Errorf("after a cold ring's read, a shard whose used bytes fit one page has %d pages in the page cache, want 1", got)
	}
}

// writeSparseShard writes at path a shard of one page of entries (keyA
// and one of i) in a sparse file of size bytes, as Python makes them: the
// first page written, the rest a hole. It returns the first page.
func writeSparseShard(t *testing.T, path string, i, size int) []byte {
	t.Helper()
	b := shardBytes(t, LayoutTimestamp, keyA, `["e", "e_total", {"i": "`+strconv.Itoa(i)+`"}, "E."]`)[:firstRead]
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(size)); err != nil {
		t.Fatal(err)
	}
	return b
}

// residentPages counts the pages of the first size bytes of path that
// are in the page cache (mincore).
func residentPages(t *testing.T, path string, size int) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Munmap(m) }()
	vec := make([]byte, (size+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// dropAll drops the pages of dir's regular files from the page cache
// (see dropPages).
func dropAll(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		dropPages(t, filepath.Join(dir, e.Name()))
	}
}

// dropPages drops path's pages from the page cache (written back first:
// dirty pages stay), or gives up the test when its first page stays.
func dropPages(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	if residentPages(t, path, firstRead) != 0 {
		testenv.Unavailable(t, "the first page of %s stays in the page cache after POSIX_FADV_DONTNEED", path)
	}
}

// TestRingPrefetchDirs: a ring opens names in the directory of a batch's
// first file, opens another when a batch is of another directory, opens
// by path a file of a batch that is in another directory, and keeps one
// directory open at most.
func TestRingPrefetchDirs(t *testing.T) {
	if !ringOn(t) {
		return
	}
	dirs := []string{t.TempDir(), t.TempDir()}
	shard := map[string][]byte{}
	file := func(dir string, pid int) shardFile {
		name := "counter_" + strconv.Itoa(pid) + ".db"
		path := filepath.Join(dir, name)
		if _, ok := shard[path]; !ok {
			shard[path] = shardBytes(t, LayoutTimestamp, `["c", "c_total", {"pid": "`+strconv.Itoa(pid)+`", "dir": "`+dir+`"}, "C."]`)
			if err := os.WriteFile(path, shard[path], 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return shardFile{name: name, path: path, regular: true}
	}
	fds := openFDs(t)
	r := mustRing(t)
	for i, batch := range [][]shardFile{
		{file(dirs[0], 1), file(dirs[0], 2)},
		{file(dirs[1], 1), file(dirs[1], 2)},
		{file(dirs[1], 3), file(dirs[0], 3), file(dirs[1], 4)},
		{file(dirs[0], 1), file(dirs[1], 1)},
	} {
		pre := r.prefetch(batch, nil)
		if len(pre) != len(batch) {
			t.Fatalf("batch %d: %d pages for %d files", i, len(pre), len(batch))
		}
		for j, f := range batch {
			if want := shard[f.path]; pre[j] == nil || !reflect.DeepEqual(pre[j].data, want[:firstRead]) {
				t.Errorf("batch %d: %s read ahead as %+v", i, f.path, pre[j])
			}
		}
		if got := openFDs(t); got != fds+2 {
			t.Errorf("batch %d: %d open file descriptors, want %d (the ring's and its directory's)", i, got, fds+2)
		}
	}
	r.close()
	if got := openFDs(t); got != fds {
		t.Errorf("%d open file descriptors after close, want %d", got, fds)
	}
}

// TestRingOpensByName: a ring opens by name the files of its directory
// (the batch's first file's), and by path the others.
func TestRingOpensByName(t *testing.T) {
	if !ringOn(t) {
		return
	}
	dirs := []string{t.TempDir(), t.TempDir()}
	file := func(dir string, pid int) shardFile {
		name := "counter_" + strconv.Itoa(pid) + ".db"
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, shardBytes(t, LayoutTimestamp, keyA), 0o644); err != nil {
			t.Fatal(err)
		}
		return shardFile{name: name, path: path, regular: true}
	}
	r := mustRing(t)
	for i, batch := range [][]shardFile{
		{file(dirs[0], 1), file(dirs[0], 2)},
		{file(dirs[1], 1), file(dirs[0], 3)},
		{file(dirs[0], 4), file(dirs[1], 2)},
	} {
		if pre := r.prefetch(batch, nil); len(pre) != len(batch) || pre[0] == nil || pre[1] == nil {
			t.Fatalf("batch %d: read ahead as %v", i, pre)
		}
		for j, f := range batch {
			b := r.paths[r.offs[j]:]
			got := string(b[:bytes.IndexByte(b, 0)])
			want := f.path
			if filepath.Dir(f.path) == filepath.Dir(batch[0].path) {
				want = f.name
			}
			if got != want {
				t.Errorf("batch %d: %s opened as %q, want %q", i, f.path, got, want)
			}
		}
	}
}

// TestRingStorePaths: a store named by a path the kernel resolves
// otherwise than its text reads (".." after a symbolic link; a relative
// path; a trailing separator) reads the same with io_uring as without.
func TestRingStorePaths(t *testing.T) {
	if !ringKernel(t) {
		return
	}
	base := t.TempDir()
	write := func(dir, label string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for pid := range 100 {
			key := `["c", "c_total", {"dir": "` + label + `"}, "C."]`
			if err := os.WriteFile(filepath.Join(dir, "counter_"+strconv.Itoa(1000+pid)+".db"), shardBytes(t, LayoutTimestamp, key), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// base/link/../x is base/a/x for the kernel, base/x for its text.
	write(filepath.Join(base, "a", "x"), "a/x")
	write(filepath.Join(base, "x"), "x")
	if err := os.Symlink(filepath.Join(base, "a", "real"), filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(base, "a", "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(base)
	for _, dir := range []string{base + "/link/../x", "x", "./a/x/", "a/../x"} {
		var usual, ahead []gotSample
		read := func(into *[]gotSample) func() {
			return func() {
				got, err := scanAll(t, openDir(t, dir, LayoutTimestamp))
				if err != nil {
					t.Fatalf("%s: %v", dir, err)
				}
				*into = got
			}
		}
		withRing(t, false, read(&usual))
		if n := withRing(t, true, read(&ahead)); n < 90 { // the first units, of a file each, are not
			t.Errorf("%s: a ring read %d of the 100 shards", dir, n)
		}
		if len(usual) != 100 || !reflect.DeepEqual(usual, ahead) {
			t.Errorf("%s: read with io_uring (%d samples):\n%v\nwithout (%d):\n%v", dir, len(ahead), ahead[:min(2, len(ahead))], len(usual), usual[:min(2, len(usual))])
		}
	}
}

// TestRingShortRestCloses: shards whose used size says more than their
// files hold: the read of the rest comes short, the shard is left to the
// usual way (which tells what is wrong), and the close hard-linked to
// that read runs all the same, whether the ring waits or not.
func TestRingShortRestCloses(t *testing.T) {
	if !ringOn(t) {
		return
	}
	dir := t.TempDir()
	var keys []string
	for i := range 200 {
		keys = append(keys, `["e", "e_total", {"i": "`+strconv.Itoa(1000+i)+`"}, "E."]`)
	}
	cut := shardBytes(t, LayoutTimestamp, keys...)[:2*firstRead]
	var files []shardFile
	for i := range 3 {
		path := filepath.Join(dir, "counter_"+strconv.Itoa(i)+".db")
		if err := os.WriteFile(path, cut, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, shardFile{name: filepath.Base(path), path: path, regular: true})
	}
	fds := openFDs(t)
	r := mustRing(t)
	for _, blocking := range []bool{false, true} {
		r.blocking = blocking
		pre := r.prefetch(files, nil)
		for i, p := range pre {
			if p != nil && (!p.eof || len(p.data) != len(cut)) {
				t.Errorf("blocking %v: %s read ahead as %d bytes (eof %v), want nil or its %d bytes to the end", blocking, files[i].name, len(p.data), p.eof, len(cut))
			}
		}
		if got := openFDs(t); got != fds+2 {
			t.Errorf("blocking %v: %d open file descriptors, want %d (the ring's and its directory's)", blocking, got, fds+2)
		}
	}
}

// TestRingFIFORestTimeout: a FIFO held open by a writer that wrote a
// first page whose used size says more: a blocking ring's read of the
// rest is canceled, not waited for.
func TestRingFIFORestTimeout(t *testing.T) {
	if !ringOn(t) {
		return
	}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "counter_fifo.db")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	page := make([]byte, firstRead)
	binary.LittleEndian.PutUint32(page, 2*firstRead)
	if _, err := w.Write(page); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "counter_1.db")
	if err := os.WriteFile(small, shardBytes(t, LayoutTimestamp, keyA), 0o644); err != nil {
		t.Fatal(err)
	}
	files := []shardFile{{name: "counter_1.db", path: small, regular: true}, {name: "counter_fifo.db", path: fifo, regular: true}}
	r := mustRing(t)
	r.blocking = true
	r.wait = kernelTimespec{nsec: int64(100 * time.Millisecond)}
	done := make(chan []*prefetched, 1)
	go func() { done <- r.prefetch(files, nil) }()
	select {
	case pre := <-done:
		if len(pre) != 2 || pre[0] == nil {
			t.Fatalf("read ahead as %v", pre)
		}
		if pre[1] != nil {
			t.Errorf("FIFO read ahead as %d bytes", len(pre[1].data))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("prefetch still waiting after 10 s for the rest of a FIFO held open for writing")
	}
}

// TestRingRelativePaths: in a batch of relative paths of two
// directories, a file of the other directory is opened where its path
// says (a/b/counter_1.db is a different file from b/counter_1.db).
func TestRingRelativePaths(t *testing.T) {
	if !ringOn(t) {
		return
	}
	t.Chdir(t.TempDir())
	shard := map[string][]byte{}
	for _, dir := range []string{"a", "b", "a/b"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := dir + "/counter_1.db"
		shard[path] = shardBytes(t, LayoutTimestamp, `["c", "c_total", {"dir": "`+dir+`"}, "C."]`)
		if err := os.WriteFile(path, shard[path], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := mustRing(t)
	batch := []shardFile{{name: "counter_1.db", path: "a/counter_1.db", regular: true}, {name: "counter_1.db", path: "b/counter_1.db", regular: true}}
	pre := r.prefetch(batch, nil)
	for i, f := range batch {
		if len(pre) != len(batch) || pre[i] == nil || !reflect.DeepEqual(pre[i].data, shard[f.path][:firstRead]) {
			t.Errorf("%s: read ahead as another file (or not at all)", f.path)
		}
	}
}

// TestRingAbandoned: when io_uring_enter fails at any of a batch's
// submissions (the opens, the first pages, the rest of larger shards, the
// closes), the ring is given up and io_uring switched off, and the store
// still reads the same, sample for sample, as without io_uring. No file
// descriptor is left open but the abandoned ring's own and its
// directory's, and a batch's shards when its closes were the submission
// that failed (never submitted, so never closed: an open still in flight
// could have taken a number closed meanwhile). On tmpfs too, where the
// ring's reads wait and the rest of larger shards is its own submission.
func TestRingAbandoned(t *testing.T) {
	if !ringKernel(t) {
		return
	}
	for _, fs := range []struct {
		name   string
		dir    func(t *testing.T) string
		stages []string
	}{
		{"temporary directory", func(t *testing.T) string { return t.TempDir() }, []string{"opens", "first pages", "closes"}},
		{"tmpfs", tmpfsDir, []string{"opens", "first pages", "first pages waiting", "rests waiting", "closes"}},
	} {
		t.Run(fs.name, func(t *testing.T) {
			dir := fs.dir(t)
			for pid := range 300 {
				var keys []string
				for i := range 1 + pid%3*40 { // every third shard past its first page
					keys = append(keys, `["e", "e_total", {"i": "`+strconv.Itoa(1000+i)+`"}, "E."]`)
				}
				if err := os.WriteFile(filepath.Join(dir, "counter_"+strconv.Itoa(1000+pid)+".db"), shardBytes(t, LayoutTimestamp, keys...), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			read := func() []gotSample {
				got, err := scanAll(t, openDir(t, dir, LayoutTimestamp))
				if err != nil {
					t.Fatal(err)
				}
				return got
			}
			var usual []gotSample
			withRing(t, false, func() { usual = read() })
			t.Cleanup(func() { ringFault = nil })
			for _, stage := range fs.stages {
				for nth := range int32(3) { // the stage's first, second and third submission
					var seen atomic.Int32
					var failed atomic.Bool
					ringFault = func(what string) error {
						if what == stage && seen.Add(1) == nth+1 {
							failed.Store(true)
							return syscall.EIO
						}
						return nil
					}
					fds := openFDs(t)
					var got []gotSample
					withRing(t, true, func() { got = read() })
					ringFault = nil
					if !failed.Load() {
						// A stage of fewer submissions (on tmpfs, each
						// ring's first pages once: then it waits).
						if nth == 0 {
							t.Fatalf("%s: a read made no such submission", stage)
						}
						ringOff.Store(false)
						break
					}
					if !reflect.DeepEqual(got, usual) {
						t.Errorf("%s %d failed: the store read %d samples, %d without io_uring, or other ones", stage, nth+1, len(got), len(usual))
					}
					if !ringOff.Load() {
						t.Errorf("%s %d failed: io_uring still on", stage, nth+1)
					}
					n := openFDs(t) - fds
					if stage == "closes" && (n < 2 || n > 2+ringBatch) || stage != "closes" && n != 2 {
						t.Errorf("%s %d failed: %d more open file descriptors", stage, nth+1, n)
					}
					ringOff.Store(false)
				}
			}
		})
	}
}
