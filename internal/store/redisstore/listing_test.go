package redisstore

import (
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
)

// TestListing checks lookups against the listed names, for a listing
// dense enough for the bitset and for a sparse one that is searched.
func TestListing(t *testing.T) {
	tests := []struct {
		name       string
		pids, md5s int
		listed     func(p, m int) (metric, meta bool)
		wantBitset bool
	}{
		{"dense", 10, 50, func(p, m int) (bool, bool) { return (p+m)%3 != 0, (p*m)%4 != 1 }, true},
		{"sparse", 400, 400, func(p, m int) (bool, bool) { return p == m, p == m && p%2 == 0 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newListing()
			// Odd md5s are real (hex) ones, even ones are not.
			name := func(p, m int) keyName {
				md5 := "md5-" + strconv.Itoa(m)
				if m%2 == 1 {
					md5 = md5hex(md5)
				}
				return keyName{kind: "counter", pid: strconv.Itoa(p), md5: md5}
			}
			for p := range tc.pids {
				for m := range tc.md5s {
					metric, meta := tc.listed(p, m)
					if metric {
						l.add(name(p, m), false)
					}
					if meta {
						l.add(name(p, m), true)
					}
				}
			}
			l.index()
			if got := l.bits != nil; got != tc.wantBitset {
				t.Fatalf("bitset = %v, want %v", got, tc.wantBitset)
			}
			for p := range tc.pids {
				for m := range tc.md5s {
					n := name(p, m)
					metric, meta := tc.listed(p, m)
					if got := l.has(n.kind, n.pid, n.md5, false); got != metric {
						t.Fatalf("has(%v, metric) = %v, want %v", n, got, metric)
					}
					if got := l.has(n.kind, n.pid, n.md5, true); got != meta {
						t.Fatalf("has(%v, meta) = %v, want %v", n, got, meta)
					}
				}
			}
			if l.has("gauge_all", "0", "md5-0", true) || l.has("counter", "0", "other", false) || l.has("counter", "0", md5hex("other"), false) {
				t.Error("has reports a kind or md5 that was never listed")
			}
		})
	}
}

func TestHexMD5(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{md5hex("x"), true},
		{strings.ToUpper(md5hex("x")), false}, // another key name: not merged with the lower-case one
		{md5hex("x")[:31], false},
		{md5hex("x")[:31] + "g", false},
		{"", false},
	} {
		b, ok := hexMD5(tc.in)
		if ok != tc.ok {
			t.Errorf("hexMD5(%q) ok = %v, want %v", tc.in, ok, tc.ok)
		}
		if ok && hex.EncodeToString(b[:]) != tc.in {
			t.Errorf("hexMD5(%q) = %x", tc.in, b)
		}
	}
}
