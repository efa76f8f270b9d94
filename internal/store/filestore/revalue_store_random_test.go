package filestore

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/promstore/promstore/internal/store"
)

// TestKeptRevalueStoreRandom: copies of the fixture
// stores (both layouts), every pid running or not at random (flipped
// between reads), shards mutated in place through the file (what a
// mapping sees): values, key letters, key bytes, key lengths, padding,
// header padding, appended entries (within the file and past it), used
// sizes, files truncated under their mapping (faults), original bytes
// restored; after every round the kept reader reads exactly what a new
// reader reads (samples and error). REVALUE_STORE_ROUNDS (default 100).
func TestKeptRevalueStoreRandom(t *testing.T) {
	rounds := envInt("REVALUE_STORE_ROUNDS", 100)
	if testing.Short() {
		rounds = 40
	}
	for _, fixture := range []string{"python-0.16-files", "python-0.25-files", "python-0.26-files"} {
		t.Run(fixture, func(t *testing.T) { testKeptRevalueStoreRandom(t, fixture, rounds) })
	}
}

func testKeptRevalueStoreRandom(t *testing.T, fixture string, rounds int) {
	dir, kept, fresh := keptStoreOf(t, fixture)
	r := rand.New(rand.NewPCG(uint64(len(fixture)), 99))
	var mu sync.Mutex
	running := map[string]bool{}
	kept.alive = func(pid string) store.Liveness {
		mu.Lock()
		defer mu.Unlock()
		if running[pid] {
			return store.AliveYes
		}
		return store.AliveNo
	}
	kept.KeepReads(false)
	kept.KeepReads(true)
	paths, _ := filepath.Glob(filepath.Join(dir, "*.db"))
	sort.Strings(paths)
	orig := map[string][]byte{}
	pids := map[string]bool{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		orig[p] = b
		base := strings.TrimSuffix(filepath.Base(p), ".db")
		pid := base[strings.LastIndexByte(base, '_')+1:]
		pids[pid] = true
		running[pid] = true
	}
	var pidList []string
	for p := range pids {
		pidList = append(pidList, p)
	}
	sort.Strings(pidList)

	layoutOf := func(b []byte) int {
		ps := parser{keys: newKeyCache(nil, nil)}
		_, l, err := ps.parse(b, int64(len(b)), nil)
		if err != nil || l == 0 {
			return 0
		}
		return l
	}
	writeAt := func(p string, b []byte, off int) {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(b, int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	u32 := func(v int) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(v)) }
	counts := map[string]int{}
	stats := ReadStats{}
	sameRead(t, kept, fresh, "first read")
	for round := range rounds {
		var whats []string
		for range 1 + r.IntN(4) {
			p := paths[r.IntN(len(paths))]
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			layout := layoutOf(b)
			var starts, slots []int
			if layout != 0 {
				starts, slots = rvWalk(b, layout)
			}
			used := 0
			if len(b) >= 8 {
				used = int(int32(binary.LittleEndian.Uint32(b)))
			}
			what := "nothing"
			switch m := r.IntN(100); {
			case layout == 0 && r.IntN(2) == 0, m < 3:
				what = "restored"
				if err := os.WriteFile(p, orig[p], 0o644); err != nil {
					t.Fatal(err)
				}
			case m < 50 && len(slots) > 0:
				what = "value"
				for range 1 + r.IntN(4) {
					at := slots[r.IntN(len(slots))]
					if layout == LayoutTimestamp && r.IntN(2) == 0 {
						at += 8
					}
					writeAt(p, binary.LittleEndian.AppendUint64(nil, rvBits(r, binary.LittleEndian.Uint64(b[at:]))), at)
				}
			case m < 56 && len(starts) > 0:
				what = "key letter"
				i := r.IntN(len(starts))
				n := int(binary.LittleEndian.Uint32(b[starts[i]:]))
				for range 8 {
					j := r.IntN(n)
					if c := b[starts[i]+4+j]; c >= 'a' && c <= 'z' {
						writeAt(p, []byte{'a' + byte(r.IntN(26))}, starts[i]+4+j)
						break
					}
				}
			case m < 59 && len(starts) > 0:
				what = "key byte"
				i := r.IntN(len(starts))
				n := int(binary.LittleEndian.Uint32(b[starts[i]:]))
				writeAt(p, []byte{byte(r.IntN(256))}, starts[i]+4+r.IntN(n))
			case m < 64 && len(starts) > 0:
				what = "padding"
				i := r.IntN(len(starts))
				n := int(binary.LittleEndian.Uint32(b[starts[i]:]))
				writeAt(p, []byte{" x\x00"[r.IntN(3)]}, starts[i]+4+n+r.IntN(padding(n)))
			case m < 68 && len(starts) > 0:
				what = "key length"
				i := r.IntN(len(starts))
				n := int(binary.LittleEndian.Uint32(b[starts[i]:]))
				writeAt(p, u32(n+r.IntN(5)-2), starts[i])
			case m < 71:
				what = "header padding"
				writeAt(p, []byte{byte(r.IntN(2))}, 4+r.IntN(4))
			case m < 80 && layout != 0:
				what = "append"
				e := rvEntry(r, rvKey(r), layout)
				if used+len(e) > len(b) && r.IntN(2) == 0 {
					what = "append, file grown"
					if err := os.Truncate(p, int64(2*len(b)+len(e))); err != nil {
						t.Fatal(err)
					}
				}
				if used+len(e) <= len(b) || what != "append" {
					writeAt(p, e, used)
					writeAt(p, u32(used+len(e)), 0)
				}
			case m < 84 && len(starts) > 0:
				what = "used to an entry's start"
				writeAt(p, u32(starts[r.IntN(len(starts))]), 0)
			case m < 86:
				what = "used random"
				writeAt(p, u32(r.IntN(len(b)+64)), 0)
			case m < 89 && len(b) > 8:
				what = "file truncated"
				if err := os.Truncate(p, int64(r.IntN(len(b)))); err != nil {
					t.Fatal(err)
				}
			case m < 97:
				what = "liveness flipped"
				pid := pidList[r.IntN(len(pidList))]
				mu.Lock()
				running[pid] = !running[pid]
				mu.Unlock()
			}
			counts[what]++
			whats = append(whats, filepath.Base(p)+": "+what)
		}
		desc := fmt.Sprintf("round %d: %s", round, strings.Join(whats, "; "))
		sameRead(t, kept, fresh, desc)
		st := kept.ReadStats()
		stats.Revalued += st.Revalued
		stats.Reparsed += st.Reparsed
		stats.Reused += st.Reused
		if r.IntN(3) == 0 {
			sameRead(t, kept, fresh, desc+", read again")
			if st := kept.ReadStats(); st.Revalued != 0 || st.Reparsed != 0 {
				// Nothing written: nothing should be read again, except
				// shards that just failed and a pid's first read as dead
				// (its hash through the mapping): counted, not failed.
				counts["read again, not all reused"]++
			}
		}
	}
	t.Logf("%s: mutations %v; kept reader: %+v", fixture, counts, stats)
	if stats.Revalued == 0 {
		t.Fatal("revalue never taken")
	}
}
