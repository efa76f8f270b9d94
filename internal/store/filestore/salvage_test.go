package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzInspect feeds arbitrary bytes to Inspect, fsck's entry-by-entry
// reader. It must not panic, must agree with the shard parser on every
// file the parser accepts (sound, same entries, same layout), must never
// call a file sound that the parser rejects, and what it salvages of a
// damaged file must rewrite into a file the parser reads back entry for
// entry. Seeds: testdata/fuzz/FuzzInspect (those of FuzzParseShard:
// fixture files and corrupt variants) and the ones below.
func FuzzInspect(f *testing.F) {
	good := shardBytes(f, 16, keyA, keyB)
	f.Add(good)
	f.Add(shardBytes(f, 8, keyA, keyB))
	f.Add(good[:len(good)-3])
	f.Fuzz(func(t *testing.T, data []byte) {
		in := Inspect(data, 0)
		p := parser{keys: newKeyCache(nil, nil), hint: 16}
		entries, layout, perr := p.parse(data, int64(len(data)), nil)
		if perr == nil {
			if !in.Sound() {
				t.Fatalf("the parser reads the file, Inspect finds %s: %s", in.Problem, in.Detail)
			}
			if len(entries) != len(in.Entries) || (len(entries) > 0 && layout != in.Layout) {
				t.Fatalf("parser: %d entries, layout %d; Inspect: %d entries, layout %d", len(entries), layout, len(in.Entries), in.Layout)
			}
			for i, e := range entries {
				s := in.Entries[i]
				if e.Key.Text != s.Key.Text || math.Float64bits(e.Value) != math.Float64bits(s.Value) || math.Float64bits(e.Timestamp) != math.Float64bits(s.Timestamp) {
					t.Fatalf("entry %d: parser %q %v %v, Inspect %q %v %v", i, e.Key.Text, e.Value, e.Timestamp, s.Key.Text, s.Value, s.Timestamp)
				}
			}
			return
		}
		if in.Sound() && len(in.Entries) > 0 {
			t.Fatalf("the parser rejects the file (%v), Inspect calls it sound", perr)
		}
		if len(in.Entries) == 0 {
			return
		}
		path := filepath.Join(t.TempDir(), "counter_1.db")
		if err := RewriteSalvaged(path, in); err != nil {
			t.Fatal(err)
		}
		back, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p = parser{keys: newKeyCache(nil, nil), hint: 16}
		got, _, perr := p.parse(back, int64(len(back)), nil)
		if perr != nil || len(got) != len(in.Entries) {
			t.Fatalf("the salvage of %d entries reads back as %d entries, %v", len(in.Entries), len(got), perr)
		}
		for i, e := range got {
			if e.Key.Text != in.Entries[i].Key.Text {
				t.Fatalf("salvaged entry %d reads back as %q, want %q", i, e.Key.Text, in.Entries[i].Key.Text)
			}
		}
	})
}

