package filestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/store"
)

// mustKey parses a key text.
func mustKey(t testing.TB, text string) *store.Key {
	t.Helper()
	k, err := store.ParseKey(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// samplesByShard scans st and groups the samples per shard, in order.
func samplesByShard(t testing.TB, st store.Reader) map[store.ShardID][]store.Sample {
	t.Helper()
	out := map[store.ShardID][]store.Sample{}
	err := st.Scan(context.Background(), func(s store.Sample) error {
		out[s.Shard] = append(out[s.Shard], s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWriteShardByteIdentical rewrites every fixture shard with WriteShard
// and compares the result with the file Python wrote: the used region and
// the file size must be identical, the rest zero.
func TestWriteShardByteIdentical(t *testing.T) {
	for _, tt := range []struct {
		fixture string
		layout  int
	}{{"python-0.25-files", 16}, {"python-0.16-files", 8}} {
		t.Run(tt.fixture, func(t *testing.T) {
			src := fixtureStore(t, tt.fixture)
			out := t.TempDir()
			dst := openDir(t, out, tt.layout)
			shards := samplesByShard(t, openDir(t, src, 0))
			if len(shards) == 0 {
				t.Fatal("no shards read")
			}
			for id, samples := range shards {
				if err := dst.WriteShard(context.Background(), id, samples); err != nil {
					t.Fatal(err)
				}
				want, err := os.ReadFile(filepath.Join(src, id.String()+".db"))
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(filepath.Join(out, id.String()+".db"))
				if err != nil {
					t.Fatal(err)
				}
				used := binary.LittleEndian.Uint32(want)
				if len(got) != len(want) {
					t.Errorf("%s: wrote %d bytes, Python's file has %d", id, len(got), len(want))
					continue
				}
				if !bytes.Equal(got[:used], want[:used]) {
					i := 0
					for got[i] == want[i] {
						i++
					}
					t.Errorf("%s: used region differs from Python's first at byte %d", id, i)
				}
				if bytes.ContainsFunc(got[used:], func(r rune) bool { return r != 0 }) {
					t.Errorf("%s: bytes past used are not zero", id)
				}
			}
			ents, _ := os.ReadDir(out)
			if len(ents) != len(shards) {
				t.Errorf("directory holds %d files after writing %d shards (temporary files left?)", len(ents), len(shards))
			}
		})
	}
}

func TestWriteShardUpsert(t *testing.T) {
	const (
		kA = `["jobs", "jobs_total", {"q": "a"}, "Jobs."]`
		kB = `["jobs", "jobs_total", {"q": "b"}, "Jobs."]`
		kC = `["jobs", "jobs_total", {"q": "c"}, "Jobs."]`
		// A legacy key and the 4-element text Python >= 0.16 would write.
		kLegacy    = `["old", "old_total", {"z": "1", "a": "caf\u00e9"}]`
		kLegacyNew = `["old", "old_total", {"a": "caf\u00e9", "z": "1"}, "Multiprocess metric"]`
	)
	id := store.ShardID{Kind: store.KindCounter, PID: "77"}
	smp := func(k string, v, ts float64) store.Sample {
		return store.Sample{Shard: id, Key: mustKey(t, k), Value: v, Timestamp: ts}
	}
	type row struct {
		key   string
		value float64
		ts    float64
	}
	tests := []struct {
		name   string
		layout int
		writes [][]store.Sample
		want   []row
	}{
		{"new shard", 16, [][]store.Sample{{smp(kA, 1, 10), smp(kB, 2, 20)}}, []row{{kA, 1, 10}, {kB, 2, 20}}},
		{"replace in place, append new", 16,
			[][]store.Sample{{smp(kA, 1, 10), smp(kB, 2, 20)}, {smp(kC, 3, 30), smp(kA, 5, 50)}},
			[]row{{kA, 5, 50}, {kB, 2, 20}, {kC, 3, 30}}},
		{"same shard twice leaves one copy", 16,
			[][]store.Sample{{smp(kA, 1, 10)}, {smp(kA, 1, 10)}}, []row{{kA, 1, 10}}},
		{"duplicate in one write: last wins", 16,
			[][]store.Sample{{smp(kA, 1, 0), smp(kA, 2, 0)}}, []row{{kA, 2, 0}}},
		{"legacy key re-encoded", 16,
			[][]store.Sample{{smp(kLegacy, 4, 0)}, {smp(kLegacyNew, 6, 0)}}, []row{{kLegacyNew, 6, 0}}},
		{"8-byte layout drops timestamps", 8,
			[][]store.Sample{{smp(kA, 1, 10)}, {smp(kB, 2, 20)}}, []row{{kA, 1, 0}, {kB, 2, 0}}},
		{"empty write creates an empty shard", 16, [][]store.Sample{{}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			st := openDir(t, dir, tt.layout)
			for _, w := range tt.writes {
				if err := st.WriteShard(context.Background(), id, w); err != nil {
					t.Fatal(err)
				}
			}
			got, err := scanAll(t, st)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d samples %+v, want %d", len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.shard != "counter_77" || g.key != w.key || g.value != w.value || g.ts != w.ts {
					t.Errorf("sample %d = %+v, want %+v", i, g, w)
				}
			}
			infos, _ := st.Shards(context.Background())
			if len(infos) != 1 || (len(tt.want) > 0 && infos[0].Layout != tt.layout) {
				t.Errorf("Shards() = %+v", infos)
			}
		})
	}
}

func TestWriteShardLayoutChange(t *testing.T) {
	dir := t.TempDir()
	id := store.ShardID{Kind: store.KindGauge, Mode: "livesum", PID: "5"}
	k := mustKey(t, keyA)
	if err := openDir(t, dir, 8).WriteShard(context.Background(), id, []store.Sample{{Key: k, Value: 1}}); err != nil {
		t.Fatal(err)
	}
	st16 := openDir(t, dir, 16)
	if err := st16.WriteShard(context.Background(), id, []store.Sample{{Key: mustKey(t, keyB), Value: 2, Timestamp: 3}}); err != nil {
		t.Fatal(err)
	}
	infos, _ := st16.Shards(context.Background())
	if len(infos) != 1 || infos[0].Layout != 16 || infos[0].Samples != 2 {
		t.Fatalf("after rewriting an 8-byte shard with a 16-byte store: %+v", infos)
	}
}

func TestWriteShardLarge(t *testing.T) {
	dir := t.TempDir()
	st := openDir(t, dir, 16)
	id := store.ShardID{Kind: store.KindHistogram, PID: "9"}
	var samples []store.Sample
	for i := range 3000 {
		text := store.EncodeKey("lat", "lat_bucket", []store.Label{{Name: "le", Value: strings.Repeat("9", i%40)}, {Name: "route", Value: "/r/" + strings.Repeat("x", i%17) + string(rune('a'+i%26))}}, "Latency.")
		samples = append(samples, store.Sample{Key: mustKey(t, text), Value: float64(i)})
	}
	if err := st.WriteShard(context.Background(), id, samples); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "histogram_9.db"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := scanAll(t, st)
	if err != nil {
		t.Fatal(err)
	}
	// Keys repeat (i%40, i%17, i%26 cycle with period 17*26*40 > 3000,
	// so they do not): every sample is kept.
	if len(got) != len(samples) {
		t.Fatalf("read back %d samples, wrote %d", len(got), len(samples))
	}
	size := fi.Size()
	if size <= 65536 || size&(size-1) != 0 {
		t.Errorf("file size %d: want a power of two above 64 KiB", size)
	}
	for i, g := range got {
		if g.value != float64(i) {
			t.Fatalf("sample %d has value %v", i, g.value)
		}
	}
}

func TestWriteShardRefusesCorruptTarget(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "counter_3.db")
	bad := withInt32(shardBytes(t, 16, keyA), 8, 1919251561)
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	st := openDir(t, dir, 16)
	err := st.WriteShard(context.Background(), store.ShardID{Kind: store.KindCounter, PID: "3"}, []store.Sample{{Key: mustKey(t, keyB), Value: 1}})
	if err == nil || !strings.Contains(err.Error(), "counter_3.db") || !strings.Contains(err.Error(), "corrupt") ||
		!strings.Contains(err.Error(), "key length 1919251561") {
		t.Fatalf("WriteShard over a corrupt file = %v", err)
	}
	now, _ := os.ReadFile(path)
	if !bytes.Equal(now, bad) {
		t.Fatal("corrupt file was modified")
	}
}

func TestWriteShardInvalid(t *testing.T) {
	st := openDir(t, t.TempDir(), 16)
	k := mustKey(t, keyA)
	tests := []struct {
		name    string
		id      store.ShardID
		samples []store.Sample
		want    string
	}{
		{"all-mode gauge of a pid with underscore", store.ShardID{Kind: store.KindGauge, Mode: "liveall", PID: "a_b"}, nil, "invalid shard id"},
		{"empty pid", store.ShardID{Kind: store.KindCounter}, nil, "invalid shard id"},
		{"pid with slash", store.ShardID{Kind: store.KindCounter, PID: "../x"}, nil, "invalid shard id"},
		{"gauge without mode", store.ShardID{Kind: store.KindGauge, PID: "1"}, nil, "invalid shard id"},
		{"counter with mode", store.ShardID{Kind: store.KindCounter, Mode: "all", PID: "1"}, nil, "invalid shard id"},
		{"nil key", store.ShardID{Kind: store.KindCounter, PID: "1"}, []store.Sample{{Key: k}, {}}, "sample 1 has no key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.WriteShard(context.Background(), tt.id, tt.samples)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("WriteShard = %v, want %q", err, tt.want)
			}
		})
	}
	ents, _ := os.ReadDir(st.Dir())
	if len(ents) != 0 {
		t.Errorf("invalid writes left %d files", len(ents))
	}
}

func TestDeleteShard(t *testing.T) {
	dir := t.TempDir()
	st := openDir(t, dir, 16)
	id := store.ShardID{Kind: store.KindGauge, Mode: "liveall", PID: "12"}
	if err := st.DeleteShard(context.Background(), id); err != nil {
		t.Fatalf("deleting a missing shard: %v", err)
	}
	if err := st.WriteShard(context.Background(), id, []store.Sample{{Key: mustKey(t, keyA), Value: math.Inf(1)}}); err != nil {
		t.Fatal(err)
	}
	other := store.ShardID{Kind: store.KindCounter, PID: "12"}
	if err := st.WriteShard(context.Background(), other, []store.Sample{{Key: mustKey(t, keyA), Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteShard(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "gauge_liveall_12.db")); !os.IsNotExist(err) {
		t.Fatalf("shard file still there: %v", err)
	}
	got, err := scanAll(t, st)
	if err != nil || len(got) != 1 || got[0].shard != "counter_12" {
		t.Fatalf("after delete: %+v, %v", got, err)
	}
	if err := st.DeleteShard(context.Background(), id); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
}
