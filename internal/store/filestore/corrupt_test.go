package filestore

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/store"
)

// shardBytes returns a 64 KiB shard holding entries for keys in layout.
func shardBytes(t testing.TB, layout int, keys ...string) []byte {
	t.Helper()
	recs := make([]record, len(keys))
	for i, k := range keys {
		recs[i] = record{text: k, value: float64(i + 1), ts: float64(100 + i)}
	}
	used, size, err := encodeShard(recs, layout)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	copy(b, used)
	return b
}

// withUsed returns a copy of b with the used size set to u.
func withUsed(b []byte, u int32) []byte {
	c := append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(c, uint32(u))
	return c
}

// withInt32 returns a copy of b with an int32 v at off.
func withInt32(b []byte, off int, v int32) []byte {
	c := append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(c[off:], uint32(v))
	return c
}

const (
	keyA = `["req", "req_total", {"path": "/a"}, "Requests."]`
	keyB = `["req", "req_total", {"path": "/b \"q\""}, "Requests."]`
)

func TestCorruptShards(t *testing.T) {
	good := shardBytes(t, 16, keyA, keyB)
	used := int32(binary.LittleEndian.Uint32(good))
	garbage := make([]byte, 65536)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	binary.LittleEndian.PutUint32(garbage, 4000)
	notJSON := shardBytes(t, 8, "hello, world")
	invalidUTF8 := shardBytes(t, 16, `["req", "req_total", {"path": "`+"\xff\xfe"+`"}, "Requests."]`)

	tests := []struct {
		name string
		file string
		data []byte
		dir  bool
		// make, when set, creates the file at path instead of data.
		make func(t *testing.T, path string) error
		want []string // substrings of the ShardError; none: no error
		// samples the file itself delivers when it is fine
		samples int
	}{
		{name: "empty file", file: "counter_2.db", data: []byte{}, want: []string{"shard counter_2.db: empty file (0 bytes)"}},
		{name: "shorter than header", file: "counter_2.db", data: []byte{8, 0, 0, 0}, want: []string{"shard counter_2.db: file of 4 bytes is shorter than the 8-byte header"}},
		{name: "used below header", file: "counter_2.db", data: withUsed(good, 4), want: []string{"shard counter_2.db: used size 4 is less than the 8-byte header"}},
		{name: "negative used", file: "counter_2.db", data: withUsed(good, -7), want: []string{"used size -7 is less than"}},
		{name: "used past file size", file: "counter_2.db", data: good[:used-10], want: []string{"shard counter_2.db:", "used size", "exceeds file size", "truncated"}},
		{name: "used past size, big", file: "gauge_all_2.db", data: withUsed(good, 100000), want: []string{"shard gauge_all_2.db: used size 100000 exceeds file size 65536"}},
		{name: "negative key length", file: "counter_2.db", data: withInt32(good, 8, -3), want: []string{"shard counter_2.db: entry at offset 8: negative key length -3"}},
		{name: "huge key length", file: "counter_2.db", data: withInt32(good, 8, 1919251561), want: []string{"shard counter_2.db: entry at offset 8: key length 1919251561 exceeds used size " + strconv.Itoa(int(used))}},
		{name: "key not JSON", file: "summary_2.db", data: notJSON, want: []string{"shard summary_2.db: entry at offset 8: invalid key", "does not start with '['"}},
		{name: "key not UTF-8", file: "summary_2.db", data: invalidUTF8, want: []string{"shard summary_2.db: entry at offset 8: invalid key", "UTF-8"}},
		{name: "garbage", file: "histogram_2.db", data: garbage, want: []string{"shard histogram_2.db: entry at offset 8:"}},
		{name: "truncated mid-value", file: "counter_2.db", data: withUsed(good, used-4), want: []string{"shard counter_2.db: entry at offset", "ends past used size " + strconv.Itoa(int(used-4))}},
		{name: "truncated mid-key", file: "counter_2.db", data: withUsed(good, used-40), want: []string{"shard counter_2.db: entry at offset", "exceeds used size " + strconv.Itoa(int(used-40))}},
		{name: "stray bytes after last entry", file: "counter_2.db", data: withUsed(good, used+2), want: []string{"shard counter_2.db: entry at offset " + strconv.Itoa(int(used)), "2 stray bytes"}},
		{name: "bad file name", file: "foo_2.db", data: good, want: []string{"shard foo_2.db: not a shard file name", `shard name "foo_2"`}},
		{name: "unknown gauge mode", file: "gauge_bogus_2.db", data: good, want: []string{"shard gauge_bogus_2.db: not a shard file name", `unknown gauge mode "bogus"`}},
		{name: "all-mode gauge of a pid holding _", file: "gauge_all_web_1.db", data: good, want: []string{"shard gauge_all_web_1.db: not a shard file name", `a gauge of mode all, whose samples Python's collector labels pid="", not "web_1"`}},
		{name: "directory named .db", file: "counter_2.db", dir: true, want: []string{"shard counter_2.db: cannot read: not a regular file"}},
		{name: "FIFO named like a shard", file: "counter_2.db", make: mkfifo, want: []string{"shard counter_2.db: cannot read: not a regular file but a named pipe (FIFO)"}},
		{name: "socket named like a shard", file: "counter_2.db", make: mksocket, want: []string{"shard counter_2.db: cannot read: not a regular file but a socket"}},
		{name: "symbolic link to a shard", file: "counter_2.db", make: mksymlink(good), want: []string{"shard counter_2.db: cannot read: not a regular file but a symbolic link (not followed)"}},
		{name: "zero-filled used region", file: "counter_2.db", data: withUsed(make([]byte, 65536), 65536), want: []string{"shard counter_2.db: entry at offset 8: key length 0 (zero bytes where an entry should be, 65528 bytes before used size 65536)"}},
		{name: "zeros after the entries", file: "counter_2.db", data: withUsed(good, 65536), want: []string{"shard counter_2.db: entry at offset " + strconv.Itoa(int(used)) + ": key length 0"}},
		// Not errors.
		{name: "not .db ignored", file: "counter_2.txt", data: garbage},
		{name: "temp file ignored", file: ".counter_2.db.tmp-123", data: garbage},
		{name: "hidden .db ignored", file: ".counter_2.db", data: garbage},
		{name: "no entries", file: "counter_2.db", data: withUsed(make([]byte, 65536), 8)},
		{name: "header not yet written", file: "counter_2.db", data: make([]byte, 65536)},
		{name: "good 8-byte", file: "counter_2.db", data: shardBytes(t, 8, keyA, keyB), samples: 2},
		{name: "good 16-byte", file: "counter_2.db", data: good, samples: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			// Good shards on both sides of the bad one in name order.
			for _, n := range []string{"counter_1.db", "summary_9.db"} {
				if err := os.WriteFile(filepath.Join(dir, n), shardBytes(t, 16, keyA, keyB), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, tt.file)
			var err error
			switch {
			case tt.make != nil:
				err = tt.make(t, path)
			case tt.dir:
				err = os.Mkdir(path, 0o755)
			default:
				err = os.WriteFile(path, tt.data, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			st := openDir(t, dir, 0)
			got, err := scanAll(t, st)
			if want := 4 + tt.samples; len(got) != want {
				t.Errorf("got %d samples, want %d", len(got), want)
			}
			for _, s := range got {
				if s.key != keyA && s.key != keyB {
					t.Errorf("unexpected sample %+v", s)
				}
			}
			infos, lerr := st.Shards(context.Background())
			if lerr != nil {
				t.Fatal(lerr)
			}
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Scan: %v", err)
				}
				for _, in := range infos {
					if len(in.Problems) > 0 {
						t.Errorf("%s: problems %v", in.Location, in.Problems)
					}
				}
				return
			}
			problems, ok := store.Partial(err)
			if !ok || len(problems) != 1 {
				t.Fatalf("Scan error = %v, want one shard problem", err)
			}
			msg := problems[0].Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if problems[0].Shard != tt.file {
				t.Errorf("ShardError.Shard = %q, want %q", problems[0].Shard, tt.file)
			}
			var found bool
			for _, in := range infos {
				if filepath.Base(in.Location) == tt.file {
					found = true
					if len(in.Problems) != 1 || in.Samples != 0 {
						t.Errorf("Shards: %s: problems %v, samples %d", tt.file, in.Problems, in.Samples)
					}
					// Every file's size, a shard's name or not.
					if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() && (in.Bytes != fi.Size() || in.Updated.IsZero()) {
						t.Errorf("Shards: %s: %d bytes, updated %v; the file has %d", tt.file, in.Bytes, in.Updated, fi.Size())
					}
				} else if len(in.Problems) > 0 {
					t.Errorf("Shards: good shard %s has problems %v", in.Location, in.Problems)
				}
			}
			if !found {
				t.Errorf("Shards does not list %s", tt.file)
			}
			t.Logf("%s", msg)
		})
	}
}