// TestInspectFileReadsAsInspect: InspectFile, which reads a file only up
// to a little past its used size, finds what Inspect finds in all of the
// file's bytes: sound shards with room after them, entries past the used
// size (a few, and more than the bytes past the used size it first
// reads), garbage or a torn entry after it, used sizes past the end, of
// 0, below the header or negative, corrupt entries, tiny files, both
// layouts.
func TestInspectFileReadsAsInspect(t *testing.T) {
	keys := func(n int) []string {
		ks := make([]string, n)
		for i := range ks {
			ks[i] = fmt.Sprintf(`["req", "req_total", {"path": "/p/%d"}, "Requests."]`, i)
		}
		return ks
	}
	walkEnd := func(b []byte, layout, k int) int32 {
		pos := headerSize
		for range k {
			n := int(binary.LittleEndian.Uint32(b[pos:]))
			pos += 4 + n + padding(n) + layout
		}
		return int32(pos)
	}
	type tc struct {
		name string
		data []byte
	}
	var cases []tc
	for _, layout := range []int{LayoutTimestamp, LayoutLegacy} {
		for _, n := range []int{0, 1, 3, 40, 400} {
			b := shardBytes(t, layout, keys(n)...)
			name := fmt.Sprintf("%d-byte layout, %d entries", layout, n)
			cases = append(cases, tc{name + ", room after", b})
			used := int(binary.LittleEndian.Uint32(b))
			cases = append(cases, tc{name + ", no room after", b[:used]})
			if n == 0 {
				continue
			}
			// Entries past the used size: the last one, or all but the first.
			cases = append(cases,
				tc{name + ", one past used", withUsed(b, walkEnd(b, layout, n-1))},
				tc{name + ", all but one past used", withUsed(b, walkEnd(b, layout, 1))},
				tc{name + ", used past the end", withUsed(b, int32(len(b)+100))},
				tc{name + ", used past the end of a file cut short", withUsed(b[:used], int32(used+64))},
				tc{name + ", corrupt first key", withInt32(b, headerSize+4, 0x7b7b7b7b)}, // '{{{{' opens the key
			)
			g := append([]byte(nil), b...)
			for i := used; i < min(len(g), used+300); i++ {
				g[i] = byte(i*7 + 1)
			}
			cases = append(cases, tc{name + ", garbage after used", g})
			torn := append([]byte(nil), b...)
			copy(torn[used:], b[headerSize:walkEnd(b, layout, 1)])
			cases = append(cases, tc{name + ", an entry after used", torn})
			cases = append(cases, tc{name + ", the entry after used cut by the end", torn[:used+20]})
		}
	}
	for _, u := range []int32{0, 3, -5} {
		cases = append(cases, tc{fmt.Sprintf("used %d", u), withUsed(shardBytes(t, 16, keys(3)...), u)})
	}
	cases = append(cases, tc{"empty", nil}, tc{"5 bytes", []byte{1, 2, 3, 4, 5}}, tc{"header only", withUsed(make([]byte, 8), 8)})
	dir := t.TempDir()
	var ins Inspector // one for all the files, as fsck uses it
	for i, c := range cases {
		path := filepath.Join(dir, fmt.Sprintf("counter_%d.db", i))
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := InspectFile(path, 0)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := Inspect(c.data, 0)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: InspectFile\n%+v\nInspect of the whole file\n%+v", c.name, *got, *want)
		}
		if got, err = ins.File(path, 0); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: an Inspector that saw the files before: %v\n%+v\nInspect of the whole file\n%+v", c.name, err, got, *want)
		}
	}
	if len(ins.keys) != 400 {
		t.Errorf("the Inspector kept %d keys, want the 400 texts of the files", len(ins.keys))
	}
	if _, err := InspectFile(filepath.Join(dir, "gone.db"), 0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file that is not there: %v", err)
	}
	if err := os.Symlink(filepath.Join(dir, "counter_0.db"), filepath.Join(dir, "counter_link.db")); err != nil {
		t.Fatal(err)
	}
	if _, err := InspectFile(filepath.Join(dir, "counter_link.db"), 0); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("a symbolic link: %v", err)
	}
}

// TestInspectFileWhileWritten: a shard whose writer raises its used size
// while it is checked (from 0, or from a few entries to far more than
// InspectFile reads first) is seen in one state or the other, never as a
// used size past the bytes read (a truncated file).
func TestInspectFileWhileWritten(t *testing.T) {
	keys := make([]string, 300)
	for i := range keys {
		keys[i] = fmt.Sprintf(`["req", "req_total", {"path": "/p/%d"}, "Requests."]`, i)
	}
	full := shardBytes(t, LayoutTimestamp, keys...)
	used := binary.LittleEndian.Uint32(full)
	file := make([]byte, 1<<20)
	copy(file, full)
	path := filepath.Join(t.TempDir(), "counter_1.db")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var one [4]byte
	binary.LittleEndian.PutUint32(one[:], uint32(headerSize+4+len(keys[0])+padding(len(keys[0]))+LayoutTimestamp))
	states := [][4]byte{{}, one, {}}
	binary.LittleEndian.PutUint32(states[2][:], used)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := f.WriteAt(states[i%3][:], 0); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var ins Inspector
	for i := range 2000 {
		in, err := ins.File(path, 0)
		if err != nil {
			t.Fatalf("check %d: %v", i, err)
		}
		if !in.Sound() {
			t.Fatalf("check %d: %s: %s", i, in.Problem, in.Detail)
		}
	}
	close(stop)
	<-done
}
