package serve

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
)

// scriptedStore hands over, read after read, what its scripts say, each
// shard's entries kept or not as they say: a store whose reads can be
// made to overlap at chosen points (a read running late while the next
// one starts), which timing alone cannot make happen reliably.
type scriptedStore struct {
	mu      sync.Mutex
	scripts []func(ctx context.Context, fn store.KeptShardFunc) error
}

func (s *scriptedStore) ScanKeptShards(ctx context.Context, fn store.KeptShardFunc) error {
	s.mu.Lock()
	next := s.scripts[0]
	s.scripts = s.scripts[1:]
	s.mu.Unlock()
	return next(ctx, fn)
}

func (s *scriptedStore) Scan(context.Context, store.ScanFunc) error { panic("not used") }

func (s *scriptedStore) Shards(context.Context) ([]store.ShardInfo, error) { return nil, nil }

// ReadUnchanged: never (the reads below all change something).
func (s *scriptedStore) ReadUnchanged() bool { return false }

func scriptedEntries(keys []*store.Key, vals ...float64) []store.Entry {
	out := make([]store.Entry, len(keys))
	for i, k := range keys {
		out[i] = store.Entry{Key: k, KeyID: k.ID, Value: vals[i]}
	}
	return out
}

// TestOverlappingReadsRevalueOnlyTheLastRead: a read that compares what it
// is handed with the last complete read L revalues L's aggregator only
// while that aggregator still holds L's aggregation. Two reads X and Y
// overlap: X (late) takes the aggregator after L, Y starts while X runs
// (so Y compares with L) and finishes after X put the aggregator back,
// holding X's part of a read (X failed: a shard read the normal way, then
// its deadline) or X's whole read (X succeeded, revaluing it). Y must
// serve what a new read of its shards makes.
func TestOverlappingReadsRevalueOnlyTheLastRead(t *testing.T) {
	counter := func(id uint32, fam string) *store.Key {
		return &store.Key{Text: fam, Family: fam, Name: fam + "_total", Help: "h", ID: id}
	}
	for _, tc := range []struct {
		name     string
		s1       store.ShardID
		k1       *store.Key
		l, x, y  float64 // shard 1's value in L, X and Y
		xKept    bool
		xFails   bool
		xTimeout time.Duration
	}{
		{"late read fails holding a part", store.ShardID{Kind: store.KindCounter, PID: "1"}, counter(1, "a"), 1, 2, 3, false, true, 20 * time.Millisecond},
		{"late read revalues, then the next compares with the read before", store.ShardID{Kind: store.KindGauge, Mode: "livesum", PID: "1"},
			&store.Key{Text: "g", Family: "g", Name: "g", Help: "h", ID: 1}, 0, 1, 0, true, false, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s2 := store.ShardID{Kind: store.KindCounter, PID: "2"}
			k1, k2 := []*store.Key{tc.k1}, []*store.Key{counter(2, "b")}
			l1, l2 := scriptedEntries(k1, tc.l), scriptedEntries(k2, 10)
			x1, y1 := scriptedEntries(k1, tc.x), scriptedEntries(k1, tc.y)
			xScanning, yScanning, xDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
			st := &scriptedStore{scripts: []func(context.Context, store.KeptShardFunc) error{
				func(ctx context.Context, fn store.KeptShardFunc) error { // L
					if err := fn(tc.s1, l1, true); err != nil {
						return err
					}
					return fn(s2, l2, true)
				},
				func(ctx context.Context, fn store.KeptShardFunc) error { // X
					if err := fn(tc.s1, x1, tc.xKept); err != nil {
						return err
					}
					if !tc.xFails {
						if err := fn(s2, l2, true); err != nil {
							return err
						}
					}
					close(xScanning)
					<-yScanning
					if tc.xFails {
						<-ctx.Done()
						return ctx.Err()
					}
					return nil
				},
				func(ctx context.Context, fn store.KeptShardFunc) error { // Y
					close(yScanning)
					<-xDone
					if err := fn(tc.s1, y1, true); err != nil {
						return err
					}
					return fn(s2, l2, true)
				},
			}}
			sc := newScraper(st, time.Minute, false, newSelfMetrics("test"), slog.New(slog.NewTextHandler(io.Discard, nil)))
			sc.client = pyclient.Latest
			if snap := sc.read(&flight{deadline: time.Now().Add(time.Minute), done: make(chan struct{})}); snap.err != nil {
				t.Fatal(snap.err)
			}
			go func() {
				defer close(xDone)
				snap := sc.read(&flight{deadline: time.Now().Add(tc.xTimeout), done: make(chan struct{})})
				if (snap.err != nil) != tc.xFails {
					t.Errorf("late read: err %v", snap.err)
				}
			}()
			<-xScanning
			snap := sc.read(&flight{deadline: time.Now().Add(time.Minute), done: make(chan struct{})})
			if snap.err != nil {
				t.Fatal(snap.err)
			}
			fresh := aggregate.NewFor(pyclient.Latest)
			_ = fresh.AddShard(tc.s1, y1)
			_ = fresh.AddShard(s2, l2)
			if got, want := renderText(t, snap.fams), renderText(t, fresh.Families()); got != want {
				t.Fatalf("served:\n%s\nwant (a new read):\n%s", got, want)
			}
		})
	}
}