// TestShardShrinksWhileMapped truncates a mapped shard: reading it must
// report the shard, not crash the program.
func TestShardShrinksWhileMapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "counter_1.db")
	if err := os.WriteFile(path, shardBytes(t, 16, keyA, keyB), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := mapShardFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.unmap()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	ps := parser{keys: newKeyCache(nil, nil)}
	entries, _, perr := parseMapped(&ps, &m, nil)
	if perr == nil || !strings.Contains(perr.reason, "shrank") || len(entries) != 0 {
		t.Fatalf("parse of a truncated mapping = %d entries, %v", len(entries), perr)
	}
}

// TestManyNewKeysFirstBadKeyWins: a shard of thousands of new keys (looked
// up on every core after the walk) reports the first entry whose key does
// not parse, as a walk that parses one key at a time does, also when a
// later entry is broken too or the file is cut short after them.
func TestManyNewKeysFirstBadKeyWins(t *testing.T) {
	const n = 3000
	var keys []string
	for i := range n {
		keys = append(keys, store.EncodeKey("req", "req_total", []store.Label{{Name: "i", Value: strconv.Itoa(i)}}, "Requests."))
	}
	good := shardBytes(t, 16, keys...)
	// Offsets of entries 1234 and 2345, by walking the good shard.
	off := map[int]int{}
	pos := headerSize
	for i := range n {
		off[i] = pos
		l := int(binary.LittleEndian.Uint32(good[pos:]))
		pos += 4 + l + padding(l) + 16
	}
	used := pos
	breakKey := func(b []byte, i int) []byte {
		c := append([]byte(nil), b...)
		c[off[i]+4] = '{' // not a JSON array any more
		return c
	}
	tests := []struct {
		name string
		data []byte
		want int // offset of the reported entry
	}{
		{"one bad key", breakKey(good, 2345), off[2345]},
		{"two bad keys", breakKey(breakKey(good, 2345), 1234), off[1234]},
		{"bad key, then cut short", withUsed(breakKey(good, 1234), int32(off[2345]+10)), off[1234]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps := parser{keys: newKeyCache(nil, nil)}
			entries, _, perr := ps.parse(tc.data, int64(len(tc.data)), nil)
			if perr == nil || perr.offset != int64(tc.want) || len(entries) != 0 {
				t.Fatalf("parse = %d entries, %v; want the entry at offset %d", len(entries), perr, tc.want)
			}
		})
	}
	ps := parser{keys: newKeyCache(nil, nil)}
	entries, layout, perr := ps.parse(good, int64(len(good)), nil)
	if perr != nil || layout != 16 || len(entries) != n || used != int(binary.LittleEndian.Uint32(good)) {
		t.Fatalf("good shard: %d entries, layout %d, %v", len(entries), layout, perr)
	}
	for i, e := range entries {
		if e.Key == nil || e.Key.Text != keys[i] || e.Value != float64(i+1) {
			t.Fatalf("entry %d = %+v", i, e)
		}
	}
}
