//go:build unix

package filestore

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/promstore/promstore/internal/store"
)

// TestStatMatchesShards: Stat, which stats and reads headers on every
// core, gives each regular shard the facts Shards gives it (size, disk
// space, mtime, a sound shard's used size), in the same order, and leaves
// out what is not a regular file (a FIFO, a link, a directory).
func TestStatMatchesShards(t *testing.T) {
	dir := t.TempDir()
	w := openDir(t, dir, LayoutTimestamp)
	for pid := range 700 {
		k, err := store.ParseKey(store.EncodeKey("req", "req_total", []store.Label{{Name: "route", Value: "/r" + strconv.Itoa(pid%13)}}, "Requests."))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteShard(context.Background(), store.ShardID{Kind: store.KindCounter, PID: strconv.Itoa(1000 + pid)}, []store.Sample{{Key: k, Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "counter_5.db"), withUsed(make([]byte, 64), 4096), 0o644); err != nil { // used past its end
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "counter_6.db"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "counter_1000.db"), filepath.Join(dir, "counter_7.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "counter_8.db"), 0o755); err != nil {
		t.Fatal(err)
	}
	st := openDir(t, dir, 0)
	stats, err := st.Stat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	shards, err := st.Shards(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var regular []store.ShardInfo
	for _, s := range shards {
		if s.ID.PID != "6" && s.ID.PID != "7" && s.ID.PID != "8" {
			regular = append(regular, s)
		}
	}
	if len(stats) != len(regular) || len(stats) != 701 {
		t.Fatalf("Stat gave %d shards, Shards %d regular ones; want 701", len(stats), len(regular))
	}
	for i, s := range stats {
		r := regular[i]
		if s.ID != r.ID || s.Location != r.Location || s.Bytes != r.Bytes || s.Allocated != r.Allocated || !s.Updated.Equal(r.Updated) {
			t.Fatalf("shard %d: Stat %+v, Shards %+v", i, s, r)
		}
		switch {
		case s.ID.PID == "5" && s.Used != 0:
			t.Errorf("a used size past the end of the file: Stat says %d, want 0", s.Used)
		case s.ID.PID != "5" && (s.Used != r.Used || s.Used == 0):
			t.Errorf("shard %s: Stat's used size %d, Shards' %d", s.ID, s.Used, r.Used)
		}
	}
}
