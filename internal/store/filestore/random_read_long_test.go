//go:build long

package filestore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/store"
)

// The random stores of these tests were written by a review of the read
// pipeline (tokens, pooled buffers) and of the batched key lookups; they
// take a minute under the race detector, so they run with make test-long.

// randShard is one shard file a random store holds.
type randShard struct {
	id     store.ShardID
	layout int
	recs   []record
	bad    bool // written with a key that does not parse in the middle
}

func (s *randShard) fileName() string {
	if s.id.Kind == store.KindGauge {
		return fmt.Sprintf("gauge_%s_%s.db", s.id.Mode, s.id.PID)
	}
	return fmt.Sprintf("%s_%s.db", s.id.Kind, s.id.PID)
}

// makeRandShard makes a shard of random size and order from pool.
func makeRandShard(rng *rand.Rand, id store.ShardID, pool []string, fresh *int) *randShard {
	var n int
	switch rng.IntN(6) {
	case 0:
		n = 0
	case 1:
		n = 1 + rng.IntN(5)
	case 2, 3:
		n = 20 + rng.IntN(400)
	default:
		n = 3000 + rng.IntN(9000) // > 256 KiB: the window is refilled
	}
	n = min(n, len(pool))
	var texts []string
	switch rng.IntN(4) {
	case 0: // program order, a prefix
		texts = append(texts, pool[:n]...)
	case 1: // program order with a few skipped
		for _, t := range pool {
			if len(texts) == n {
				break
			}
			if rng.IntN(10) != 0 {
				texts = append(texts, t)
			}
		}
	default: // own order
		for _, i := range rng.Perm(len(pool))[:n] {
			texts = append(texts, pool[i])
		}
	}
	// Keys of its own among them.
	for range rng.IntN(3) * rng.IntN(len(texts)/8+2) {
		*fresh++
		k := store.EncodeKey("own", "own_total", []store.Label{{Name: "n", Value: strconv.Itoa(*fresh) + strings.Repeat("y", rng.IntN(200))}}, "Own.")
		at := rng.IntN(len(texts) + 1)
		texts = append(texts[:at], append([]string{k}, texts[at:]...)...)
	}
	layout := LayoutTimestamp
	if rng.IntN(3) == 0 {
		layout = LayoutLegacy
	}
	s := &randShard{id: id, layout: layout}
	for _, t := range texts {
		r := record{text: t, value: float64(rng.IntN(1 << 20))}
		if rng.IntN(50) == 0 {
			r.value = math.Inf(1)
		}
		if layout == LayoutTimestamp {
			r.ts = float64(rng.IntN(1 << 30))
		}
		s.recs = append(s.recs, r)
	}
	if len(s.recs) > 300 && rng.IntN(12) == 0 {
		s.bad = true
		s.recs[len(s.recs)*2/3].text = `["bad", "bad_total", {"x": "` // does not parse
	}
	return s
}

