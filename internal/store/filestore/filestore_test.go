package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dir     string
		layout  int
		wantErr string
	}{
		{"ok default layout", dir, 0, ""},
		{"ok legacy layout", dir, 8, ""},
		{"missing", filepath.Join(dir, "nope"), 0, "nope: no such file or directory"},
		{"not a directory", file, 0, file + " is not a directory"},
		{"empty", "", 0, "no directory given"},
		{"bad layout", dir, 12, "layout 12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := Open(context.Background(), tt.dir, Options{Layout: tt.layout})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := st.Describe(), "dir "+tt.dir; got != want {
				t.Errorf("Describe() = %q, want %q", got, want)
			}
			want := tt.layout
			if want == 0 {
				want = 16
			}
			if st.Layout() != want {
				t.Errorf("Layout() = %d, want %d", st.Layout(), want)
			}
		})
	}
}

func TestRegisteredAsFileBackend(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), store.Location{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, ok := st.(*Store); !ok || st.Describe() != "dir "+dir {
		t.Fatalf("store.Open gave %T %q", st, st.Describe())
	}
}

func TestReadFixtures(t *testing.T) {
	tests := []struct {
		name   string
		dir    string
		layout int
	}{
		{"python 0.25", fixtureStore(t, "python-0.25-files"), 16},
		{"python 0.16", fixtureStore(t, "python-0.16-files"), 8},
		{"repo sample store", filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openDir(t, tt.dir, 0)
			infos, err := st.Shards(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			names, _ := filepath.Glob(filepath.Join(tt.dir, "*.db"))
			if len(infos) != len(names) || len(infos) == 0 {
				t.Fatalf("Shards() listed %d shards, dir holds %d *.db files", len(infos), len(names))
			}
			perShard := map[string]int{}
			total := 0
			for _, in := range infos {
				if len(in.Problems) > 0 {
					t.Errorf("%s: problems %v", in.Location, in.Problems)
				}
				if tt.layout != 0 && in.Layout != tt.layout {
					t.Errorf("%s: layout %d, want %d", in.Location, in.Layout, tt.layout)
				}
				if in.Layout != 8 && in.Layout != 16 {
					t.Errorf("%s: layout %d", in.Location, in.Layout)
				}
				fi, err := os.Stat(in.Location)
				if err != nil {
					t.Fatal(err)
				}
				if in.Samples == 0 || in.Bytes != fi.Size() || in.Bytes%65536 != 0 || in.Alive != store.AliveUnknown || !in.Updated.Equal(fi.ModTime()) {
					t.Errorf("%s: implausible facts %+v", in.Location, in)
				}
				if filepath.Base(in.Location) != in.ID.String()+".db" {
					t.Errorf("%s: id %v", in.Location, in.ID)
				}
				perShard[in.ID.String()] = in.Samples
				total += in.Samples
			}
			got, err := scanAll(t, st)
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			if len(got) != total {
				t.Errorf("Scan gave %d samples, Shards counted %d", len(got), total)
			}
			suffixes := map[string][]string{
				"counter":   {"_total"},
				"histogram": {"_bucket", "_sum", "_count"},
				"summary":   {"_sum", "_count"},
			}
			for _, s := range got {
				perShard[s.shard]--
				if s.ts != 0 && tt.layout == 8 {
					t.Errorf("legacy sample %s has timestamp %v", s.key, s.ts)
				}
				k, _ := store.ParseKey(s.key)
				kind, _, _ := strings.Cut(s.shard, "_")
				ok := kind == "gauge" && k.Name == k.Family
				for _, suf := range suffixes[kind] {
					ok = ok || k.Name == k.Family+suf
				}
				if !ok {
					t.Errorf("shard %s holds sample %s of family %s", s.shard, k.Name, k.Family)
				}
			}
			for id, n := range perShard {
				if n != 0 {
					t.Errorf("shard %s: Scan and Shards disagree by %d samples", id, n)
				}
			}
		})
	}
}

