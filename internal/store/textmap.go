package store

import "hash/maphash"

// TextMap maps strings to values through a 64-bit hash of each string,
// computed once by the caller (HashText, HashBytes). A Go map keyed by
// the strings themselves re-hashes every one of them each time it grows;
// for sample key texts (100 to 300 bytes, tens of thousands of them) that
// is most of the cost of filling the map. The zero value is empty and
// ready to use; it is not safe for concurrent use.
type TextMap[V any] struct {
	m map[uint64]*textNode[V]
	n int
}

type textNode[V any] struct {
	text string
	v    V
	next *textNode[V] // another text of the same hash
}

var textSeed = maphash.MakeSeed()

// HashText is the hash TextMap uses for s.
func HashText(s string) uint64 { return maphash.String(textSeed, s) }

// HashBytes is HashText of string(b).
func HashBytes(b []byte) uint64 { return maphash.Bytes(textSeed, b) }

// TextHasher computes HashText of a text written in pieces, without
// making the text. The zero value is ready to use.
type TextHasher struct {
	h    maphash.Hash
	used bool
}

// Reset starts a new text.
func (t *TextHasher) Reset() {
	if !t.used {
		t.h.SetSeed(textSeed)
		t.used = true
	}
	t.h.Reset()
}

// WriteString adds s to the text.
func (t *TextHasher) WriteString(s string) { t.h.WriteString(s) }

// WriteByte adds c to the text; it never fails.
func (t *TextHasher) WriteByte(c byte) error { return t.h.WriteByte(c) }

// Sum is HashText of the text written since Reset.
func (t *TextHasher) Sum() uint64 { return t.h.Sum64() }

// NewTextMap returns an empty map with room for n texts.
func NewTextMap[V any](n int) *TextMap[V] {
	return &TextMap[V]{m: make(map[uint64]*textNode[V], n)}
}

// Get returns the value of s, whose hash is h.
func (t *TextMap[V]) Get(h uint64, s string) (V, bool) {
	for n := t.m[h]; n != nil; n = n.next {
		if n.text == s {
			return n.v, true
		}
	}
	var zero V
	return zero, false
}

// GetBytes is Get for the text in b.
func (t *TextMap[V]) GetBytes(h uint64, b []byte) (V, bool) {
	for n := t.m[h]; n != nil; n = n.next {
		if n.text == string(b) {
			return n.v, true
		}
	}
	var zero V
	return zero, false
}

// GetFunc is Get for the text that eq, given a text of hash h, says is
// the one sought (a text the caller did not make).
func (t *TextMap[V]) GetFunc(h uint64, eq func(string) bool) (V, bool) {
	for n := t.m[h]; n != nil; n = n.next {
		if eq(n.text) {
			return n.v, true
		}
	}
	var zero V
	return zero, false
}

// Put sets the value of s, whose hash is h.
func (t *TextMap[V]) Put(h uint64, s string, v V) {
	for n := t.m[h]; n != nil; n = n.next {
		if n.text == s {
			n.v = v
			return
		}
	}
	if t.m == nil {
		t.m = map[uint64]*textNode[V]{}
	}
	t.m[h] = &textNode[V]{text: s, v: v, next: t.m[h]}
	t.n++
}

// Len is the number of texts in the map.
func (t *TextMap[V]) Len() int {
	if t == nil {
		return 0
	}
	return t.n
}
