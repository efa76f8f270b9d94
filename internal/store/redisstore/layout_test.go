package redisstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

// moveDuringListing makes the next listing of s move every slot of node
// from that holds a key to node to, once: after from's first SCAN batch,
// when every other master's SCAN has finished. The keys of from that its
// SCAN had not reached then are past every other master's SCAN: a
// listing that does not notice the move misses them. The returned
// function reports how many slots were moved and the move's error.
func moveDuringListing(t *testing.T, rc *testenv.RedisCluster, s *Store, from, to int) func() (int, error) {
	t.Helper()
	var (
		once, closeOnce sync.Once
		othersDone      = make(chan struct{})
		left            atomic.Int32
		moved           int
		moveErr         error
	)
	left.Store(int32(len(rc.Nodes) - 1))
	s.scanned = func(addr string, last bool) {
		if addr != rc.Nodes[from].Addr() {
			if last && left.Add(-1) == 0 {
				closeOnce.Do(func() { close(othersDone) })
			}
			return
		}
		if last {
			return
		}
		once.Do(func() {
			select {
			case <-othersDone:
			case <-time.After(time.Minute):
				moveErr = context.DeadlineExceeded
				return
			}
			moved, moveErr = rc.MoveKeySlots(context.Background(), from, to)
		})
	}
	t.Cleanup(func() { s.scanned = nil })
	return func() (int, error) { return moved, moveErr }
}

// TestClusterKeysMoveDuringListing reshards a real Cluster while a
// listing runs (see moveDuringListing): what a read, the list of shards
// and the list of orphan keys (which cleanup --orphans deletes) give must
// be what the store holds, as read again once the keys stay put: a
// listing that misses moved keys drops their samples, and a missed meta
// hash makes its metric hash an orphan.
func TestClusterKeysMoveDuringListing(t *testing.T) {
	rc := testenv.StartCluster(t)
	c := rc.Client()
	ctx := context.Background()
	tests := []struct {
		name string
		read func(t *testing.T, s *Store) string
	}{
		{"scan", func(t *testing.T, s *Store) string {
			t.Helper()
			return string(dump(t, s))
		}},
		{"shards", func(t *testing.T, s *Store) string {
			t.Helper()
			infos, err := s.Shards(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, in := range infos {
				fmt.Fprintf(&b, "%s %d samples %v\n", in.ID, in.Samples, in.Problems)
			}
			return b.String()
		}},
		{"orphans", func(t *testing.T, s *Store) string {
			t.Helper()
			orphans, err := s.Orphans(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, o := range orphans {
				fmt.Fprintf(&b, "%s: %s\n", o.Key, o.Reason)
			}
			return b.String()
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Each case moves the keys of another master on: those
			// of node i, which still holds its own slots.
			flushAll(t, c)
			loadFixture(t, c, "")
			s := openStore(t, Config{URLs: rc.URLs()[:1], Cluster: true, BatchSize: 10})
			moved := moveDuringListing(t, rc, s, i, (i+1)%len(rc.Nodes))
			got := tc.read(t, s)
			if n, err := moved(); err != nil || n == 0 {
				t.Fatalf("slots moved during the listing: %d, %v", n, err)
			}
			want := tc.read(t, s)
			if got != want {
				t.Errorf("read while keys moved:\n%s\nread after:\n%s", got, want)
			}
			if tc.name == "scan" {
				testenv.CompareExposition(t, []byte(got), expectedProm(t))
			}
		})
	}
}

// TestClusterSlotMigratingFailsNamingIt leaves a slot half-way in a
// move (MIGRATING on its master, IMPORTING on another, as a resharding
// stopped part-way leaves it): its keys may be on either master, so a
// read waits for the move to end and then fails, naming the slot and
// both nodes, instead of reading a listing that may miss keys.
func TestClusterSlotMigratingFailsNamingIt(t *testing.T) {
	rc := testenv.StartCluster(t)
	c := rc.Client()
	ctx := context.Background()
	loadFixture(t, c, "")
	src := redis.NewClient(&redis.Options{Addr: rc.Nodes[0].Addr()})
	dst := redis.NewClient(&redis.Options{Addr: rc.Nodes[1].Addr()})
	t.Cleanup(func() { src.Close(); dst.Close() })
	srcID, dstID := src.ClusterMyID(ctx).Val(), dst.ClusterMyID(ctx).Val()
	if err := dst.Do(ctx, "cluster", "setslot", 7, "importing", srcID).Err(); err != nil {
		t.Fatal(err)
	}
	if err := src.Do(ctx, "cluster", "setslot", 7, "migrating", dstID).Err(); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, Config{URLs: rc.URLs()[:1], Cluster: true, ReadTimeout: time.Second})
	reads := []struct {
		name string
		read func() error
	}{
		{"scan", func() error { return s.Scan(ctx, func(store.Sample) error { return nil }) }},
		{"shards", func() error { _, err := s.Shards(ctx); return err }},
		{"orphans", func() error { _, err := s.Orphans(ctx); return err }},
	}
	for _, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			err := r.read()
			for _, want := range []string{
				"slot 7 is migrating from " + rc.Nodes[0].Addr() + " to " + rc.Nodes[1].Addr(),
				"slot 7 is importing into " + rc.Nodes[1].Addr() + " from " + rc.Nodes[0].Addr(),
				"resharding",
			} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("read with slot 7 on the move: %v; want it to say %q", err, want)
				}
			}
		})
	}
}
