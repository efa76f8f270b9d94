package tui

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

func snapshotOf(t *testing.T, src Source) *Snapshot {
	t.Helper()
	s, err := src.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return s
}

func near(a, b float64) bool {
	if a == b || math.IsNaN(a) && math.IsNaN(b) {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

func TestSnapshotSampleStore(t *testing.T) {
	st := openStore(t, sampleStore)
	snap := snapshotOf(t, NewStoreSource(st, SourceOptions{Alive: alivePolicy}))

	if snap.Store != "dir "+sampleStore || snap.Shards != 33 || snap.Samples != 710 || len(snap.Problems) != 0 {
		t.Errorf("store %q shards %d samples %d problems %v; want dir %s, 33, 710, none",
			snap.Store, snap.Shards, snap.Samples, snap.Problems, sampleStore)
	}
	wantPIDs := []PID{{"4100", store.AliveYes}, {"4101", store.AliveNo}, {"4102", store.AliveNo}}
	if len(snap.PIDs) != len(wantPIDs) {
		t.Fatalf("pids %v, want %v", snap.PIDs, wantPIDs)
	}
	for i := range wantPIDs {
		if snap.PIDs[i] != wantPIDs[i] {
			t.Errorf("pid %d = %v, want %v", i, snap.PIDs[i], wantPIDs[i])
		}
	}

	// The values are the aggregator's, in its order.
	agg := aggregate.New()
	if err := st.Scan(context.Background(), agg.Add); err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, f := range agg.Families() {
		for _, s := range f.Samples {
			if i >= len(snap.Series) {
				t.Fatalf("snapshot has %d series, aggregate more", len(snap.Series))
			}
			got := snap.Series[i]
			if got.Name != s.Name || got.Family != f.Name || !near(got.Value, s.Value) || got.Key != aggregate.SeriesID(s.Name, s.Labels) {
				t.Errorf("series %d = %s%s %v, want %s %v", i, got.Name, got.LabelText, got.Value, s.Name, s.Value)
			}
			i++
		}
	}
	if i != len(snap.Series) {
		t.Errorf("snapshot has %d series, aggregate %d", len(snap.Series), i)
	}

	// What each process contributes adds up to the series, as its merge
	// says; three processes, so nothing is left out.
	for _, sr := range snap.Series {
		name := sr.Name + sr.LabelText
		if sr.Others != 0 {
			t.Errorf("%s: %d others with 3 processes", name, sr.Others)
		}
		if len(sr.Contrib) == 0 {
			t.Errorf("%s: no contributions", name)
			continue
		}
		vals := make([]float64, len(sr.Contrib))
		for i, c := range sr.Contrib {
			vals[i] = c.Value
		}
		switch aggregate.MergeOf(sr.Type, sr.Mode) {
		case aggregate.MergeSum:
			sum := 0.0
			for _, v := range vals {
				sum += v
			}
			if !near(sum, sr.Value) {
				t.Errorf("%s: contributions %v add up to %v, want %v", name, vals, sum, sr.Value)
			}
		case aggregate.MergeMin:
			if vals[0] != sr.Value && !(math.IsNaN(sr.Value)) {
				t.Errorf("%s: first contribution %v, want the minimum %v", name, vals[0], sr.Value)
			}
		case aggregate.MergeMax:
			if vals[0] != sr.Value && !(math.IsNaN(sr.Value)) {
				t.Errorf("%s: first contribution %v, want the maximum %v", name, vals[0], sr.Value)
			}
		case aggregate.MergeEach:
			if len(sr.Contrib) != 1 || !strings.Contains(sr.LabelText, `pid="`+sr.Contrib[0].PID+`"`) {
				t.Errorf("%s: contributions %v, want its own pid", name, sr.Contrib)
			}
		}
		countOrSum := strings.HasSuffix(sr.Name, "_count") || strings.HasSuffix(sr.Name, "_sum")
		if sr.Monotonic != (sr.Type == store.KindCounter || countOrSum && (sr.Type == store.KindHistogram || sr.Type == store.KindSummary)) {
			t.Errorf("%s: monotonic %v", name, sr.Monotonic)
		}
	}
}

func TestSnapshotBoundsContributors(t *testing.T) {
	dir := t.TempDir()
	st, err := filestore.Open(context.Background(), dir, filestore.Options{Layout: filestore.LayoutTimestamp})
	if err != nil {
		t.Fatal(err)
	}
	reqs := mkKey("reqs", "reqs_total", "route", "/a")
	low := mkKey("low", "low", "route", "/a")
	lat := func(le string) *store.Key { return mkKey("lat", "lat_bucket", "le", le, "route", "/a") }
	latSum := mkKey("lat", "lat_sum", "route", "/a")
	last := mkKey("last", "last")
	const pids = 40
	total, inf := 0.0, 0.0
	for p := 1; p <= pids; p++ {
		pid := strconv.Itoa(1000 + p)
		v := float64(p)
		total += v
		writeShard(t, st, store.ShardID{Kind: store.KindCounter, PID: pid}, sample(reqs, v))
		writeShard(t, st, store.ShardID{Kind: store.KindGauge, Mode: "min", PID: pid}, sample(low, v))
		writeShard(t, st, store.ShardID{Kind: store.KindGauge, Mode: "mostrecent", PID: pid},
			store.Sample{Key: last, Value: v, Timestamp: float64(100 - p)})
		// Process p observed p values in (0, 1] and one in (1, +Inf].
		writeShard(t, st, store.ShardID{Kind: store.KindHistogram, PID: pid},
			sample(latSum, 2*v), sample(lat("1.0"), v), sample(lat("+Inf"), 1))
		inf += v + 1
	}
	snap := snapshotOf(t, NewStoreSource(st, SourceOptions{MaxContributors: 5}))
	if len(snap.Problems) > 0 {
		t.Fatalf("problems reading the store: %v", snap.Problems[0])
	}
	byName := map[string]Series{}
	for _, sr := range snap.Series {
		byName[sr.Name+sr.LabelText] = sr
	}
	pidsOf := func(sr Series) string {
		var s []string
		for _, c := range sr.Contrib {
			s = append(s, c.PID+"="+formatValue(c.Value))
		}
		return strings.Join(s, " ")
	}
	tests := []struct {
		series   string
		contrib  string
		others   int
		othersV  float64
		wantTotl float64
	}{
		{`reqs_total{route="/a"}`, "1040=40 1039=39 1038=38 1037=37 1036=36", 35, total - 190, total},
		{`lat_sum{route="/a"}`, "1040=80 1039=78 1038=76 1037=74 1036=72", 35, 2*total - 380, 2 * total},
		{`lat_bucket{le="1.0",route="/a"}`, "1040=40 1039=39 1038=38 1037=37 1036=36", 35, total - 190, total},
		{`lat_bucket{le="+Inf",route="/a"}`, "1040=41 1039=40 1038=39 1037=38 1036=37", 35, inf - 195, inf},
		{`lat_count{route="/a"}`, "1040=41 1039=40 1038=39 1037=38 1036=37", 35, inf - 195, inf},
		{`low{route="/a"}`, "1001=1 1002=2 1003=3 1004=4 1005=5", 35, math.NaN(), 1},
		{`last`, "1001=1 1002=2 1003=3 1004=4 1005=5", 35, math.NaN(), 1},
	}
	for _, tt := range tests {
		sr, ok := byName[tt.series]
		if !ok {
			t.Errorf("%s: missing", tt.series)
			continue
		}
		if got := pidsOf(sr); got != tt.contrib || sr.Others != tt.others || !near(sr.OthersValue, tt.othersV) || !near(sr.Value, tt.wantTotl) {
			t.Errorf("%s: value %v contrib %q others %d (%v); want %v, %q, %d (%v)",
				tt.series, sr.Value, got, sr.Others, sr.OthersValue, tt.wantTotl, tt.contrib, tt.others, tt.othersV)
		}
	}
	if snap.Shards != 4*pids || len(snap.PIDs) != pids || snap.PIDs[0].Alive != store.AliveUnknown {
		t.Errorf("shards %d pids %d (%v), want %d, %d, unknown liveness", snap.Shards, len(snap.PIDs), snap.PIDs[0], 4*pids, pids)
	}
}

func TestSnapshotSkipsBadShards(t *testing.T) {
	dir := testenv.CopyStore(t, sampleStore)
	if err := os.WriteFile(filepath.Join(dir, "counter_999.db"), []byte("not a shard at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap := snapshotOf(t, NewStoreSource(openStore(t, dir), SourceOptions{}))
	if len(snap.Problems) != 1 || !strings.Contains(snap.Problems[0], "counter_999.db") {
		t.Errorf("problems %q, want one naming counter_999.db", snap.Problems)
	}
	if snap.Shards != 34 || len(snap.Series) != 290 {
		t.Errorf("shards %d series %d, want 34 and the 290 of the readable shards", snap.Shards, len(snap.Series))
	}
}

func TestSnapshotFailsWithoutStore(t *testing.T) {
	dir := testenv.CopyStore(t, sampleStore)
	st := openStore(t, dir)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := NewStoreSource(st, SourceOptions{}).Snapshot(context.Background()); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("snapshot of a removed store: err %v, want one naming %s", err, dir)
	}
}

func TestLabelTextEscapes(t *testing.T) {
	got := labelText([]store.Label{{Name: "a", Value: "x\"y\\z\nw\x1b[31m\u0085"}, {Name: "b", Value: "日本"}})
	want := `{a="x\"y\\z\nw\x1b[31m\u0085",b="日本"}`
	if got != want {
		t.Errorf("labelText = %s, want %s", got, want)
	}
	if got := safeText("a\x07b\tc"); got != `a\ab\tc` {
		t.Errorf("safeText = %q", got)
	}
}

// TestSnapshotCacheAcrossReads checks that a source reading the same
// store again (reusing what it learnt about keys and series) gives what a
// fresh source gives, as values change, processes come and go, series
// appear and most of them disappear.
func TestSnapshotCacheAcrossReads(t *testing.T) {
	dir := testenv.CopyStore(t, sampleStore)
	st := openStore(t, dir)
	c := newClock()
	reused := NewStoreSource(st, SourceOptions{MaxContributors: 2, Now: c.Now})
	compare := func(step string) {
		t.Helper()
		sameSeries(t, step, snapshotOf(t, reused), snapshotOf(t, NewStoreSource(st, SourceOptions{MaxContributors: 2, Now: c.Now})), near)
	}
	compare("first read")
	compare("same store")

	writeShard(t, st, store.ShardID{Kind: store.KindCounter, PID: "4101"}, sample(mkKey("app_requests", "app_requests_total", "route", "/api/v1/items/0", "tag", "plain"), 1000))
	writeShard(t, st, store.ShardID{Kind: store.KindHistogram, PID: "4200"},
		sample(mkKey("app_latency_seconds", "app_latency_seconds_bucket", "le", "0.05", "route", "/api/v1/items/0", "tag", "plain"), 50),
		sample(mkKey("app_latency_seconds", "app_latency_seconds_bucket", "le", "+Inf", "route", "/api/v1/items/0", "tag", "plain"), 1),
		sample(mkKey("app_new", "app_new_bucket", "le", "1.0"), 3))
	if err := os.Remove(filepath.Join(dir, "counter_4100.db")); err != nil {
		t.Fatal(err)
	}
	compare("values changed, a process gone, one new")

	var churn []store.Sample
	for i := 0; i < 3000; i++ {
		churn = append(churn, sample(mkKey("churn", "churn", "n", strconv.Itoa(i)), 1))
	}
	writeShard(t, st, store.ShardID{Kind: store.KindGauge, Mode: "livesum", PID: "9"}, churn...)
	compare("many new series")
	if err := os.Remove(filepath.Join(dir, "gauge_livesum_9.db")); err != nil {
		t.Fatal(err)
	}
	compare("most series gone")
}

// sameSeries fails t unless got's series are want's: the same series, and
// values and contributions that same (near, or equal to the bit) says
// are the same.
func sameSeries(t *testing.T, step string, got, want *Snapshot, same func(a, b float64) bool) {
	t.Helper()
	if len(got.Series) != len(want.Series) {
		t.Fatalf("%s: %d series, fresh source %d", step, len(got.Series), len(want.Series))
	}
	for i := range want.Series {
		g, w := got.Series[i], want.Series[i]
		if g.Key != w.Key || g.LabelText != w.LabelText || !same(g.Value, w.Value) || g.Others != w.Others ||
			!same(g.OthersValue, w.OthersValue) || !slices.EqualFunc(g.Contrib, w.Contrib, func(a, b Contribution) bool {
			return a.PID == b.PID && same(a.Value, b.Value) && a.Timestamp == b.Timestamp
		}) {
			t.Errorf("%s: series %d = %+v, fresh source %+v", step, i, g, w)
		}
	}
}

// TestSnapshotRevaluesRunningShards: a source reading a store whose
// processes run and write values in place (kept reads: the same shards
// and keys, other values) revalues its aggregation, and shows what a
// fresh source shows, to the bit, processes' contributions included.
func TestSnapshotRevaluesRunningShards(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("KeepReads keeps nothing off Linux")
	}
	dir := testenv.CopyStore(t, sampleStore)
	st, err := filestore.Open(context.Background(), dir, filestore.Options{Alive: func(string) store.Liveness { return store.AliveYes }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.KeepReads(true)
	c := newClock()
	src := NewStoreSource(st, SourceOptions{MaxContributors: 2, Now: c.Now}).(*storeSource)
	fresh := func() *Snapshot {
		return snapshotOf(t, NewStoreSource(openStore(t, dir), SourceOptions{MaxContributors: 2, Now: c.Now}))
	}
	bits := func(a, b float64) bool {
		return math.Float64bits(a) == math.Float64bits(b) || math.IsNaN(a) && math.IsNaN(b)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.db"))
	if err != nil || len(files) < 2 {
		t.Fatalf("shards %v: %v", files, err)
	}
	sameSeries(t, "first read", snapshotOf(t, src), fresh(), bits)
	for round := range 4 {
		for i, f := range files {
			if (i+round)%2 == 0 {
				testenv.WriteFirstValue(t, f, float64(10*round+i)+0.25)
			}
		}
		sameSeries(t, fmt.Sprintf("round %d", round), snapshotOf(t, src), fresh(), bits)
	}
	sameSeries(t, "nothing written", snapshotOf(t, src), fresh(), bits)
	if src.revalued == 0 {
		t.Fatal("no read revalued: nothing tested")
	}
}

// TestContributionsEqualRaw: what top shows a process contributing to a
// series is that process's own samples of it, as dump --raw lists them
// (summed over the process's keys of the series; a histogram bucket's
// up to its le).
func TestContributionsEqualRaw(t *testing.T) {
	st := openStore(t, sampleStore)
	snap := snapshotOf(t, NewStoreSource(st, SourceOptions{}))
	type raw struct {
		name   string
		labels []store.Label
		pid    string
		value  float64
	}
	var raws []raw
	err := st.Scan(context.Background(), func(s store.Sample) error {
		ls := slices.Clone(s.Key.Labels)
		slices.SortFunc(ls, func(a, b store.Label) int { return strings.Compare(a.Name, b.Name) })
		raws = append(raws, raw{s.Key.Name, ls, s.Shard.PID, s.Value})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, sr := range snap.Series {
		if aggregate.MergeOf(sr.Type, sr.Mode) == aggregate.MergeEach || strings.HasSuffix(sr.Name, "_count") && sr.Type == store.KindHistogram {
			continue
		}
		le, without, bucket := math.NaN(), sr.Labels, false
		if sr.Type == store.KindHistogram && strings.HasSuffix(sr.Name, "_bucket") {
			le, without, bucket = aggregate.SplitLE(sr.Labels)
		}
		for _, c := range sr.Contrib {
			want, n := 0.0, 0
			for _, r := range raws {
				if r.pid != c.PID || r.name != sr.Name {
					continue
				}
				if bucket {
					rle, rwithout, ok := aggregate.SplitLE(r.labels)
					if !ok || rle > le || !slices.Equal(rwithout, without) {
						continue
					}
				} else if !slices.Equal(r.labels, sr.Labels) {
					continue
				}
				want += r.value
				n++
			}
			if n == 0 || !near(c.Value, want) {
				t.Errorf("%s%s: pid %s contributes %v, its raw samples (%d) %v", sr.Name, sr.LabelText, c.PID, c.Value, n, want)
			}
			checked++
		}
	}
	if checked < 500 {
		t.Errorf("only %d contributions checked", checked)
	}
}