func (s *randShard) write(t testing.TB, dir string) {
	t.Helper()
	used, size, err := encodeShard(s.recs, s.layout)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	copy(b, used)
	if err := os.WriteFile(filepath.Join(dir, s.fileName()), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkRandomStore scans st and compares against shards; it also checks that
// every text has one *Key and every Key.ID is KeyID.
func checkRandomStore(t *testing.T, st *Store, shards map[string]*randShard, what string) {
	t.Helper()
	got := map[string][]store.Entry{}
	byText := map[string]*store.Key{}
	byID := map[uint32]*store.Key{}
	err := st.ScanShards(context.Background(), func(id store.ShardID, es []store.Entry) error {
		name := id.String()
		if _, dup := got[name]; dup {
			t.Errorf("%s: shard %s twice", what, name)
		}
		cp := make([]store.Entry, len(es))
		copy(cp, es)
		got[name] = cp
		for _, e := range es {
			if e.Key == nil {
				t.Fatalf("%s: shard %s: nil key", what, name)
			}
			if e.KeyID != e.Key.ID {
				t.Fatalf("%s: shard %s: KeyID %d, key ID %d", what, name, e.KeyID, e.Key.ID)
			}
			if k, ok := byText[e.Key.Text]; ok && k != e.Key {
				t.Fatalf("%s: two keys for %q", what, e.Key.Text)
			}
			byText[e.Key.Text] = e.Key
			if k, ok := byID[e.KeyID]; ok && k != e.Key {
				t.Fatalf("%s: two keys of ID %d", what, e.KeyID)
			}
			byID[e.KeyID] = e.Key
		}
		return nil
	})
	nbad := 0
	for name, s := range shards {
		es := got[name]
		if s.bad {
			nbad++
			if es != nil {
				t.Errorf("%s: corrupt shard %s read with %d entries", what, name, len(es))
			}
			continue
		}
		if len(s.recs) == 0 {
			continue
		}
		if len(es) != len(s.recs) {
			t.Fatalf("%s: shard %s: %d entries, want %d", what, name, len(es), len(s.recs))
		}
		for i, r := range s.recs {
			e := es[i]
			if e.Key.Text != r.text || math.Float64bits(e.Value) != math.Float64bits(r.value) || math.Float64bits(e.Timestamp) != math.Float64bits(r.ts) {
				t.Fatalf("%s: shard %s entry %d: %q %v %v, want %q %v %v", what, name, i, e.Key.Text, e.Value, e.Timestamp, r.text, r.value, r.ts)
			}
		}
		delete(got, name)
	}
	for name, es := range got {
		if s := shards[name]; s == nil || (!s.bad && len(s.recs) > 0) {
			t.Errorf("%s: unexpected shard %s (%d entries)", what, name, len(es))
		}
	}
	var pe *store.PartialError
	switch {
	case nbad == 0 && err != nil:
		t.Fatalf("%s: %v", what, err)
	case nbad > 0 && !errors.As(err, &pe):
		t.Fatalf("%s: %d corrupt shards, error %v", what, nbad, err)
	case nbad > 0 && len(pe.Problems) != nbad:
		t.Fatalf("%s: %d corrupt shards, %d problems: %v", what, nbad, len(pe.Problems), err)
	}
}

// TestLongRandomStores: random stores of every kind, shard sizes from none
// to past the window, program order, own order, keys of their own, both
// layouts and corrupt shards, changed between rounds, read again and
// again with several GOMAXPROCS, with and without KeepReads.
func TestLongRandomStores(t *testing.T) {
	seeds := 2
	if testing.Short() {
		seeds = 1
	}
	for seed := range seeds {
		t.Run(strconv.Itoa(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 99))
			dir := t.TempDir()
			kinds := []store.ShardID{{Kind: store.KindCounter}, {Kind: store.KindHistogram}, {Kind: store.KindSummary}, {Kind: store.KindGauge, Mode: "max"}, {Kind: store.KindGauge, Mode: "livesum"}}
			pools := map[string][]string{}
			for _, k := range kinds {
				pools[string(k.Kind)+k.Mode] = randPool(rng, string(k.Kind)+k.Mode, 12000)
			}
			shards := map[string]*randShard{}
			fresh := 0
			pid := 0
			for round := range 4 {
				// Add, replace, remove.
				for range 25 + rng.IntN(20) {
					k := kinds[rng.IntN(len(kinds))]
					pid++
					k.PID = strconv.Itoa(pid)
					s := makeRandShard(rng, k, pools[string(k.Kind)+k.Mode], &fresh)
					s.write(t, dir)
					shards[k.String()] = s
				}
				for name, s := range shards {
					switch rng.IntN(6) {
					case 0:
						os.Remove(filepath.Join(dir, s.fileName()))
						delete(shards, name)
					case 1:
						ns := makeRandShard(rng, s.id, pools[string(s.id.Kind)+s.id.Mode], &fresh)
						ns.write(t, dir)
						shards[name] = ns
					}
				}
				for _, keep := range []bool{false, true} {
					st := openDir(t, dir, 0)
					st.KeepReads(keep)
					for _, procs := range []int{1, 2, 3} {
						old := runtime.GOMAXPROCS(procs)
						for read := range 2 {
							checkRandomStore(t, st, shards, fmt.Sprintf("round %d keep %v procs %d read %d", round, keep, procs, read))
						}
						runtime.GOMAXPROCS(old)
					}
				}
			}
		})
	}
}

