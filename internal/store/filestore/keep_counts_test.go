package filestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/store"
)

// TestKeptCountsRandom: a kept reader's counts (reuseState.entries and
// touched, see checkKeptCounts) over random changes of its directory —
// files removed, renamed, renamed over another, replaced under their
// name, truncated (to nothing too), linked and copied under new names —
// with reads stopped partway, KeepReads switched off and on, a small
// limit of kept mappings (odd seeds) and a short listing margin, so that
// listings are also reused: after every read the counts are the shards',
// and after a complete one every kept shard is the file under its name
// (the same inode) and the read is what a new reader reads.
// TestLongKeptCountsRandom runs more seeds and steps.
func TestKeptCountsRandom(t *testing.T) {
	for seed := range uint64(2) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { testKeptCountsRandom(t, seed, 100) })
	}
}

func testKeptCountsRandom(t *testing.T, seed uint64, steps int) {
	dir, kept, fresh := keptStore(t)
	rng := rand.New(rand.NewPCG(seed, 7))
	kept.reuse.margin = 5 * time.Millisecond
	if seed%2 == 1 {
		kept.reuse.max = 5
	}
	names := func() []string {
		es, _ := os.ReadDir(dir)
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}
	pick := func() string { n := names(); return filepath.Join(dir, n[rng.IntN(len(n))]) }
	newName := func() string {
		kinds := []string{"counter", "gauge_all", "histogram", "summary"}
		return filepath.Join(dir, fmt.Sprintf("%s_%d.db", kinds[rng.IntN(len(kinds))], 5000+rng.IntN(300)))
	}
	stop := errors.New("stop")
	for step := range steps {
		switch rng.IntN(9) {
		case 0:
			if len(names()) > 3 {
				_ = os.Remove(pick())
			}
		case 1:
			_ = os.Rename(pick(), newName())
		case 2:
			_ = os.Rename(pick(), pick()) // replace another
		case 3:
			b, _ := os.ReadFile(pick())
			tmp := newName() + ".tmp"
			if os.WriteFile(tmp, b, 0o644) == nil {
				_ = os.Rename(tmp, pick())
			}
		case 4:
			p := pick()
			fi, err := os.Stat(p)
			if err == nil {
				_ = os.Truncate(p, rng.Int64N(fi.Size()+1))
			}
		case 5:
			_ = os.Link(pick(), newName())
		case 6:
			b, _ := os.ReadFile(pick())
			_ = os.WriteFile(newName(), b, 0o644)
		case 7:
			if rng.IntN(4) == 0 {
				kept.KeepReads(false)
				kept.KeepReads(true)
				kept.reuse.margin = 5 * time.Millisecond
				if seed%2 == 1 {
					kept.reuse.max = 5
				}
			}
		}
		if rng.IntN(3) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		what := fmt.Sprintf("step %d", step)
		if rng.IntN(3) == 0 {
			// An incomplete read.
			n, at := 0, rng.IntN(40)
			_ = kept.Scan(context.Background(), func(store.Sample) error {
				if n++; n > at {
					return stop
				}
				return nil
			})
			checkKeptCounts(t, kept, what+" (cancelled)")
			continue
		}
		got, gerr := scanAll(t, kept)
		want, werr := scanAll(t, fresh)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) || bitsOf(got) != bitsOf(want) {
			t.Fatalf("%s: kept read differs: %v / %v", what, gerr, werr)
		}
		checkKeptCounts(t, kept, what)
		r := kept.reuse
		r.mu.Lock()
		for name, k := range r.shards {
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(dir, name), &st); err != nil || st.Ino != k.ino {
				t.Errorf("%s: kept %s (inode %d) is not in the directory: %v", what, name, k.ino, err)
			}
		}
		if len(r.shards) > r.max+parseWorkers {
			t.Errorf("%s: %d kept, max %d", what, len(r.shards), r.max)
		}
		r.mu.Unlock()
		if t.Failed() {
			t.FailNow()
		}
	}
}
