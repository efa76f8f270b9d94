package commands

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/analyze"
	"github.com/promstore/promstore/internal/cleanup"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/storetest"
	"github.com/promstore/promstore/internal/testenv"
)

func TestNewCmdAnalyzeFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(*testing.T, *AnalyzeOptions)
	}{
		{name: "defaults", args: []string{"-d", "x"}, check: func(t *testing.T, o *AnalyzeOptions) {
			if o.Top != 10 || o.Format != "table" || o.Local || o.Store == nil {
				t.Errorf("options = %+v", o)
			}
		}},
		{name: "all flags", args: []string{"-d", "x", "--top", "0", "-o", "json", "--local"}, check: func(t *testing.T, o *AnalyzeOptions) {
			if o.Top != 0 || o.Format != "json" || !o.Local {
				t.Errorf("options = %+v", o)
			}
		}},
		{name: "bad format", args: []string{"-d", "x", "-o", "tsv"}, wantErr: "--format must be one of"},
		{name: "negative top", args: []string{"-d", "x", "--top", "-1"}, wantErr: "--top must not be negative"},
		{name: "arguments", args: []string{"x"}, wantErr: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := parseCmd(t, nil, NewCmdAnalyze, tt.args, tt.wantErr)
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

// knownStore is written by the real prometheus_client: 3 processes
// (pids 5001-5003), each writing every series of
//   - orders (counter): region (4 values) x status (5 values) = 20 series,
//   - workers_busy (gauge, all): queue (2 values), per pid: 6 series,
//   - temperature (gauge, livesum): 1 series,
//   - latency (histogram, buckets 0.1, 1.0): route (3 values): 3 x (3
//     buckets, _count, _sum) = 15 series; the shards hold _bucket and _sum.
const knownStore = `
import os, sys
from prometheus_client import values
pid = int(sys.argv[1])
values.ValueClass = values.MultiProcessValue(lambda: pid)
from prometheus_client import Counter, Gauge, Histogram
c = Counter("orders", "Orders.", ["region", "status"])
for r in ("eu", "us", "ap", "sa"):
    for s in ("new", "paid", "sent", "done", "void"):
        c.labels(r, s).inc()
g = Gauge("workers_busy", "Busy workers.", ["queue"], multiprocess_mode="all")
for q in ("fast", "slow"):
    g.labels(q).set(pid)
Gauge("temperature", "Temp.", multiprocess_mode="livesum").set(1)
h = Histogram("latency", "Latency.", ["route"], buckets=(0.1, 1.0))
for r in ("/a", "/b", "/c"):
    h.labels(r).observe(0.5)
`

func TestAnalyzeKnownCardinalities(t *testing.T) {
	dir := t.TempDir()
	for _, pid := range []string{"5001", "5002", "5003"} {
		testenv.RunPython(t, nil, knownStore, []string{"PROMETHEUS_MULTIPROC_DIR=" + dir}, pid)
	}
	f, out, errOut := testFactory(nil)
	opts := &AnalyzeOptions{IO: f.IO, Format: "json", Top: 0,
		// Two minutes on, so that cleanup's guard of recently written
		// shards does not hold.
		Now:   func() time.Time { return time.Now().Add(2 * time.Minute) },
		Alive: func(string) store.Liveness { return store.AliveNo },
		Store: func(ctx context.Context) (store.Store, error) {
			return (&StoreFlags{Dir: dir}).Open(ctx, f)
		}}
	if err := analyzeRun(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var r analyze.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Shards != 12 || r.Samples != 60+6+3+36 || r.Series != 20+6+1+15 || r.FamiliesTotal != 4 || r.Unreadable != 0 {
		t.Errorf("totals: %d shards, %d samples, %d series, %d families, %d unreadable; want 12, 105, 42, 4, 0",
			r.Shards, r.Samples, r.Series, r.FamiliesTotal, r.Unreadable)
	}
	want := []struct {
		name, typ, mode string
		series, samples int
	}{
		{"orders", "counter", "", 20, 60},
		{"latency", "histogram", "", 15, 36},
		{"workers_busy", "gauge", "all", 6, 6},
		{"temperature", "gauge", "livesum", 1, 3},
	}
	if len(r.Families) != len(want) {
		t.Fatalf("families = %+v", r.Families)
	}
	var familyUsed int64
	for i, w := range want {
		got := r.Families[i]
		if got.Name != w.name || got.Type != w.typ || got.Mode != w.mode || got.Series != w.series || got.Samples != w.samples {
			t.Errorf("family %d = %+v, want %+v", i, got, w)
		}
		if got.Used <= 0 || got.Allocated < got.Used || got.OnDisk < got.Allocated {
			t.Errorf("family %s bytes: %+v", got.Name, got.Bytes)
		}
		familyUsed += got.Used
	}
	// A shard's used bytes are shared out whole to its families.
	if d := r.Used - familyUsed; d < 0 || d > 12*4 {
		t.Errorf("families' used bytes %d, store's %d", familyUsed, r.Used)
	}
	labels := map[string]int{}
	for _, l := range r.Labels {
		labels[l.Name] = l.Values
	}
	wantLabels := map[string]int{"status": 5, "region": 4, "route": 3, "le": 3, "pid": 3, "queue": 2}
	for name, n := range wantLabels {
		if labels[name] != n {
			t.Errorf("label %s: %d values, want %d (labels %v)", name, labels[name], n, labels)
		}
	}
	if len(labels) != len(wantLabels) || r.Labels[0].Name != "status" || r.Labels[0].Families[0].Family != "orders" {
		t.Errorf("labels = %+v", r.Labels)
	}
	// The series that carry each label: le only the 9 buckets of
	// latency's 15 series (not _sum and _count).
	carrying := map[string]int{}
	for _, l := range r.Labels {
		for _, f := range l.Families {
			carrying[l.Name+" "+f.Family] = f.Series
		}
	}
	for what, n := range map[string]int{"le latency": 9, "route latency": 15, "status orders": 20, "pid workers_busy": 6, "queue workers_busy": 6} {
		if carrying[what] != n {
			t.Errorf("label %s: %d series carry it, want %d (%v)", what, carrying[what], n, carrying)
		}
	}
	if len(r.AllGauges) != 1 || r.AllGauges[0] != (analyze.AllGauge{Family: "workers_busy", Mode: "all", PIDs: 3, DeadPIDs: 3, Series: 6, DeadSeries: 6, PerPID: 2}) {
		t.Errorf("all-mode gauges = %+v", r.AllGauges)
	}
	if r.Dead.Shards != 12 || r.Dead.Samples != 105 || r.Dead.Series != 42 || r.Live.Shards != 0 || r.Dead.Bytes != r.Bytes {
		t.Errorf("dead share = %+v, live %+v", r.Dead, r.Live)
	}
	c := r.Cleanup
	if c.Refused != "" || c.Removed != 3 || c.Compacted != 6 || c.Archives != 2 || c.Kept != 3 || c.Freed.Allocated <= 0 || c.Freed.OnDisk <= 0 {
		t.Errorf("cleanup = %+v", c)
	}
}

func TestAnalyzeTableAndFixtures(t *testing.T) {
	for _, fx := range []string{"python-0.25-files", "python-0.16-files"} {
		dir := filepath.Join(testenv.FixturesDir(t), fx, "store")
		code, out, stderr := runCLI(t, nil, "analyze", "--dir", dir, "-o", "json")
		if code != 0 {
			t.Fatalf("%s: exit %d %s", fx, code, stderr)
		}
		var r analyze.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		// Series are the lines of the aggregated output.
		_, dump, _ := runCLI(t, nil, "dump", "--dir", dir)
		lines := 0
		for _, l := range strings.Split(strings.TrimSpace(dump), "\n") {
			if !strings.HasPrefix(l, "#") {
				lines++
			}
		}
		if r.Series != lines {
			t.Errorf("%s: analyze counts %d series, dump prints %d", fx, r.Series, lines)
		}
	}
	// A Redis store holding the same samples (the exporter's fixture):
	// the same series and families; pids unknown without --local.
	srv := testenv.StartRedis(t)
	testenv.LoadRedisJSONL(t, srv.Client(), filepath.Join(testenv.FixturesDir(t), "gpe-0.2.4-redis", "store.jsonl"), nil)
	code, out, stderr := runCLI(t, nil, "analyze", "--redis-url", srv.URL(), "-o", "json")
	var r analyze.Report
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil {
		t.Fatalf("redis: exit %d %v %s", code, err, stderr)
	}
	if r.Series != 595 || r.FamiliesTotal != 19 || r.Unknown.Shards != r.Shards || r.Cleanup.Refused == "" || r.Used <= 0 {
		t.Errorf("redis: %d series in %d families, %d of %d shards unknown, cleanup %+v, %d bytes; want 595, 19, all unknown, no estimate",
			r.Series, r.FamiliesTotal, r.Unknown.Shards, r.Shards, r.Cleanup, r.Used)
	}

	code, out, _ = runCLI(t, nil, "analyze", "--dir", filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store"), "--top", "3")
	for _, w := range []string{"33 shards (0 unreadable), 710 samples, 290 series in 22 families", "FAMILY", "app_latency_seconds", "LABEL", "ALL-MODE GAUGE", "PIDS", "cleanup --dead-pids", "growth:"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("table lacks %q (exit %d):\n%s", w, code, out)
		}
	}
}

// TestAnalyzeSameReportEveryTime: a store analysed again gives the same
// report, byte for byte (ties in every ordering broken by name: the
// sample store has all-mode gauge families of the same series count).
func TestAnalyzeSameReportEveryTime(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	_, first, _ := runCLI(t, nil, "analyze", "--dir", dir, "-o", "json", "--top", "0")
	for i := range 20 {
		if _, out, _ := runCLI(t, nil, "analyze", "--dir", dir, "-o", "json", "--top", "0"); out != first {
			t.Fatalf("run %d's report differs from the first:\n%s\nfirst:\n%s", i+2, out, first)
		}
	}
}

// TestAnalyzeCleanupOfLegacyMostrecent: analyze's cleanup estimate
// follows cleanup's rule for mostrecent gauges in the 8-byte layout (kept,
// as mode all), and the cleanup then does what it estimated.
func TestAnalyzeCleanupOfLegacyMostrecent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := filestore.Open(ctx, dir, filestore.Options{Layout: filestore.LayoutLegacy})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []store.ShardID{
		{Kind: store.KindGauge, Mode: "mostrecent", PID: "31001"},
		{Kind: store.KindGauge, Mode: "livemostrecent", PID: "31001"},
		{Kind: store.KindCounter, PID: "31001"},
	} {
		k := storetest.Key(t, "m_"+id.KindName(), "m_"+id.KindName(), nil, "help")
		if err := st.WriteShard(ctx, id, []store.Sample{{Key: k, Value: 4}}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.AgeFiles(t, dir)
	f, out, errOut := testFactory(nil)
	opts := &AnalyzeOptions{IO: f.IO, Format: "json", Now: time.Now,
		Alive: func(string) store.Liveness { return store.AliveNo },
		Store: func(ctx context.Context) (store.Store, error) { return (&StoreFlags{Dir: dir}).Open(ctx, f) }}
	if err := analyzeRun(ctx, opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var r analyze.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if c := r.Cleanup; c.Refused != "" || c.Removed != 0 || c.Compacted != 1 || c.Kept != 2 {
		t.Errorf("estimate %+v; want 1 compacted, 2 kept, none removed", c)
	}
	if code, _, stderr := runCLI(t, nil, "cleanup", "--dir", dir, "--pid", "31001"); code != 0 {
		t.Fatalf("cleanup: exit %d: %s", code, stderr)
	}
	for _, name := range []string{"gauge_mostrecent_31001.db", "gauge_livemostrecent_31001.db", "counter_archive-1.db"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("after the cleanup: %v", err)
		}
	}
}

// TestAnalyzeCleanupRefusal: when cleanup --dead-pids would refuse,
// analyze says so once, in cleanup's words, and words its estimate as
// what cleanup would do if it did not refuse; it refuses exactly when
// cleanup does (not when one of the fresh pids runs).
func TestAnalyzeCleanupRefusal(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	tests := []struct {
		name    string
		running []string
		want    []string // in the text output
		lacks   []string
	}{
		{"a pid of the store runs", []string{"100"},
			[]string{"cleanup --dead-pids would refuse: shards of 2 pid(s) (300, 301)", "pid 100 of this store is", "if it did not refuse, it would remove 2 live* gauge shards"},
			[]string{"cleanup --dead-pids: ", "another pid namespace", "\ncleanup --dead-pids would remove"}},
		{"no pid of the store runs", nil,
			[]string{"cleanup --dead-pids would refuse: shards of 2 pid(s) (300, 301)", "another pid namespace"},
			[]string{"cleanup --dead-pids: ", "\ncleanup --dead-pids would remove"}},
		{"a fresh pid runs", []string{"100", "300"},
			[]string{"\ncleanup --dead-pids would remove 2 live* gauge shards"},
			[]string{"refuse"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := filestore.Open(ctx, dir, filestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ages := map[string]time.Duration{"100": time.Hour, "200": time.Hour, "201": time.Hour, "300": time.Second, "301": time.Second}
			for pid, age := range ages {
				for _, id := range []store.ShardID{{Kind: store.KindCounter, PID: pid}, {Kind: store.KindGauge, Mode: "livesum", PID: pid}} {
					writeAged(t, st, dir, id, now.Add(-age))
				}
			}
			alive := func(p string) store.Liveness {
				for _, r := range tt.running {
					if r == p {
						return store.AliveYes
					}
				}
				return store.AliveNo
			}
			f, out, errOut := testFactory(nil)
			opts := &AnalyzeOptions{IO: f.IO, Format: "table", Now: func() time.Time { return now }, Alive: alive,
				Store: func(ctx context.Context) (store.Store, error) { return (&StoreFlags{Dir: dir}).Open(ctx, f) }}
			if err := analyzeRun(ctx, opts); err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			text := out.String()
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("output lacks %q:\n%s", w, text)
				}
			}
			for _, l := range tt.lacks {
				if strings.Contains(text, l) {
					t.Errorf("output has %q:\n%s", l, text)
				}
			}
			if n := strings.Count(text, "would refuse"); n > 1 {
				t.Errorf("the refusal is said %d times:\n%s", n, text)
			}
			// cleanup refuses in the same words, or not at all.
			cf, _, _ := testFactory(nil)
			cerr := cleanupRun(ctx, &CleanupOptions{IO: cf.IO, Store: func(context.Context) (store.Store, error) { return st, nil },
				Cleanup: cleanup.Options{DeadPIDs: true, DryRun: true, Alive: alive, Now: func() time.Time { return now }}})
			refused := strings.Contains(text, "would refuse")
			switch {
			case refused && (cerr == nil || !strings.Contains(text, strings.TrimPrefix(cerr.Error(), "cleanup of dir "+dir+": refusing --dead-pids: "))):
				t.Errorf("cleanup says %v; analyze:\n%s", cerr, text)
			case !refused && cerr != nil:
				t.Errorf("cleanup refuses (%v), analyze does not", cerr)
			}
		})
	}
}

// TestAnalyzeArchivesAreDead: archive shards (what cleanup compacted)
// hold dead processes' samples: analyze counts them in the dead row, not
// as pids of unknown liveness, and its cleanup estimate folds them as
// cleanup does.
func TestAnalyzeArchivesAreDead(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := filestore.Open(ctx, dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := storetest.Key(t, "jobs", "jobs_total", nil, "Jobs.")
	for _, pid := range []string{"archive-1", "31001", "31002"} {
		if err := st.WriteShard(ctx, store.ShardID{Kind: store.KindCounter, PID: pid}, []store.Sample{{Key: k, Value: 4}}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.AgeFiles(t, dir)
	f, out, errOut := testFactory(nil)
	opts := &AnalyzeOptions{IO: f.IO, Format: "json", Now: time.Now,
		Alive: func(pid string) store.Liveness { // as store.ProcessAlive: a pid that is no number is unknown
			switch pid {
			case "31001":
				return store.AliveYes
			case "31002":
				return store.AliveNo
			}
			return store.AliveUnknown
		},
		Store: func(ctx context.Context) (store.Store, error) { return (&StoreFlags{Dir: dir}).Open(ctx, f) }}
	if err := analyzeRun(ctx, opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var r analyze.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Unknown.Shards != 0 || r.Dead.Shards != 2 || r.Live.Shards != 1 {
		t.Errorf("live %d, dead %d, unknown %d shards; want 1, 2 (the archive and 31002), 0", r.Live.Shards, r.Dead.Shards, r.Unknown.Shards)
	}
	if c := r.Cleanup; c.Compacted != 1 {
		t.Errorf("estimate %+v; want 31002 compacted (the archive folded in, not counted)", c)
	}
}

// TestAnalyzeRedisCleanupBytes: for a Redis store the three sizes are one
// (a key's memory): the cleanup estimate's freed bytes are too, with no
// file-sized archive taken off one of them.
func TestAnalyzeRedisCleanupBytes(t *testing.T) {
	e := newMigrateEnv(t)
	dir := t.TempDir()
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := storetest.Key(t, "jobs", "jobs_total", nil, "Jobs.")
	for range 3 {
		if err := st.WriteShard(context.Background(), store.ShardID{Kind: store.KindCounter, PID: testenv.DeadPID(t)}, []store.Sample{{Key: k, Value: 2}}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.AgeFiles(t, dir)
	if err := e.run(e.opts("file-to-redis", "--dir", dir)); err != nil {
		t.Fatalf("migrate: %v\n%s", err, e.errOut)
	}
	code, out, errOut := runCLI(t, nil, "analyze", "--redis-url", e.srv.URL(), "--local", "-o", "json")
	if code != 0 {
		t.Fatalf("analyze: exit %d: %s", code, errOut)
	}
	var r analyze.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	f := r.Cleanup.Freed
	if r.Cleanup.Compacted != 3 || f.Used <= 0 || f.Allocated != f.Used || f.OnDisk != f.Used {
		t.Errorf("estimate %+v; want 3 compacted and one size freed", r.Cleanup)
	}
}

// TestAnalyzeTopZeroListsEveryFamily: --top 0 asks for everything, so a
// label's families are all listed, not the first three and "and N more".
func TestAnalyzeTopZeroListsEveryFamily(t *testing.T) {
	store := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	_, cut, _ := runCLI(t, nil, "analyze", "--dir", store)
	code, all, errOut := runCLI(t, nil, "analyze", "--dir", store, "--top", "0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(cut, "more") {
		t.Fatalf("the sample store has no label of more than three families: the test checks nothing\n%s", cut)
	}
	for _, l := range strings.Split(all, "\n") {
		if strings.HasPrefix(l, "route ") && (strings.Contains(l, "more") || strings.Count(l, "(") < 4) {
			t.Errorf("--top 0: %q", l)
		}
	}
}

// TestAnalyzeEstimateIsCleanupsPlan: analyze's cleanup estimate is what
// cleanup --dead-pids --dry-run plans for the same store, shard by
// shard: a dead pid one of whose shards changed within --min-idle is
// left whole (cleanup decides by pid, not by shard), and an unreadable
// shard of a dead pid is left alone.
func TestAnalyzeEstimateIsCleanupsPlan(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	dir := t.TempDir()
	st, err := filestore.Open(ctx, dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	write := func(id store.ShardID, age time.Duration) {
		t.Helper()
		writeAged(t, st, dir, id, now.Add(-age))
	}
	counter := func(pid string) store.ShardID { return store.ShardID{Kind: store.KindCounter, PID: pid} }
	gauge := func(mode, pid string) store.ShardID {
		return store.ShardID{Kind: store.KindGauge, Mode: mode, PID: pid}
	}
	write(counter("100"), time.Second) // running, fresh: no refusal
	write(counter("200"), time.Hour)   // dead and idle
	write(gauge("livesum", "200"), time.Hour)
	write(gauge("all", "200"), time.Hour)
	write(counter("300"), time.Hour) // dead, but its other shard is fresh
	write(gauge("livesum", "300"), time.Second)
	// A dead pid's shard that cannot be read.
	bad := filepath.Join(dir, counter("400").String()+".db")
	if err := os.WriteFile(bad, []byte("not a shard at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := now.Add(-time.Hour)
	if err := os.Chtimes(bad, old, old); err != nil {
		t.Fatal(err)
	}
	alive := func(p string) store.Liveness {
		if p == "100" {
			return store.AliveYes
		}
		return store.AliveNo
	}
	f, out, errOut := testFactory(nil)
	if err := analyzeRun(ctx, &AnalyzeOptions{IO: f.IO, Format: "json", Now: func() time.Time { return now }, Alive: alive,
		Store: func(ctx context.Context) (store.Store, error) { return (&StoreFlags{Dir: dir}).Open(ctx, f) }}); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var r analyze.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	cf, cout, cerrOut := testFactory(nil)
	if err := cleanupRun(ctx, &CleanupOptions{IO: cf.IO, JSON: true, Store: func(context.Context) (store.Store, error) { return st, nil },
		Cleanup: cleanup.Options{DeadPIDs: true, DryRun: true, Alive: alive, Now: func() time.Time { return now }}}); err != nil {
		t.Fatalf("cleanup: %v\n%s", err, cerrOut)
	}
	var plan struct{ Summary cleanup.Summary }
	if err := json.Unmarshal(cout.Bytes(), &plan); err != nil {
		t.Fatal(err)
	}
	c, s := r.Cleanup, plan.Summary
	if c.Refused != "" || c.Removed != s.Removed || c.Compacted != s.Compacted || c.Archives != s.Archives {
		t.Errorf("analyze estimates %+v; cleanup plans %+v", c, s)
	}
	if c.Removed != 1 || c.Compacted != 1 || c.Kept != 1 {
		t.Errorf("analyze estimates %+v; want pid 200's shards only: 1 removed, 1 compacted, 1 kept", c)
	}
}

// writeAged writes shard id of the file store st in dir, one sample of a
// family named for its kind, last modified at mt.
func writeAged(t *testing.T, st store.Writer, dir string, id store.ShardID, mt time.Time) {
	t.Helper()
	k := storetest.Key(t, "m_"+id.KindName(), "m_"+id.KindName(), nil, "help")
	if err := st.WriteShard(context.Background(), id, []store.Sample{{Key: k, Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, id.String()+".db"), mt, mt); err != nil {
		t.Fatal(err)
	}
}