// stopTestStore writes a store of many shards, some large, and returns it
// with its shards.
func stopTestStore(t *testing.T, seed uint64) (string, map[string]*randShard) {
	rng := rand.New(rand.NewPCG(seed, 7))
	dir := t.TempDir()
	pool := randPool(rng, "counter", 12000)
	shards := map[string]*randShard{}
	fresh := 0
	for pid := range 150 {
		id := store.ShardID{Kind: store.KindCounter, PID: strconv.Itoa(pid)}
		s := makeRandShard(rng, id, pool, &fresh)
		s.bad = false
		for i := range s.recs {
			if strings.HasPrefix(s.recs[i].text, `["bad"`) {
				s.recs[i].text = pool[0] + " "
			}
		}
		s.write(t, dir)
		shards[id.String()] = s
	}
	return dir, shards
}

// settleGoroutines waits for the goroutine count to come back to at most n.
func settleGoroutines(n int) int {
	var g int
	for range 200 {
		g = runtime.NumGoroutine()
		if g <= n {
			return g
		}
		time.Sleep(5 * time.Millisecond)
	}
	return g
}

// TestLongScanStops: reads that the consumer ends with an error, whose
// context is canceled from the consumer or from elsewhere, at every
// point: the scan returns the error, no goroutine is left, and the next
// full read is right.
func TestLongScanStops(t *testing.T) {
	dir, shards := stopTestStore(t, 1)
	nonEmpty := 0
	for _, s := range shards {
		if len(s.recs) > 0 {
			nonEmpty++
		}
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for _, keep := range []bool{false, true} {
		st := openDir(t, dir, 0)
		st.KeepReads(keep)
		for _, procs := range []int{1, 2, 4} {
			old := runtime.GOMAXPROCS(procs)
			base := runtime.NumGoroutine()
			for try := range 15 {
				stopAt := rng.IntN(len(shards))
				errStop := errors.New("stop")
				ctx, cancel := context.WithCancel(context.Background())
				mode := try % 3
				if mode == 2 {
					time.AfterFunc(time.Duration(rng.IntN(40000))*time.Microsecond, cancel)
				}
				n := 0
				err := st.ScanShards(ctx, func(store.ShardID, []store.Entry) error {
					n++
					if n == stopAt {
						switch mode {
						case 0:
							return errStop
						case 1:
							cancel()
						}
					}
					return nil
				})
				cancel()
				// (The shards of the unit at hand are still handed over
				// after a cancel; the next unit's are not.)
				switch {
				case mode == 0 && stopAt > 0 && n >= stopAt && !errors.Is(err, errStop):
					t.Fatalf("try %d: error %v, want stop", try, err)
				case mode == 1 && stopAt > 0 && n >= stopAt && err != nil && !errors.Is(err, context.Canceled):
					t.Fatalf("try %d: error %v, want canceled", try, err)
				case mode == 1 && stopAt > 0 && n >= stopAt && err == nil && n < nonEmpty:
					t.Fatalf("try %d: no error after %d of %d shards, canceled at %d", try, n, nonEmpty, stopAt)
				}
				if g := settleGoroutines(base); g > base {
					buf := make([]byte, 1<<20)
					t.Fatalf("try %d (mode %d, stop at %d): %d goroutines, %d before\n%s", try, mode, stopAt, g, base, buf[:runtime.Stack(buf, true)])
				}
				if try%5 == 4 {
					checkRandomStore(t, st, shards, fmt.Sprintf("keep %v procs %d after try %d", keep, procs, try))
				}
			}
			runtime.GOMAXPROCS(old)
		}
	}
}