// pyReader reads shard files with Python: 8-byte files with the installed
// prometheus_client's own reader, 16-byte ones with the reading loop of
// prometheus_client 0.25's mmap_dict. It prints one JSON line per sample:
// file, key, value bits, timestamp bits.
const pyReader = `
import json, struct, sys
from prometheus_client.mmap_dict import MmapedDict
def read16(path):
    with open(path, 'rb') as f:
        data = f.read()
    used = struct.unpack_from('i', data, 0)[0]
    pos = 8
    while pos < used:
        n = struct.unpack_from('i', data, pos)[0]
        if n + pos > used:
            raise RuntimeError('Read beyond file size detected, file is corrupted.')
        pos += 4
        key = data[pos:pos + n].decode('utf-8')
        pos += n + (8 - (n + 4) % 8)
        yield key, pos
        pos += 16
stride = int(sys.argv[1])
for path in sys.argv[2:]:
    data = open(path, 'rb').read()
    if stride == 8:
        it = ((k, p) for k, _, p in MmapedDict.read_all_values_from_file(path))
    else:
        it = read16(path)
    for key, pos in it:
        v = struct.unpack_from('<Q', data, pos)[0]
        ts = struct.unpack_from('<Q', data, pos + 8)[0] if stride == 16 else 0
        print(json.dumps([path.rsplit('/', 1)[1][:-3], key, v, ts]))
`

// TestReadMatchesPythonReader compares every sample of the fixtures,
// bit for bit, with what Python's reading loop finds.
func TestReadMatchesPythonReader(t *testing.T) {
	for _, tt := range []struct {
		fixture string
		stride  string
	}{{"python-0.25-files", "16"}, {"python-0.16-files", "8"}} {
		t.Run(tt.fixture, func(t *testing.T) {
			dir := fixtureStore(t, tt.fixture)
			// Python's glob hands files over in directory order, and so
			// does the reader: list them in that order.
			var names []string
			for _, n := range dirNames(t, dir) {
				if strings.HasSuffix(n, ".db") {
					names = append(names, filepath.Join(dir, n))
				}
			}
			out := testenv.RunPython(t, context.Background(), pyReader, nil, append([]string{tt.stride}, names...)...)
			var want []gotSample
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				var rec [4]json.RawMessage
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				var s gotSample
				var v, ts uint64
				for i, dst := range []any{&s.shard, &s.key, &v, &ts} {
					if err := json.Unmarshal(rec[i], dst); err != nil {
						t.Fatalf("%s: field %d: %v", line, i, err)
					}
				}
				s.value, s.ts = math.Float64frombits(v), math.Float64frombits(ts)
				want = append(want, s)
			}
			got, err := scanAll(t, openDir(t, dir, 0))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d samples, Python read %d", len(got), len(want))
			}
			for i := range got {
				g, w := got[i], want[i]
				if g.shard != w.shard || g.key != w.key ||
					math.Float64bits(g.value) != math.Float64bits(w.value) ||
					math.Float64bits(g.ts) != math.Float64bits(w.ts) {
					t.Errorf("sample %d: got %+v, Python read %+v", i, g, w)
				}
			}
		})
	}
}

