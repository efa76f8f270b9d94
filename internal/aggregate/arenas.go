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

// labelArena hands out label slices cut from large blocks.
type labelArena struct {
	buf []store.Label
}

// withAt returns labels (sorted by name) with extra inserted at index at
// (see insertAt), in arena memory.
func (a *labelArena) withAt(labels []store.Label, extra store.Label, at int) []store.Label {
	n := len(labels) + 1
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]store.Label, 0, max(4096, n))
	}
	start := len(a.buf)
	a.buf = append(a.buf, labels[:at]...)
	a.buf = append(a.buf, extra)
	a.buf = append(a.buf, labels[at:]...)
	return a.buf[start:len(a.buf):len(a.buf)]
}

// insertAt is where a label named name goes in labels sorted by name:
// after the labels of that name or before it.
func insertAt(labels []store.Label, name string) int {
	i := 0
	for i < len(labels) && labels[i].Name <= name {
		i++
	}
	return i
}
