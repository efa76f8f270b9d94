package store

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Parallel calls fn(0) ... fn(n-1) on up to GOMAXPROCS goroutines and
// returns when all calls have.
func Parallel(n int, fn func(int)) {
	ParallelWorkers(n, runtime.GOMAXPROCS(0), func(_, i int) { fn(i) })
}

// ParallelWorkers is Parallel on up to workers goroutines, fn(w, i)
// told the number w (below workers) of the goroutine that calls it, so
// that each may keep memory of its own (see OrderedStream).
func ParallelWorkers(n, workers int, fn func(w, i int)) {
	workers = min(n, workers)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			fn(0, i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(w, i)
			}
		}()
	}
	wg.Wait()
}

// OrderedStream calls work(w, i, send) for i = 0 ... n-1 on up to workers
// goroutines (w, below workers, numbers the goroutine, so that it may keep
// memory of its own: size it by the workers given, not by GOMAXPROCS
// asked again, which the runtime may change meanwhile), at most ahead
// items beyond the one being emitted;
// work passes its results for item i to send, in order, and emit is
// called on the calling goroutine with every result of item 0, then
// every result of item 1, and so on: each item's results are emitted as
// they come, up to depth of them wait. The first error of emit is
// returned; send then drops what it is given, so that work ends soon.
func OrderedStream[T any](n, workers, ahead, depth int, work func(w, i int, send func(T)), emit func(T) error) error {
	workers = min(n, workers)
	if workers <= 1 {
		var err error
		for i := 0; i < n && err == nil; i++ {
			work(0, i, func(r T) {
				if err == nil {
					err = emit(r)
				}
			})
		}
		return err
	}
	chans := make([]chan T, n)
	for i := range chans {
		chans[i] = make(chan T, depth)
	}
	tokens := make(chan struct{}, max(ahead, workers))
	stop := make(chan struct{})
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop: // seen first: no item started once stopped
					return
				default:
				}
				select {
				case tokens <- struct{}{}:
				case <-stop:
					return
				}
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				work(w, i, func(r T) {
					select {
					case chans[i] <- r:
					case <-stop:
					}
				})
				close(chans[i])
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for i := range chans {
		for r := range chans[i] {
			if err := emit(r); err != nil {
				return err
			}
		}
		<-tokens
	}
	return nil
}
