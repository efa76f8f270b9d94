package tui

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/promstore/promstore/internal/store"
)

// A store (fakeKept) whose shards' kept flags, slices, failures and
// order the test chooses read by read: the cases a file store makes only
// now and then (a shard read without its mapping, its buffer reused; an
// unreadable shard; keys parsed anew) are made at will.

type rshard struct {
	id      store.ShardID
	entries []store.Entry
}

type rpresent struct {
	sh     *rshard
	kept   bool
	unread bool
}

type fakeKept struct {
	store.Store
	shards []rpresent
}

func (f *fakeKept) Describe() string { return "fake" }

func (f *fakeKept) ScanKeptShards(ctx context.Context, fn store.KeptShardFunc) error {
	var errs store.ScanErrors
	for _, p := range f.shards {
		if p.unread {
			errs.Add(&store.ShardError{Shard: p.sh.id.PID, Offset: -1, Reason: "cannot read"})
			continue
		}
		if p.kept {
			if err := fn(p.sh.id, p.sh.entries, true); err != nil {
				return err
			}
			continue
		}
		buf := append([]store.Entry(nil), p.sh.entries...)
		if err := fn(p.sh.id, buf, false); err != nil {
			return err
		}
		for i := range buf { // reused by the store
			buf[i].Value = -777
		}
	}
	return errs.Err()
}

// TestSnapshotRandomReads is a property test of storeSource's reads
// (kept, revalued, replayed): over random sequences of reads of a store of
// every kind and gauge modes max, sum, mostrecent and all, pids past 64 —
// values written in place (new slices), shards added anywhere and
// removed, shards handed over not kept (their buffers then overwritten),
// unreadable shards, keys parsed anew, nothing changed — each snapshot is
// a fresh source's, to the bit, breakdowns included.
func TestSnapshotRandomReads(t *testing.T) {
	revalued := 0
	for seed := range uint64(60) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { revalued += randomReads(t, seed) })
	}
	if revalued == 0 {
		t.Fatal("no read revalued: nothing tested")
	}
}

func randomReads(t *testing.T, seed uint64) (revalued int) {
	rnd := rand.New(rand.NewPCG(seed, 7))
	var nextID uint32
	memo := map[string]*store.Key{}
	npids, nshards := 5, 2+rnd.IntN(6)
	if seed%4 == 0 {
		npids, nshards = 100, 150
	}
	kinds := []store.ShardID{
		{Kind: store.KindCounter}, {Kind: store.KindGauge, Mode: "max"}, {Kind: store.KindGauge, Mode: "sum"},
		{Kind: store.KindGauge, Mode: "mostrecent"}, {Kind: store.KindGauge, Mode: "all"}, {Kind: store.KindHistogram},
	}
	famKeys := func(id store.ShardID) []*store.Key {
		switch id.Kind {
		case store.KindCounter:
			return []*store.Key{mkKey("c", "c_total", "a", "1"), mkKey("c", "c_total", "a", "2"), mkKey("d", "d_total")}
		case store.KindHistogram:
			return []*store.Key{mkKey("h", "h_bucket", "le", "0.1"), mkKey("h", "h_bucket", "le", "1.0"), mkKey("h", "h_bucket", "le", "+Inf"), mkKey("h", "h_sum"),
				mkKey("h", "h_bucket", "x", "y", "le", "1.0"), mkKey("h", "h_bucket", "le", "+Inf", "x", "y")}
		}
		n := "g_" + id.Mode
		return []*store.Key{mkKey(n, n, "a", "1"), mkKey(n, n, "a", "2")}
	}
	val := func() float64 {
		if rnd.IntN(10) == 0 {
			return 0
		}
		return float64(rnd.IntN(20)) - 3
	}
	newShard := func(id store.ShardID) *rshard {
		ks := famKeys(id)
		rnd.Shuffle(len(ks), func(i, j int) { ks[i], ks[j] = ks[j], ks[i] })
		ks = ks[:1+rnd.IntN(len(ks))]
		sh := &rshard{id: id}
		for i, k := range ks {
			if m, ok := memo[k.Text]; ok && seed%2 == 1 {
				k = m
				ks[i] = k
			} else {
				nextID++
				k.ID = nextID
				memo[k.Text] = k
			}
			sh.entries = append(sh.entries, store.Entry{Key: k, KeyID: k.ID, Value: val(), Timestamp: float64(rnd.IntN(5))})
		}
		return sh
	}
	var cur []rpresent
	used := map[store.ShardID]bool{}
	add := func() {
		for range 50 {
			id := kinds[rnd.IntN(len(kinds))]
			id.PID = fmt.Sprint(1 + rnd.IntN(npids))
			if used[id] {
				continue
			}
			used[id] = true
			at := rnd.IntN(len(cur) + 1)
			cur = append(cur[:at], append([]rpresent{{sh: newShard(id), kept: true}}, cur[at:]...)...)
			return
		}
	}
	for range nshards {
		add()
	}
	fk := &fakeKept{}
	src := NewStoreSource(fk, SourceOptions{MaxContributors: 1 + rnd.IntN(3)}).(*storeSource)
	for round := range 25 {
		// mutate
		for i := range cur {
			cur[i].unread = false
			cur[i].kept = true
		}
		for range rnd.IntN(4) {
			if len(cur) == 0 {
				add()
				continue
			}
			i := rnd.IntN(len(cur))
			switch r := rnd.IntN(20); {
			case r < 10: // write values: new slice
				e := append([]store.Entry(nil), cur[i].sh.entries...)
				j := rnd.IntN(len(e))
				e[j].Value, e[j].Timestamp = val(), float64(rnd.IntN(5))
				cur[i].sh = &rshard{id: cur[i].sh.id, entries: e}
			case r < 12:
				add()
			case r < 13:
				delete(used, cur[i].sh.id)
				cur = append(cur[:i], cur[i+1:]...)
			case r < 15:
				cur[i].kept = false
			case r < 16:
				cur[i].unread = true
			case r < 17: // parsed anew
				e := append([]store.Entry(nil), cur[i].sh.entries...)
				for j := range e {
					k := *e[j].Key
					if rnd.IntN(2) == 0 {
						nextID++
						k.ID = nextID
					}
					e[j].Key, e[j].KeyID = &k, k.ID
				}
				cur[i].sh = &rshard{id: cur[i].sh.id, entries: e}
			case r < 18: // same slice again (nothing)
			default: // several written
				e := append([]store.Entry(nil), cur[i].sh.entries...)
				for j := range e {
					if rnd.IntN(2) == 0 {
						e[j].Value = val()
					}
				}
				cur[i].sh = &rshard{id: cur[i].sh.id, entries: e}
			}
		}
		fk.shards = append([]rpresent(nil), cur...)
		got, err := src.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		freshSt := &fakeKept{shards: append([]rpresent(nil), cur...)}
		want := snapshotOf(t, NewStoreSource(freshSt, SourceOptions{MaxContributors: src.opts.MaxContributors}))
		bits := func(a, b float64) bool {
			return math.Float64bits(a) == math.Float64bits(b) || math.IsNaN(a) && math.IsNaN(b)
		}
		sameSeries(t, fmt.Sprintf("round %d (revalued %d)", round, src.revalued), got, want, bits)
		if t.Failed() {
			return src.revalued
		}
	}
	return src.revalued
}
