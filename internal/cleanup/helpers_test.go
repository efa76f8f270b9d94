package cleanup

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/storetest"
	"github.com/promstore/promstore/internal/testenv"
)

func key(t testing.TB, family, name string, help string, labels ...string) *store.Key {
	t.Helper()
	var ls []store.Label
	for i := 0; i+1 < len(labels); i += 2 {
		ls = append(ls, store.Label{Name: labels[i], Value: labels[i+1]})
	}
	k, err := store.ParseKey(store.EncodeKey(family, name, ls, help))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// genShards writes one process's shards of every kind and every gauge
// mode the layout supports, with values derived from seed (no NaN).
func genShards(t testing.TB, dir, pid string, layout int, seed float64) {
	t.Helper()
	ctx := context.Background()
	st, err := filestore.Open(ctx, dir, filestore.Options{Layout: layout})
	if err != nil {
		t.Fatal(err)
	}
	write := func(id store.ShardID, ss ...store.Sample) {
		t.Helper()
		id.PID = pid
		if err := st.WriteShard(ctx, id, ss); err != nil {
			t.Fatal(err)
		}
	}
	smp := func(k *store.Key, v, ts float64) store.Sample { return store.Sample{Key: k, Value: v, Timestamp: ts} }
	write(store.ShardID{Kind: store.KindCounter},
		smp(key(t, "req", "req_total", "Requests.", "code", "200"), seed, 0),
		smp(key(t, "req", "req_total", "Requests.", "code", "500"), seed/4, 0),
		smp(key(t, "req", "req_created", "Requests.", "code", "200"), 1.7e9+seed, 0))
	var hs []store.Sample
	for i, le := range []string{"0.1", "1.0", "+Inf"} {
		hs = append(hs, smp(key(t, "lat", "lat_bucket", "Latency.", "le", le, "path", "/"), seed+float64(i), 0))
	}
	hs = append(hs, smp(key(t, "lat", "lat_sum", "Latency.", "path", "/"), seed*0.37, 0))
	write(store.ShardID{Kind: store.KindHistogram}, hs...)
	write(store.ShardID{Kind: store.KindSummary},
		smp(key(t, "pay", "pay_count", "Payload.", "path", "/"), seed, 0),
		smp(key(t, "pay", "pay_sum", "Payload.", "path", "/"), seed*100.5, 0))
	for i, mode := range store.GaugeModes {
		if strings.Contains(mode, "mostrecent") && layout == filestore.LayoutLegacy {
			continue
		}
		k := key(t, "g_"+mode, "g_"+mode, "Gauge "+mode+".", "x", "a")
		k2 := key(t, "g_"+mode, "g_"+mode, "Gauge "+mode+".", "x", "b")
		ts := 1.7e9 + seed*10 + float64(i)
		write(store.ShardID{Kind: store.KindGauge, Mode: mode},
			smp(k, math.Mod(seed*7.3, 11)-5, ts), smp(k2, -seed, ts+1))
	}
}

// dump returns promstore's text exposition of dir.
func dump(t testing.TB, dir string) []byte {
	t.Helper()
	return dumpAs(t, dir, pyclient.Latest)
}

// dumpAs is dump with floats spelled as release client spells them.
func dumpAs(t testing.TB, dir string, client pyclient.Version) []byte {
	t.Helper()
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return storetest.DumpAs(t, st, client)
}

// withoutLiveGauges copies dir without the live* gauge shards of pids:
// what the dump must equal after a cleanup of those pids.
func withoutLiveGauges(t testing.TB, dir string, pids ...string) string {
	t.Helper()
	dst := testenv.CopyStore(t, dir)
	for _, pid := range pids {
		for _, m := range store.GaugeModes {
			if store.IsLiveMode(m) {
				os.Remove(filepath.Join(dst, "gauge_"+m+"_"+pid+".db"))
			}
		}
	}
	return dst
}

// dbFiles returns the *.db file names of dir with their contents.
func dbFiles(t testing.TB, dir string) map[string]string {
	t.Helper()
	return testenv.DBFiles(t, dir)
}

func names(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// compareDumps compares two expositions semantically. Where a min/max
// gauge sample differs and one side is NaN, it is the documented
// first-seen edge (see the package doc) and only counted, when nanEdge.
func compareDumps(t testing.TB, got, want []byte, nanEdge bool) int {
	t.Helper()
	g, err := testenv.ParseExposition(got)
	if err != nil {
		t.Fatalf("parse got: %v", err)
	}
	w, err := testenv.ParseExposition(want)
	if err != nil {
		t.Fatalf("parse want: %v", err)
	}
	d := testenv.DiffExpositions(g, w)
	edges := 0
	if nanEdge {
		var kept []string
		for _, c := range d.ChangedSamples {
			// "<key> <got>, want <want>" of a g_min/g_max-like family.
			name := c[:strings.IndexAny(c, "{ ")]
			isMinMax := strings.Contains(name, "min") || strings.Contains(name, "max")
			if isMinMax && strings.Contains(c, "NaN") {
				edges++
				continue
			}
			if overflowEdge(c) {
				// A sum of values near the float range (pystore.py writes
				// 1e308 and -Inf): +Inf + -Inf met in one order, -Inf
				// alone in the other (see the package doc).
				edges++
				continue
			}
			kept = append(kept, c)
		}
		d.ChangedSamples = kept
	}
	if !d.Empty() {
		t.Errorf("expositions differ:\n%s", d)
	}
	return edges
}

// overflowEdge tells whether a changed sample ("<key> <got>, want
// <want>") has NaN on one side and an infinity on the other.
func overflowEdge(c string) bool {
	i := strings.LastIndex(c, ", want ")
	if i < 0 {
		return false
	}
	j := strings.LastIndexByte(c[:i], ' ')
	got, want := c[j+1:i], c[i+len(", want "):]
	inf := func(v string) bool { return v == "+Inf" || v == "-Inf" }
	return (got == "NaN" && inf(want)) || (inf(got) && want == "NaN")
}

// runCleanup runs a cleanup of dir with opts and fails the test on error.
func runCleanup(t testing.TB, dir string, opts Options) *Result {
	t.Helper()
	ctx := context.Background()
	st, err := filestore.Open(ctx, dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(ctx, FileTarget(st), opts)
	if err != nil {
		t.Fatalf("cleanup %s: %v", dir, err)
	}
	return res
}

func shardInfos(t testing.TB, dir string) map[string]store.ShardInfo {
	t.Helper()
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	infos, err := st.Shards(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.ShardInfo{}
	for _, in := range infos {
		out[in.ID.String()] = in
	}
	return out
}

func TestOverflowEdge(t *testing.T) {
	for c, want := range map[string]bool{
		`app_gauge_sum{tag="cr\rret"} NaN, want -Inf`: true,
		`app_gauge_sum{tag="a, b"} +Inf, want NaN`:    true,
		`app_gauge_sum{tag="x"} NaN, want 1e+308`:     false,
		`app_gauge_sum{tag="x"} +Inf, want -Inf`:      false,
		`app_gauge_sum{tag="x"} 3, want 4`:            false,
	} {
		if got := overflowEdge(c); got != want {
			t.Errorf("overflowEdge(%q) = %v, want %v", c, got, want)
		}
	}
}
