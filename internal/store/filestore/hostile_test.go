package filestore

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/promstore/promstore/internal/store"
)

// mkfifo makes a named pipe at path: opening it for reading would wait
// for a writer forever.
func mkfifo(t *testing.T, path string) error {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("no named pipes in a directory on windows")
	}
	return syscall.Mkfifo(path, 0o644)
}

// mksocket makes a listening unix socket at path.
func mksocket(t *testing.T, path string) error {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	t.Cleanup(func() { l.Close() })
	return nil
}

// mksymlink returns a maker of a symbolic link to a file holding data.
func mksymlink(data []byte) func(t *testing.T, path string) error {
	return func(t *testing.T, path string) error {
		t.Helper()
		target := filepath.Join(t.TempDir(), "elsewhere.db")
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return err
		}
		return os.Symlink(target, path)
	}
}

// TestZeroFilledShardsStayBounded: a shard whose used size covers zeros,
// whether a sparse file of 10 GiB or 64 MiB of real zeros, is reported at
// its first entry, without memory growing with the used size (it once
// made an entry of every 24 zero bytes: gigabytes).
func TestZeroFilledShardsStayBounded(t *testing.T) {
	tests := []struct {
		name string
		size int64
		used int32
		real bool // zeros written, not a hole
	}{
		{"sparse 10 GiB, used 2 GiB", 10 << 30, 0x7FFFFFF8, false},
		{"64 MiB of zeros", 64 << 20, 64 << 20, true},
		{"sparse 1 GiB, used 1 GiB", 1 << 30, 1 << 30, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "counter_7.db")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			var hdr [8]byte
			binary.LittleEndian.PutUint32(hdr[:], uint32(tc.used))
			if _, err := f.Write(hdr[:]); err != nil {
				t.Fatal(err)
			}
			if tc.real {
				if _, err := f.Write(make([]byte, tc.size-8)); err != nil {
					t.Fatal(err)
				}
			} else if err := f.Truncate(tc.size); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			st := openDir(t, dir, 0)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got, err := scanAll(t, st)
			infos, lerr := st.Shards(context.Background())
			runtime.ReadMemStats(&after)
			if lerr != nil {
				t.Fatal(lerr)
			}
			want := "shard counter_7.db: entry at offset 8: key length 0 (zero bytes where an entry should be, " + strconv.Itoa(int(tc.used)-8) + " bytes before used size " + strconv.Itoa(int(tc.used)) + ")"
			problems, ok := store.Partial(err)
			if !ok || len(problems) != 1 || problems[0].Error() != want || len(got) != 0 {
				t.Fatalf("Scan = %d samples, %v; want %q", len(got), err, want)
			}
			if len(infos) != 1 || len(infos[0].Problems) != 1 || !strings.Contains(infos[0].Problems[0], "key length 0") {
				t.Fatalf("Shards = %+v", infos)
			}
			// A scan and a listing of one shard allocate a few windows
			// (256 KiB) and buffers, not memory in proportion to used.
			const ceiling = 8 << 20
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > ceiling {
				t.Errorf("scan and listing allocated %d bytes, want at most %d", alloc, ceiling)
			}
		})
	}
}

// stopAfter is a context whose Err turns to context.Canceled after its
// first n calls, so that a test can stop a read in the middle of a parse
// without timing.
type stopAfter struct {
	context.Context
	n     int32
	calls atomic.Int32
	done  chan struct{}
}

func newStopAfter(n int32) *stopAfter {
	return &stopAfter{Context: context.Background(), n: n, done: make(chan struct{})}
}

func (c *stopAfter) Err() error {
	if c.calls.Add(1) > c.n {
		return context.Canceled
	}
	return nil
}

func (c *stopAfter) Done() <-chan struct{} { return c.done }

// bigShard returns a well-formed 16-byte shard of n entries, a few MiB.
func bigShard(t testing.TB, n int) []byte {
	t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = store.EncodeKey("req", "req_total", []store.Label{{Name: "i", Value: strconv.Itoa(i)}}, "Requests.")
	}
	return shardBytes(t, 16, keys...)
}

// writeTemp returns a file holding data, open for reading.
func writeTemp(t *testing.T, data []byte) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "counter_1.db")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestParseStopsWhenCanceled: a parse looks at its context as it goes
// (every checkEvery entries, every window), so a scan that is canceled
// while a large shard is parsed ends within a few thousand entries
// instead of parsing the rest.
func TestParseStopsWhenCanceled(t *testing.T) {
	data := bigShard(t, 50000)
	used := int(binary.LittleEndian.Uint32(data))

	t.Run("walk", func(t *testing.T) {
		ps := parser{keys: newKeyCache(nil, nil)}
		ps.keys.ctx = newStopAfter(0)
		entries, _, perr := ps.parse(data, int64(len(data)), nil)
		if perr == nil || !strings.Contains(perr.reason, "read stopped: context canceled") || len(entries) != 0 {
			t.Fatalf("parse = %d entries, %v; want it stopped", len(entries), perr)
		}
		if perr.offset >= int64(used)/4 {
			t.Fatalf("parse stopped at offset %d of %d, want within the first %d entries", perr.offset, used, checkEvery)
		}
	})
	t.Run("stream", func(t *testing.T) {
		f := writeTemp(t, data)
		ps := parser{keys: newKeyCache(nil, nil)}
		ps.keys.ctx = newStopAfter(0)
		entries, _, ok := ps.stream(f, int64(len(data)), nil)
		if ok || len(entries) != 0 {
			t.Fatalf("stream = %d entries, ok %v; want it stopped at its first refill", len(entries), ok)
		}
	})
	t.Run("scan", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "counter_1.db"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		st := openDir(t, dir, 0)
		// Err's first call is the scan's own check before it lists the
		// directory; every later one finds it canceled.
		ctx := newStopAfter(1)
		n := 0
		err := st.Scan(ctx, func(store.Sample) error { n++; return nil })
		if !errors.Is(err, context.Canceled) || n != 0 {
			t.Fatalf("Scan = %d samples, %v; want context.Canceled", n, err)
		}
	})
}

// TestShardsReportDiskUse: a listing tells the used size, the apparent
// size and the disk space apart: a shard Python grew to 1 MiB holds a
// few KiB and takes a few KiB of disk, not 1 MiB.
func TestShardsReportDiskUse(t *testing.T) {
	dir := t.TempDir()
	good := shardBytes(t, 16, keyA, keyB)
	used := int64(binary.LittleEndian.Uint32(good))
	path := filepath.Join(dir, "counter_1.db")
	if err := os.WriteFile(path, good[:4096], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 1<<20); err != nil { // a hole, as Python's truncate makes
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "counter_2.db"), []byte{}, 0o644); err != nil {
		t.Fatal(err)
	}
	infos, err := openDir(t, dir, 0).Shards(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Fatalf("Shards = %+v", infos)
	}
	for _, in := range infos {
		switch filepath.Base(in.Location) {
		case "counter_1.db":
			if in.Bytes != 1<<20 || in.Used != used || in.Allocated <= 0 || in.Allocated >= 1<<20 {
				t.Errorf("sparse shard: bytes %d, used %d, allocated %d; want 1 MiB, %d, a few KiB", in.Bytes, in.Used, in.Allocated, used)
			}
		case "counter_2.db":
			if in.Bytes != 0 || in.Used != 0 || in.Allocated != 0 || len(in.Problems) != 1 {
				t.Errorf("empty shard: %+v", in)
			}
		}
	}
}
