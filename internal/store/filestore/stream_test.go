package filestore

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// streamAndParse parses data (a whole shard file) both ways: by stream
// from a file, with a window of window bytes, and whole by parse. It
// fails the test when stream accepts the file and parse does not, or
// when their entries differ.
func streamAndParse(t *testing.T, data []byte, hint, window, flushAt int, guessFrom []byte) (streamed bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "counter_1.db")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	keys := newKeyCache(nil, new(atomic.Uint32)) // numbered, as a Store numbers them
	var guess []guess
	if guessFrom != nil {
		guess = guessesOf(t, keys, guessFrom)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sp := parser{keys: keys, guess: guess, hint: hint, window: window, flushAt: flushAt}
	got, glayout, ok := sp.stream(f, int64(len(data)), nil)
	wp := parser{keys: keys, guess: guess, hint: hint}
	want, wlayout, perr := wp.parse(data, int64(len(data)), nil)
	if !ok {
		if len(got) != 0 {
			t.Fatalf("stream declined with %d entries", len(got))
		}
		return false
	}
	if perr != nil {
		t.Fatalf("stream accepted a file parse rejects (%v)", perr)
	}
	if glayout != wlayout || len(got) != len(want) {
		t.Fatalf("stream: layout %d, %d entries; parse: layout %d, %d entries", glayout, len(got), wlayout, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Key != w.Key || g.KeyID != w.KeyID || math.Float64bits(g.Value) != math.Float64bits(w.Value) || math.Float64bits(g.Timestamp) != math.Float64bits(w.Timestamp) {
			t.Fatalf("entry %d: stream %+v, parse %+v", i, g, w)
		}
	}
	if sp.hits != wp.hits {
		t.Fatalf("stream says %d entries were their guess, parse %d", sp.hits, wp.hits)
	}
	return true
}

// TestStreamMatchesParse: reading a shard through a small window gives
// the entries parsing it whole does, wherever the window boundaries fall
// (inside a length, a key, a value), for keys larger than the window, in
// both layouts, with and without (right and wrong) guesses.
func TestStreamMatchesParse(t *testing.T) {
	var keys, other []string
	for i := range 300 {
		route := "/api/" + strconv.Itoa(i) + strings.Repeat("x", i%37)
		keys = append(keys, `["req", "req_total", {"path": "`+route+`"}, "Requests."]`)
		other = append(other, `["req", "req_total", {"path": "`+route+`/o"}, "Requests."]`)
	}
	keys = append(keys, `["big", "big_total", {"path": "`+strings.Repeat("y", 3000)+`"}, "A key larger than the window."]`)
	for _, layout := range []int{LayoutLegacy, LayoutTimestamp} {
		data := shardBytes(t, layout, keys...)
		for _, window := range []int{16, 61, 100, 4096, windowSize} {
			for _, g := range []struct {
				name string
				from []byte
			}{{"no guesses", nil}, {"right guesses", data}, {"wrong guesses", shardBytes(t, layout, other...)}} {
				t.Run(strconv.Itoa(layout)+"/"+strconv.Itoa(window)+"/"+g.name, func(t *testing.T) {
					if !streamAndParse(t, data, layout, window, 512, g.from) {
						t.Fatal("stream declined a well-formed shard")
					}
				})
			}
		}
	}
	// Files it leaves to parse: the other layout than its hint, a bad
	// header, an entry past used, a key that is not JSON.
	good := shardBytes(t, 16, keyA, keyB)
	for name, data := range map[string][]byte{
		"8-byte layout":  shardBytes(t, 8, keyA, keyB),
		"used too large": withUsed(good, int32(len(good)+1)),
		"used too small": withUsed(good, 5),
		"bad key":        withInt32(good, 12, 0x7b7b7b7b),
		"short":          good[:6],
	} {
		t.Run(name, func(t *testing.T) {
			if streamAndParse(t, data, LayoutTimestamp, 64, 512, nil) {
				t.Fatal("stream accepted it")
			}
		})
	}
}

// FuzzStreamShard: whatever the bytes, reading them through a window
// never panics and never accepts what parsing them whole rejects, nor
// gives other entries. Seeds: testdata/fuzz/FuzzStreamShard.
func FuzzStreamShard(f *testing.F) {
	f.Add(shardBytes(f, 16, keyA, keyB)[:200], uint8(40), false)
	f.Add(shardBytes(f, 8, keyA, keyB)[:200], uint8(7), true)
	f.Fuzz(func(t *testing.T, data []byte, window uint8, legacy bool) {
		hint := LayoutTimestamp
		if legacy {
			hint = LayoutLegacy
		}
		streamAndParse(t, data, hint, int(window)+1, int(window), nil)
	})
}

// guessesOf returns the guesses a guessBook makes of the shard data (a
// whole file), its keys looked up in keys.
func guessesOf(t *testing.T, keys *keyCache, data []byte) []guess {
	t.Helper()
	gp := parser{keys: keys}
	entries, _, perr := gp.parse(data, int64(len(data)), nil)
	if perr != nil {
		t.Fatal(perr)
	}
	var b guessBook
	b.update("counter", nil, 0, entries)
	return b.get("counter")
}
