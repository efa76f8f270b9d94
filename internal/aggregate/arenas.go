package aggregate

import (
	"github.com/promstore/promstore/internal/store"
)

// chunk hands out zero values cut from blocks of 1,024: an aggregator
// makes hundreds of thousands of small objects, and one allocation each
// costs the garbage collector dearly; cut in order, the objects of keys
// met one after the other also lie side by side.
type chunk[T any] []T

func (c *chunk[T]) next() *T {
	if len(*c) == 0 {
		*c = make([]T, 1024)
	}
	v := &(*c)[0]
	*c = (*c)[1:]
	return v
}

// labelArena hands out label slices cut from large blocks. Once reset it
// is a scratch arena: it hands out its blocks' memory again, from the
// first, each time it is reset.
type labelArena struct {
	buf    []store.Label
	blocks [][]store.Label // the blocks cut since the first reset
	next   int             // blocks[next] is the block after buf's
	keep   bool            // set by reset
}

// withAt returns labels (sorted by name) with extra inserted at index at
// (see insertAt), in arena memory.
func (a *labelArena) withAt(labels []store.Label, extra store.Label, at int) []store.Label {
	n := len(labels) + 1
	if cap(a.buf)-len(a.buf) < n {
		a.buf = a.block(n)
	}
	start := len(a.buf)
	a.buf = append(a.buf, labels[:at]...)
	a.buf = append(a.buf, extra)
	a.buf = append(a.buf, labels[at:]...)
	return a.buf[start:len(a.buf):len(a.buf)]
}

// replacedAt returns a copy of labels with labels[i] replaced by l, in
// the arena.
func (a *labelArena) replacedAt(labels []store.Label, l store.Label, i int) []store.Label {
	n := len(labels)
	if cap(a.buf)-len(a.buf) < n {
		a.buf = a.block(n)
	}
	start := len(a.buf)
	a.buf = append(a.buf, labels...)
	a.buf[start+i] = l
	return a.buf[start:len(a.buf):len(a.buf)]
}

// block returns an empty block of room for at least n labels: of a
// scratch arena a kept one when one is large enough, else a new one.
func (a *labelArena) block(n int) []store.Label {
	size := max(4096, n)
	if !a.keep {
		return make([]store.Label, 0, size)
	}
	for a.next < len(a.blocks) {
		b := a.blocks[a.next]
		a.next++
		if cap(b) >= n {
			return b[:0]
		}
	}
	b := make([]store.Label, 0, size)
	a.blocks = append(a.blocks, b)
	a.next = len(a.blocks)
	return b
}

// reset makes the arena a scratch arena and every block it cut since it
// became one free again: the label slices it handed out must no longer
// be read.
func (a *labelArena) reset() {
	a.keep, a.buf, a.next = true, nil, 0
}

// slab hands out zeroed values cut from blocks, as chunk does; after
// reset it hands out the same values again.
type slab[T any] struct {
	blocks [][]T
	b, i   int // the next value is blocks[b][i]
}

func (s *slab[T]) next() *T {
	if s.b < len(s.blocks) && s.i == len(s.blocks[s.b]) {
		s.b, s.i = s.b+1, 0
	}
	if s.b == len(s.blocks) {
		s.blocks = append(s.blocks, make([]T, 1024))
	}
	v := &s.blocks[s.b][s.i]
	s.i++
	var zero T
	*v = zero
	return v
}

// reset makes every value handed out free again.
func (s *slab[T]) reset() { s.b, s.i = 0, 0 }

// insertAt is where a label named name goes in labels sorted by name:
// after the labels of that name or before it.
func insertAt(labels []store.Label, name string) int {
	i := 0
	for i < len(labels) && labels[i].Name <= name {
		i++
	}
	return i
}

// byteArena keeps copies of byte strings in blocks that never move; after
// reset it fills the same blocks again.
type byteArena struct {
	blocks [][]byte
	b      int // blocks[b] is the block being filled
}

// byteBlock is the size of a byteArena's block.
const byteBlock = 64 << 10

// copy returns a copy of p in the arena.
func (a *byteArena) copy(p []byte) []byte {
	for {
		if a.b == len(a.blocks) {
			a.blocks = append(a.blocks, make([]byte, 0, max(byteBlock, len(p))))
		}
		blk := a.blocks[a.b]
		if cap(blk)-len(blk) >= len(p) {
			start := len(blk)
			blk = append(blk, p...)
			a.blocks[a.b] = blk
			return blk[start:len(blk):len(blk)]
		}
		a.b++
	}
}

// reset makes every copy free again.
func (a *byteArena) reset() {
	for i := range a.blocks[:min(a.b+1, len(a.blocks))] {
		a.blocks[i] = a.blocks[i][:0]
	}
	a.b = 0
}
