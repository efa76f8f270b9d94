package store

import (
	"errors"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
)

// TestOrderedStream: every item's results come in order, item after item,
// on any number of workers, numbered below the count given; no more than
// ahead items beyond the one emitted are worked on; an error of emit ends
// the stream.
func TestOrderedStream(t *testing.T) {
	for _, procs := range []int{1, 2, 4} {
		prev := runtime.GOMAXPROCS(procs)
		var want, got []int
		const n, ahead = 50, 3
		var working, most atomic.Int64
		var badWorker atomic.Bool
		// Worker numbers come from the count given, whatever GOMAXPROCS
		// says meanwhile.
		err := OrderedStream(n, procs, ahead, 2, func(w, i int, send func(int)) {
			if w < 0 || w >= procs {
				badWorker.Store(true)
			}
			if c := working.Add(1); c > most.Load() {
				most.Store(c)
			}
			for j := range i % 7 { // some items send nothing
				send(i*100 + j)
			}
			working.Add(-1)
		}, func(r int) error {
			got = append(got, r)
			return nil
		})
		for i := range n {
			for j := range i % 7 {
				want = append(want, i*100+j)
			}
		}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("GOMAXPROCS %d: %v, results %v, want %v", procs, err, got, want)
		}
		if badWorker.Load() {
			t.Errorf("GOMAXPROCS %d: a worker numbered outside [0, %d)", procs, procs)
		}
		if m := most.Load(); m > int64(max(ahead, procs)) {
			t.Errorf("GOMAXPROCS %d: %d items worked on at once", procs, m)
		}

		stop := errors.New("stop")
		emitted := 0
		err = OrderedStream(n, procs, ahead, 1, func(w, i int, send func(int)) {
			for j := range 100 {
				send(j)
			}
		}, func(int) error {
			emitted++
			if emitted == 150 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || emitted != 150 {
			t.Errorf("GOMAXPROCS %d: error %v after %d results, want stop after 150", procs, err, emitted)
		}
		runtime.GOMAXPROCS(prev)
	}
}