// TestMixedLayouts reads a directory holding shards of both layouts.
func TestMixedLayouts(t *testing.T) {
	dir := t.TempDir()
	new16 := fixtureStore(t, "python-0.25-files")
	old8 := fixtureStore(t, "python-0.16-files")
	for _, n := range []string{"counter_4100.db", "histogram_4101.db", "gauge_mostrecent_4102.db"} {
		testenv.CopyFile(t, filepath.Join(new16, n), filepath.Join(dir, n))
	}
	// The 0.16 files get other pids, as another program would have.
	for _, n := range []string{"counter_4100.db", "histogram_4101.db", "gauge_livesum_4102.db"} {
		testenv.CopyFile(t, filepath.Join(old8, n), filepath.Join(dir, strings.Replace(n, "_41", "_91", 1)))
	}
	st := openDir(t, dir, 0)
	infos, err := st.Shards(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	layouts := map[string]int{}
	for _, in := range infos {
		if len(in.Problems) > 0 {
			t.Errorf("%s: %v", in.Location, in.Problems)
		}
		layouts[in.ID.String()] = in.Layout
	}
	want := map[string]int{
		"counter_4100": 16, "histogram_4101": 16, "gauge_mostrecent_4102": 16,
		"counter_9100": 8, "histogram_9101": 8, "gauge_livesum_9102": 8,
	}
	for id, l := range want {
		if layouts[id] != l {
			t.Errorf("shard %s: layout %d, want %d", id, layouts[id], l)
		}
	}
	got, err := scanAll(t, st)
	if err != nil {
		t.Fatal(err)
	}
	perShard := map[string]int{}
	for _, s := range got {
		perShard[s.shard]++
	}
	for id := range want {
		if perShard[id] == 0 {
			t.Errorf("shard %s delivered no samples", id)
		}
	}
}

// TestKeysShared checks that one key text is one *store.Key across shards
// and across scans.
func TestKeysShared(t *testing.T) {
	st := openDir(t, fixtureStore(t, "python-0.25-files"), 0)
	byText := map[string]*store.Key{}
	for scan := 0; scan < 2; scan++ {
		err := st.Scan(context.Background(), func(s store.Sample) error {
			if k, ok := byText[s.Key.Text]; ok && k != s.Key {
				t.Fatalf("scan %d: key %q delivered as two pointers", scan, s.Key.Text)
			}
			byText[s.Key.Text] = s.Key
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestScanStopsOnCallbackError(t *testing.T) {
	st := openDir(t, fixtureStore(t, "python-0.25-files"), 0)
	stop := os.ErrDeadlineExceeded
	n := 0
	err := st.Scan(context.Background(), func(store.Sample) error {
		n++
		if n == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 10 {
		t.Fatalf("Scan = %v after %d samples, want the callback's error after 10", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	err = st.Scan(ctx, func(store.Sample) error {
		n++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Scan after cancel = %v", err)
	}
	// The store still scans completely afterwards.
	if _, err := scanAll(t, st); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentScans runs scans and listings of one store at the same
// time (as `serve` does for parallel scrapes).
func TestConcurrentScans(t *testing.T) {
	st := openDir(t, fixtureStore(t, "python-0.25-files"), 0)
	want, err := scanAll(t, st)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			if i%4 == 3 {
				_, err := st.Shards(context.Background())
				errs <- err
				return
			}
			got, err := scanAll(t, st)
			if err == nil && len(got) != len(want) {
				err = fmt.Errorf("scan %d: %d samples, want %d", i, len(got), len(want))
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestScanShardsMatchesScan: ScanShards hands over the same samples as
// Scan, in the same order, a shard per call, with the same problems.
func TestScanShardsMatchesScan(t *testing.T) {
	for _, name := range []string{"python-0.25-files", "python-0.16-files"} {
		t.Run(name, func(t *testing.T) {
			dir := testenv.CopyStore(t, fixtureStore(t, name))
			// A corrupt shard among them: both skip it and report it.
			if err := os.WriteFile(filepath.Join(dir, "counter_999.db"), []byte("not a shard"), 0o644); err != nil {
				t.Fatal(err)
			}
			st := openDir(t, dir, 0)
			want, wantErr := scanAll(t, st)
			var got []gotSample
			calls := 0
			err := st.ScanShards(context.Background(), func(id store.ShardID, entries []store.Entry) error {
				calls++
				for _, e := range entries {
					got = append(got, gotSample{id.String(), e.Key.Text, e.Value, e.Timestamp})
				}
				return nil
			})
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || wantErr == nil {
				t.Errorf("ScanShards error %v, Scan error %v (want the same partial error)", err, wantErr)
			}
			if calls == 0 || len(got) != len(want) {
				t.Fatalf("ScanShards gave %d samples in %d calls, Scan %d", len(got), calls, len(want))
			}
			for i := range want {
				if got[i] != want[i] && !(math.IsNaN(got[i].value) && math.IsNaN(want[i].value)) {
					t.Fatalf("sample %d = %+v, Scan gave %+v", i, got[i], want[i])
				}
			}
		})
	}
}

// TestGuessedKeys: whatever the previous shard of a kind held (walk
// guesses from it), each entry gets the key its own bytes name, with the
// key's ID. Many shards, so that both parse workers guess from each
// other's shards.
func TestGuessedKeys(t *testing.T) {
	key := func(route string) *store.Key {
		k, err := store.ParseKey(store.EncodeKey("req", "req_total", []store.Label{{Name: "route", Value: route}}, "Requests."))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := []string{"/a1", "/a2", "/a3", "/a4", "/a5", "/a6"}
	orders := []struct {
		name   string
		routes []string
	}{
		{"same order", base},
		{"reversed", []string{"/a6", "/a5", "/a4", "/a3", "/a2", "/a1"}},
		{"one fewer", base[:5]},
		{"one more", append(slices.Clone(base), "/a7")},
		{"same lengths, other text", []string{"/a1", "/a2", "/b3", "/a4", "/a5", "/a6"}},
		{"one inserted", []string{"/a1", "/x", "/a2", "/a3", "/a4", "/a5", "/a6"}},
		{"empty", nil},
	}
	dir := t.TempDir()
	w := openDir(t, dir, LayoutTimestamp)
	want := map[string][]string{}
	pid := 100
	for round := range 6 {
		for _, o := range orders {
			id := store.ShardID{Kind: store.KindCounter, PID: strconv.Itoa(pid)}
			pid++
			var samples []store.Sample
			for i, r := range o.routes {
				samples = append(samples, store.Sample{Key: key(r), Value: float64(round*100 + i)})
			}
			if len(samples) == 0 {
				continue
			}
			if err := w.WriteShard(context.Background(), id, samples); err != nil {
				t.Fatal(err)
			}
			want[id.String()] = o.routes
		}
	}
	st := openDir(t, dir, 0)
	for scan := range 2 {
		got := map[string][]string{}
		err := st.ScanShards(context.Background(), func(id store.ShardID, entries []store.Entry) error {
			for _, e := range entries {
				if e.KeyID != e.Key.ID || e.Key.ID == 0 {
					t.Errorf("shard %s: entry of %s has key ID %d, its key %d", id, e.Key.Text, e.KeyID, e.Key.ID)
				}
				got[id.String()] = append(got[id.String()], e.Key.Labels[0].Value)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !maps.EqualFunc(got, want, slices.Equal) {
			t.Errorf("scan %d: got %v, want %v", scan, got, want)
		}
	}
}

// TestManySmallShards: a pile of small shards (read in units of many
// files by one worker, opened without a stat) comes out in directory
// order with every sample, mixed with a symbolic link to a shard and a
// corrupt shard (each an error naming it, the rest still read).
func TestManySmallShards(t *testing.T) {
	dir := t.TempDir()
	w := openDir(t, dir, LayoutTimestamp)
	want := map[string][]float64{}
	for pid := range 300 {
		id := store.ShardID{Kind: store.KindCounter, PID: strconv.Itoa(1000 + pid)}
		var samples []store.Sample
		for i := range 1 + pid%5 {
			k, err := store.ParseKey(store.EncodeKey("req", "req_total", []store.Label{{Name: "route", Value: "/r" + strconv.Itoa((pid*7+i)%40)}}, "Requests."))
			if err != nil {
				t.Fatal(err)
			}
			samples = append(samples, store.Sample{Key: k, Value: float64(pid*10 + i)})
			want[id.String()] = append(want[id.String()], float64(pid*10+i))
		}
		if err := w.WriteShard(context.Background(), id, samples); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "counter_1000.db"), filepath.Join(dir, "counter_99999.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "counter_88888.db"), []byte("not a shard"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, n := range names {
		if n != "counter_88888.db" && n != "counter_99999.db" {
			order = append(order, strings.TrimSuffix(n, ".db"))
		}
	}
	st := openDir(t, dir, 0)
	for scan := range 2 {
		got := map[string][]float64{}
		var gotOrder []string
		err := st.ScanShards(context.Background(), func(id store.ShardID, entries []store.Entry) error {
			gotOrder = append(gotOrder, id.String())
			for _, e := range entries {
				got[id.String()] = append(got[id.String()], e.Value)
			}
			return nil
		})
		problems, _ := store.Partial(err)
		var bad []string
		for _, p := range problems {
			bad = append(bad, p.Shard)
		}
		slices.Sort(bad)
		if !slices.Equal(bad, []string{"counter_88888.db", "counter_99999.db"}) {
			t.Errorf("scan %d: error %v naming %v, want the corrupt counter_88888.db and the link counter_99999.db", scan, err, bad)
		}
		if !slices.Equal(gotOrder, order) {
			t.Errorf("scan %d: shards in order %v, want directory order %v", scan, gotOrder, order)
		}
		if !maps.EqualFunc(got, want, slices.Equal) {
			t.Errorf("scan %d: got %v, want %v", scan, got, want)
		}
	}
}

// TestSmallShardsAllocateNoBufferEach: a read of many small shards makes
// no shard record and no entry buffer per shard: the shards' records and
// entries go into their unit's room, used again unit after unit (the
// code before made a record per shard and, for want of doubling, a buffer
// for nearly every shard: 640 and 632 here).
func TestSmallShardsAllocateNoBufferEach(t *testing.T) {
	dir := t.TempDir()
	w := openDir(t, dir, LayoutTimestamp)
	const shards = 640
	for pid := range shards {
		var samples []store.Sample
		for i := range 20 {
			k, err := store.ParseKey(store.EncodeKey("req", "req_total", []store.Label{{Name: "route", Value: "/r" + strconv.Itoa(i)}}, "Requests."))
			if err != nil {
				t.Fatal(err)
			}
			samples = append(samples, store.Sample{Key: k, Value: float64(pid + i)})
		}
		if err := w.WriteShard(context.Background(), store.ShardID{Kind: store.KindCounter, PID: strconv.Itoa(1000 + pid)}, samples); err != nil {
			t.Fatal(err)
		}
	}
	st := openDir(t, dir, 0)
	for read := range 3 {
		rooms, buffers := unitRooms.Load(), entryBuffers.Load()
		n := 0
		if err := st.ScanShards(context.Background(), func(_ store.ShardID, es []store.Entry) error { n += len(es); return nil }); err != nil {
			t.Fatal(err)
		}
		if n != shards*20 {
			t.Fatalf("read %d: %d entries, want %d", read, n, shards*20)
		}
		rooms, buffers = unitRooms.Load()-rooms, entryBuffers.Load()-buffers
		t.Logf("read %d of %d shards: %d unit rooms, %d entry buffers made", read, shards, rooms, buffers)
		// Rooms: no more than the units in flight at once.
		if rooms > pipelineDepth+2*parseWorkers || buffers > shards/16 {
			t.Errorf("read %d of %d small shards made %d unit rooms and %d entry buffers: about one per shard", read, shards, rooms, buffers)
		}
	}
}

// TestMixedShardsReuseBuffers: in directory order, large shards come
// among small ones; a read makes entry buffers for about as many entries
// as it reads ahead at once, not a large one for every unit that ever
// holds a large shard (a unit kept its own buffer, grown for the largest
// shard it held: every unit of the pipeline in time; 17 units and 33
// buffers, 16 MB more, on the big bench store).
func TestMixedShardsReuseBuffers(t *testing.T) {
	dir := t.TempDir()
	w := openDir(t, dir, LayoutTimestamp)
	const large, small, each = 30, 600, 20000
	for pid := range large {
		writeRoutes(t, w, store.ShardID{Kind: store.KindCounter, PID: strconv.Itoa(1000 + pid)}, firstRoutes(each))
	}
	for pid := range small {
		writeRoutes(t, w, store.ShardID{Kind: store.KindSummary, PID: strconv.Itoa(5000 + pid)}, firstRoutes(3))
	}
	// No more entries are read ahead than the tokens allow, and a large
	// shard more for each worker; the units' own buffers made
	// 405,000-490,000 here.
	checkEntryRoom(t, openDir(t, dir, 0), large*each+small*3, int64(pipelineDepth*tokenEntries+parseWorkers*each)*17/16)
}

// writeRoutes writes shard id of a counter family's series of the given
// routes, in that order, each of value its route.
func writeRoutes(t *testing.T, w *Store, id store.ShardID, routes []int) {
	t.Helper()
	var samples []store.Sample
	for _, r := range routes {
		k, err := store.ParseKey(store.EncodeKey("req", "req_total", []store.Label{{Name: "route", Value: "/r" + strconv.Itoa(r)}}, "Requests."))
		if err != nil {
			t.Fatal(err)
		}
		samples = append(samples, store.Sample{Key: k, Value: float64(r)})
	}
	if err := w.WriteShard(context.Background(), id, samples); err != nil {
		t.Fatal(err)
	}
}

// firstRoutes returns 0 to n-1.
func firstRoutes(n int) []int {
	rs := make([]int, n)
	for i := range rs {
		rs[i] = i
	}
	return rs
}

// checkEntryRoom reads st three times: each read must hand over entries
// entries and make entry buffers of room for at most limit entries.
func checkEntryRoom(t *testing.T, st *Store, entries int, limit int64) {
	t.Helper()
	for read := range 3 {
		buffers, room := entryBuffers.Load(), entryBufferRoom.Load()
		n := 0
		if err := st.ScanShards(context.Background(), func(_ store.ShardID, es []store.Entry) error { n += len(es); return nil }); err != nil {
			t.Fatal(err)
		}
		if n != entries {
			t.Fatalf("read %d: %d entries, want %d", read, n, entries)
		}
		buffers, room = entryBuffers.Load()-buffers, entryBufferRoom.Load()-room
		t.Logf("read %d: %d entry buffers made, room for %d entries", read, buffers, room)
		if room > limit {
			t.Errorf("read %d: entry buffers of room for %d entries made, more than the %d the pipeline holds at once", read, room, limit)
		}
	}
}

// dirNames returns the names in dir in directory order (the order Python's
// glob and the reader take them in).
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestSmallShardsAfterLargeRoom: a kind's guesses may stay a large
// shard's among small shards of that kind that write their own series
// (see guessBook.update); a unit of many such small shards then asks for
// room for its shards from guesses that are not theirs, and must not ask
// for a large shard's room for each of them (a review found 25-30 million
// entries' room made per read here, for 140,000 entries).
func TestSmallShardsAfterLargeRoom(t *testing.T) {
	dir := t.TempDir()
	w := openDir(t, dir, LayoutTimestamp)
	const large, small, each = 6, 3000, 20000
	for pid := range small {
		// Three series of the second half, never at their place in a
		// large shard.
		writeRoutes(t, w, store.ShardID{Kind: store.KindCounter, PID: strconv.Itoa(10000 + pid)}, []int{each - 1 - pid%97, each - 200 - pid%89, each - 400 - pid%83})
	}
	// The first file in directory order, and a few more, large.
	names := dirNames(t, dir)
	for i := range large {
		id, ok, err := ShardFile(names[i*len(names)/large])
		if !ok || err != nil {
			t.Fatalf("%s: not a shard file: %v", names[i*len(names)/large], err)
		}
		writeRoutes(t, w, id, firstRoutes(each))
	}
	checkEntryRoom(t, openDir(t, dir, 0), large*each+(small-large)*3, int64(pipelineDepth*tokenEntries+parseWorkers*each)*17/16)
}
