package filestore

import (
	"encoding/binary"
	"testing"
)

// FuzzParseShard feeds arbitrary bytes to the shard parser as a whole
// file. It must not panic or hang, must never read past the used size
// (the data handed to it ends there, so a read past it would panic), and
// what it accepts must be consistent: entries that add up to used in the
// chosen layout, the same answer whichever layout is tried first, and
// never two fitting layouts in a file under 16 MiB.
// Seeds: testdata/fuzz/FuzzParseShard (small fixture files written by
// prometheus_client 0.25 and 0.16, and corrupt variants).
func FuzzParseShard(f *testing.F) {
	f.Add(shardBytes(f, 16, keyA, keyB)[:200])
	f.Add(shardBytes(f, 8, keyA, keyB)[:200])
	f.Fuzz(func(t *testing.T, data []byte) {
		size := int64(len(data))
		in := data
		if len(data) >= 8 {
			used := int64(int32(binary.LittleEndian.Uint32(data)))
			if used >= 8 && used <= size {
				// Cut the data at used so that any read past it panics.
				in = data[:used:used]
			}
		}
		var results [2]struct {
			n, layout int
			err       *parseError
		}
		for i, hint := range []int{16, 8} {
			p := parser{keys: newKeyCache(nil, nil), hint: hint}
			entries, layout, err := p.parse(in, size, nil)
			results[i].n, results[i].layout, results[i].err = len(entries), layout, err
			if err != nil {
				if len(entries) != 0 {
					t.Fatalf("error %v with %d entries", err, len(entries))
				}
				if err.reason == "" {
					t.Fatal("error without a reason")
				}
				continue
			}
			used := int(int32(binary.LittleEndian.Uint32(data)))
			if used == 0 {
				used = 8
			}
			total := headerSize
			for _, e := range entries {
				if e.Key == nil {
					t.Fatal("entry without key")
				}
				n := len(e.Key.Text)
				total += 4 + n + padding(n) + layout
				if layout == LayoutLegacy && e.Timestamp != 0 {
					t.Fatal("8-byte entry with a timestamp")
				}
			}
			switch {
			case len(entries) == 0 && layout != 0:
				t.Fatalf("no entries but layout %d", layout)
			case len(entries) > 0 && total != used:
				t.Fatalf("layout %d: entries add up to %d bytes, used is %d", layout, total, used)
			}
			if used < unambiguousBelow && used > headerSize {
				_, e8 := walk(in, used, 8, newKeyCache(nil, nil), nil, new(missBatch), nil, nil)
				_, e16 := walk(in, used, 16, newKeyCache(nil, nil), nil, new(missBatch), nil, nil)
				if e8 == nil && e16 == nil {
					t.Fatalf("a %d-byte file fits both layouts", used)
				}
			}
		}
		a, b := results[0], results[1]
		if a.n != b.n || a.layout != b.layout || (a.err == nil) != (b.err == nil) {
			t.Fatalf("answer depends on the layout tried first: %+v vs %+v", a, b)
		}
	})
}
