package filestore

import (
	"math"
	"os"
	"path/filepath"
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
