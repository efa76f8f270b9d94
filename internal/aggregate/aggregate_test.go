package aggregate

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/store"
)

type in struct {
	pid    string
	labels []store.Label
	name   string
	value  float64
	ts     float64
}

func key(t *testing.T, family, name string, labels []store.Label) *store.Key {
	t.Helper()
	k, err := store.ParseKey(store.EncodeKey(family, name, labels, "help"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func run(t *testing.T, kind store.Kind, mode string, samples []in) Family {
	t.Helper()
	a := New()
	for _, s := range samples {
		name := s.name
		if name == "" {
			name = "m"
		}
		k := key(t, "m", name, s.labels)
		_ = a.Add(store.Sample{Shard: store.ShardID{Kind: kind, Mode: mode, PID: s.pid}, Key: k, Value: s.value, Timestamp: s.ts})
	}
	fams := a.Families()
	if len(fams) != 1 {
		t.Fatalf("got %d families, want 1", len(fams))
	}
	return fams[0]
}

func same(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b))
}

func TestGaugeModes(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		mode    string
		samples []in
		want    []float64 // values in output order; nil = no sample
	}{
		{"min", []in{{pid: "1", value: 3}, {pid: "2", value: -1}, {pid: "3", value: 2}}, []float64{-1}},
		{"livemin", []in{{pid: "1", value: 3}, {pid: "2", value: nan}, {pid: "3", value: 2}}, []float64{2}},
		{"min", []in{{pid: "1", value: nan}, {pid: "2", value: -5}}, []float64{nan}},
		{"max", []in{{pid: "1", value: 3}, {pid: "2", value: 7}, {pid: "3", value: math.Inf(1)}}, []float64{math.Inf(1)}},
		{"livemax", []in{{pid: "1", value: nan}, {pid: "2", value: 7}}, []float64{nan}},
		{"max", []in{{pid: "1", value: 1}, {pid: "2", value: nan}, {pid: "3", value: 0.5}}, []float64{1}},
		{"sum", []in{{pid: "1", value: 1.5}, {pid: "2", value: 2}}, []float64{3.5}},
		{"livesum", []in{{pid: "1", value: math.Inf(1)}, {pid: "2", value: math.Inf(-1)}}, []float64{nan}},
		{"mostrecent", []in{{pid: "1", value: 1, ts: 10}, {pid: "2", value: 2, ts: 30}, {pid: "3", value: 3, ts: 20}}, []float64{2}},
		{"mostrecent", []in{{pid: "1", value: 1, ts: 10}, {pid: "2", value: 2, ts: 10}}, []float64{1}}, // ties keep the first
		{"livemostrecent", []in{{pid: "1", value: 1}, {pid: "2", value: 2}}, nil},                      // never set
		{"all", []in{{pid: "10", value: 1}, {pid: "9", value: 2}}, []float64{2, 1}},                    // sorted by pid numerically
		{"liveall", []in{{pid: "1", value: 1}, {pid: "1", value: 5}}, []float64{5}},                    // last wins
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			f := run(t, store.KindGauge, tt.mode, tt.samples)
			if f.Type != store.KindGauge || f.Mode != tt.mode {
				t.Fatalf("family %+v", f)
			}
			if len(f.Samples) != len(tt.want) {
				t.Fatalf("got %d samples %+v, want %v", len(f.Samples), f.Samples, tt.want)
			}
			for i, w := range tt.want {
				if !same(f.Samples[i].Value, w) {
					t.Errorf("sample %d = %v, want %v", i, f.Samples[i].Value, w)
				}
				hasPid := len(f.Samples[i].Labels) == 1 && f.Samples[i].Labels[0].Name == "pid"
				if hasPid != (tt.mode == "all" || tt.mode == "liveall") {
					t.Errorf("sample %d labels %v", i, f.Samples[i].Labels)
				}
			}
		})
	}
}

func TestCounterSumsAcrossProcesses(t *testing.T) {
	l := []store.Label{{Name: "b", Value: "2"}, {Name: "a", Value: "1"}}
	f := run(t, store.KindCounter, "", []in{
		{pid: "1", name: "m_total", labels: l, value: 1},
		{pid: "2", name: "m_total", labels: l, value: 2.5},
		{pid: "2", name: "m_total", value: 4},
	})
	if len(f.Samples) != 2 {
		t.Fatalf("samples %+v", f.Samples)
	}
	// Unlabelled sorts first; labels come out sorted by name.
	if f.Samples[0].Value != 4 || f.Samples[1].Value != 3.5 || f.Samples[1].Labels[0].Name != "a" {
		t.Fatalf("samples %+v", f.Samples)
	}
}

func TestHistogramCumulative(t *testing.T) {
	b := func(le string) []store.Label { return []store.Label{{Name: "le", Value: le}, {Name: "r", Value: "x"}} }
	f := run(t, store.KindHistogram, "", []in{
		{pid: "1", name: "m_bucket", labels: b("1.0"), value: 1},
		{pid: "1", name: "m_bucket", labels: b("+Inf"), value: 1},
		{pid: "1", name: "m_bucket", labels: b("0.5"), value: 2},
		{pid: "2", name: "m_bucket", labels: b("1000000.0"), value: 3},
		{pid: "1", name: "m_sum", labels: []store.Label{{Name: "r", Value: "x"}}, value: 1.5},
		{pid: "2", name: "m_sum", labels: []store.Label{{Name: "r", Value: "x"}}, value: 2},
	})
	want := []struct {
		name, le string
		v        float64
	}{
		{"m_bucket", "0.5", 2}, {"m_bucket", "1.0", 3}, {"m_bucket", "1e+06", 6}, {"m_bucket", "+Inf", 7},
		{"m_count", "", 7}, {"m_sum", "", 3.5},
	}
	if len(f.Samples) != len(want) {
		t.Fatalf("samples %+v", f.Samples)
	}
	for i, w := range want {
		s := f.Samples[i]
		le := ""
		for _, l := range s.Labels {
			if l.Name == "le" {
				le = l.Value
			}
		}
		if s.Name != w.name || le != w.le || s.Value != w.v {
			t.Errorf("sample %d = %s le=%q %v, want %s le=%q %v", i, s.Name, le, s.Value, w.name, w.le, w.v)
		}
	}
}

// TestHistogramOddBounds: a bucket bound of NaN (it parses as a float, as
// in Python) made the aggregator crash; now the NaN bounds of all
// processes are one bucket, last; -0.0 and 0.0 are one bound.
func TestHistogramOddBounds(t *testing.T) {
	b := func(le string) []store.Label { return []store.Label{{Name: "le", Value: le}} }
	f := run(t, store.KindHistogram, "", []in{
		{pid: "1", name: "m_bucket", labels: b("NaN"), value: 1},
		{pid: "1", name: "m_bucket", labels: b("1.0"), value: 2},
		{pid: "2", name: "m_bucket", labels: b("nan"), value: 4},
		{pid: "2", name: "m_bucket", labels: b("+Inf"), value: 8},
		{pid: "2", name: "m_bucket", labels: b("-0.0"), value: 16},
		{pid: "3", name: "m_bucket", labels: b("0.0"), value: 32},
	})
	var got []string
	for _, s := range f.Samples {
		got = append(got, fmt.Sprintf("%s%v %v", s.Name, s.Labels, s.Value))
	}
	want := []string{"m_bucket[{le -0.0}] 48", "m_bucket[{le 1.0}] 50", "m_bucket[{le +Inf}] 58", "m_bucket[{le NaN}] 63", "m_count[] 63"}
	if !slices.Equal(got, want) {
		t.Errorf("samples\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestHelpAndTypeFromFirstSeen(t *testing.T) {
	a := New()
	k1, _ := store.ParseKey(store.EncodeKey("m", "m_total", nil, "first"))
	k2, _ := store.ParseKey(store.EncodeKey("m", "m_total", nil, "second"))
	_ = a.Add(store.Sample{Shard: store.ShardID{Kind: store.KindCounter, PID: "1"}, Key: k1, Value: 1})
	_ = a.Add(store.Sample{Shard: store.ShardID{Kind: store.KindCounter, PID: "2"}, Key: k2, Value: 2})
	f := a.Families()
	if len(f) != 1 || f[0].Help != "first" || len(f[0].Samples) != 1 || f[0].Samples[0].Value != 3 {
		t.Fatalf("families %+v", f)
	}
}

func BenchmarkAdd(b *testing.B) {
	a := New()
	keys := make([]*store.Key, 2000)
	for i := range keys {
		keys[i], _ = store.ParseKey(store.EncodeKey("m", "m_total", []store.Label{{Name: "route", Value: "/r/" + string(rune('a'+i%26)) + store.PyRepr(float64(i))}}, "h"))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = a.Add(store.Sample{Shard: store.ShardID{Kind: store.KindCounter, PID: "1"}, Key: keys[i%len(keys)], Value: 1})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

// TestFamiliesOrderIsSortSamplesOrder builds families with every kind of
// group (plain series, histograms, per-pid gauges, label sets that are
// prefixes of others) and checks that Families emits samples in exactly
// the order SortSamples gives.
func TestFamiliesOrderIsSortSamplesOrder(t *testing.T) {
	a := New()
	add := func(kind store.Kind, mode, pid, family, name string, labels []store.Label, v float64) {
		k := key(t, family, name, labels)
		_ = a.Add(store.Sample{Shard: store.ShardID{Kind: kind, Mode: mode, PID: pid}, Key: k, Value: v, Timestamp: 1})
	}
	routes := []string{"/b", "/a", "/a/b", "", "/10", "/9"}
	for i, pid := range []string{"10", "9", "x", "100"} {
		for j, r := range routes {
			l := []store.Label{{Name: "route", Value: r}}
			l2 := []store.Label{{Name: "route", Value: r}, {Name: "code", Value: "200"}}
			add(store.KindCounter, "", pid, "c", "c_total", l, float64(i+j))
			add(store.KindCounter, "", pid, "c", "c_total", l2, 1)
			add(store.KindSummary, "", pid, "s", "s_sum", l, 1)
			add(store.KindSummary, "", pid, "s", "s_count", l, 1)
			add(store.KindGauge, "all", pid, "g", "g", l, float64(j))
			add(store.KindGauge, "max", pid, "m", "m", l2, float64(i))
			for _, le := range []string{"0.5", "10.0", "+Inf", "2.5", "1e-05"} {
				add(store.KindHistogram, "", pid, "h", "h_bucket", append([]store.Label{{Name: "le", Value: le}}, l...), 1)
			}
			add(store.KindHistogram, "", pid, "h", "h_sum", l, 0.5)
		}
	}
	for _, f := range a.Families() {
		got := append([]Sample(nil), f.Samples...)
		want := append([]Sample(nil), f.Samples...)
		SortSamples(want)
		if len(got) == 0 {
			t.Fatalf("family %s has no samples", f.Name)
		}
		for i := range got {
			if got[i].Name != want[i].Name || labelIDOf("", "", got[i].Labels, -1) != labelIDOf("", "", want[i].Labels, -1) {
				t.Fatalf("family %s sample %d = %s%v, SortSamples puts %s%v there", f.Name, i, got[i].Name, got[i].Labels, want[i].Name, want[i].Labels)
			}
		}
		if f.Name == "h" {
			// Buckets, _count, _sum of one series together, _count = +Inf.
			if got[5].Name != "h_count" || got[4].Value != got[5].Value || got[6].Name != "h_sum" {
				t.Fatalf("histogram order %v", got[:7])
			}
		}
	}
}

// TestAddShardMatchesAdd: keys with reader IDs, added a shard at once
// (the fast path for keys seen before), aggregate exactly as keys without
// IDs added one by one, for every kind and gauge mode, over several
// shards per process so that every key is met again.
func TestAddShardMatchesAdd(t *testing.T) {
	type shard struct {
		id      store.ShardID
		entries []store.Entry
	}
	modes := []string{"all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent", "livemostrecent"}
	var shardsNoID, shardsID []shard
	var nextID uint32
	mk := func(family, name string, labels []store.Label) (*store.Key, *store.Key) {
		a, b := key(t, family, name, labels), key(t, family, name, labels)
		nextID++
		b.ID = nextID
		return a, b
	}
	type kk struct{ plain, withID *store.Key }
	var keys []struct {
		kind store.Kind
		mode string
		ks   []kk
	}
	add := func(kind store.Kind, mode, family string, names []string, labelSets [][]store.Label) {
		var ks []kk
		for _, n := range names {
			for _, ls := range labelSets {
				p, w := mk(family, n, ls)
				ks = append(ks, kk{p, w})
			}
		}
		keys = append(keys, struct {
			kind store.Kind
			mode string
			ks   []kk
		}{kind, mode, ks})
	}
	routes := [][]store.Label{{{Name: "route", Value: "/a"}}, {{Name: "route", Value: "/b"}}}
	add(store.KindCounter, "", "c", []string{"c_total", "c_created"}, routes)
	add(store.KindSummary, "", "s", []string{"s_count", "s_sum"}, routes)
	var buckets [][]store.Label
	for _, le := range []string{"0.1", "1.0", "+Inf"} {
		buckets = append(buckets, []store.Label{{Name: "le", Value: le}, {Name: "route", Value: "/a"}})
	}
	add(store.KindHistogram, "", "h", []string{"h_bucket"}, buckets)
	add(store.KindHistogram, "", "h", []string{"h_count", "h_sum"}, routes)
	for _, m := range modes {
		add(store.KindGauge, m, "g_"+m, []string{"g_" + m}, routes)
	}
	for round := 0; round < 3; round++ {
		for pid := 1; pid <= 4; pid++ {
			for gi, g := range keys {
				id := store.ShardID{Kind: g.kind, Mode: g.mode, PID: strconv.Itoa(pid)}
				var a, b []store.Entry
				for ki, k := range g.ks {
					v := float64(round*100+pid*10+ki) + 0.1*float64(gi)
					if (pid+ki+round)%7 == 3 {
						v = math.NaN()
					}
					ts := float64(round*10 + pid)
					a = append(a, store.Entry{Key: k.plain, Value: v, Timestamp: ts})
					b = append(b, store.Entry{Key: k.withID, Value: v, Timestamp: ts})
				}
				shardsNoID = append(shardsNoID, shard{id, a})
				shardsID = append(shardsID, shard{id, b})
			}
		}
	}
	one, batch := New(), New()
	for _, sh := range shardsNoID {
		for _, e := range sh.entries {
			_ = one.Add(store.Sample{Shard: sh.id, Key: e.Key, Value: e.Value, Timestamp: e.Timestamp})
		}
	}
	// An aggregator keeping each sample's processes merges the same.
	kept := New()
	kept.KeepProcesses(2)
	for _, sh := range shardsID {
		_ = batch.AddShard(sh.id, sh.entries)
		_ = kept.AddShard(sh.id, sh.entries)
	}
	want := one.Families()
	for _, got := range [][]Family{batch.Families(), kept.Families()} {
		sameFamilies(t, got, want)
	}
	for _, f := range kept.Families() {
		for _, s := range f.Samples {
			if s.Procs == nil || len(s.Procs.Contrib) == 0 || len(s.Procs.Contrib) > 2 {
				t.Errorf("%s%v: breakdown %+v, want 1 or 2 processes", s.Name, s.Labels, s.Procs)
			}
		}
	}
}

// sameFamilies fails t unless got has want's families and samples, with
// values equal to the bit.
func sameFamilies(t *testing.T, got, want []Family) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d families, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.Name != w.Name || g.Type != w.Type || g.Mode != w.Mode || len(g.Samples) != len(w.Samples) {
			t.Fatalf("family %d = %s %s %s with %d samples, want %s %s %s with %d", i, g.Name, g.Type, g.Mode, len(g.Samples), w.Name, w.Type, w.Mode, len(w.Samples))
		}
		for j := range w.Samples {
			ws, gs := w.Samples[j], g.Samples[j]
			if gs.Name != ws.Name || !slices.Equal(gs.Labels, ws.Labels) || math.Float64bits(gs.Value) != math.Float64bits(ws.Value) && !(math.IsNaN(gs.Value) && math.IsNaN(ws.Value)) {
				t.Errorf("%s sample %d = %v, want %v", w.Name, j, gs, ws)
			}
		}
	}
}

// TestKeysOfTwoReaders: keys of two readers may share IDs (each numbers
// its own keys) and texts (each parses its own pointer); samples are
// merged by text whatever the IDs and pointers.
func TestKeysOfTwoReaders(t *testing.T) {
	a := New()
	id := store.ShardID{Kind: store.KindCounter, PID: "1"}
	// Reader 1: x has ID 1, y has ID 2. Reader 2: y has ID 1, x has ID 2.
	x1, y1 := key(t, "x", "x_total", nil), key(t, "y", "y_total", nil)
	y2, x2 := key(t, "y", "y_total", nil), key(t, "x", "x_total", nil)
	x1.ID, y1.ID, y2.ID, x2.ID = 1, 2, 1, 2
	for round := 0; round < 3; round++ {
		_ = a.AddShard(id, []store.Entry{{Key: x1, Value: 1}, {Key: y1, Value: 10}})
		_ = a.AddShard(id, []store.Entry{{Key: y2, Value: 100}, {Key: x2, Value: 1000}})
	}
	fams := a.Families()
	if len(fams) != 2 || fams[0].Samples[0].Value != 3*1001 || fams[1].Samples[0].Value != 3*110 {
		t.Fatalf("families %+v", fams)
	}
}

// TestAddShardManyNewKeys: shards that bring thousands of new keys (whose
// preps are computed ahead on every core) aggregate exactly as samples
// added one by one.
func TestAddShardManyNewKeys(t *testing.T) {
	type kk struct{ plain, withID *store.Key }
	var hist, ctr []kk
	id := uint32(0)
	mk := func(family, name string, labels []store.Label) kk {
		id++
		p, w := key(t, family, name, labels), key(t, family, name, labels)
		w.ID = id
		return kk{p, w}
	}
	for r := 0; r < 400; r++ {
		route := store.Label{Name: "route", Value: "/r/" + strconv.Itoa(r)}
		for _, le := range []string{"0.005", "0.1", "1.0", "bad", "+Inf"} {
			hist = append(hist, mk("h", "h_bucket", []store.Label{{Name: "le", Value: le}, route}))
		}
		hist = append(hist, mk("h", "h_count", []store.Label{route}), mk("h", "h_sum", []store.Label{route}))
		// Labels out of order, as a hand-made key could hold them.
		ctr = append(ctr, mk("c", "c_total", []store.Label{{Name: "z", Value: "1"}, route}))
	}
	one, batch := New(), New()
	for pid := 1; pid <= 3; pid++ {
		for _, shard := range []struct {
			kind store.Kind
			keys []kk
		}{{store.KindHistogram, hist}, {store.KindCounter, ctr}} {
			sid := store.ShardID{Kind: shard.kind, PID: strconv.Itoa(pid)}
			var entries []store.Entry
			for i, k := range shard.keys {
				v := float64(pid*1000+i) / 7
				_ = one.Add(store.Sample{Shard: sid, Key: k.plain, Value: v})
				entries = append(entries, store.Entry{Key: k.withID, KeyID: k.withID.ID, Value: v})
			}
			_ = batch.AddShard(sid, entries)
		}
	}
	want, got := one.Families(), batch.Families()
	if len(got) != len(want) {
		t.Fatalf("%d families, want %d", len(got), len(want))
	}
	for i := range want {
		if len(got[i].Samples) != len(want[i].Samples) {
			t.Fatalf("%s: %d samples, want %d", want[i].Name, len(got[i].Samples), len(want[i].Samples))
		}
		for j, ws := range want[i].Samples {
			gs := got[i].Samples[j]
			if gs.Name != ws.Name || !slices.Equal(gs.Labels, ws.Labels) || gs.Value != ws.Value {
				t.Fatalf("%s sample %d = %v, want %v", want[i].Name, j, gs, ws)
			}
		}
	}
	if n := len(want[1].Samples); n != 400*(5+2) {
		t.Errorf("histogram has %d samples, want %d", n, 400*7)
	}
}

// BenchmarkAddShardNewKeys measures the first shard of a store: 2,000
// histogram series of 14 buckets plus count and sum, every key new to a
// fresh aggregator.
func BenchmarkAddShardNewKeys(b *testing.B) {
	var entries []store.Entry
	id := uint32(0)
	for r := 0; r < 2000; r++ {
		route := store.Label{Name: "route", Value: "/api/v2/organisations/<org_id>/projects/<project_id>/environments/" + strconv.Itoa(r)}
		method := store.Label{Name: "method", Value: "GET"}
		var names []string
		var labelSets [][]store.Label
		for _, le := range []string{"0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0", "2.5", "5.0", "7.5", "10.0", "+Inf"} {
			names = append(names, "lat_bucket")
			labelSets = append(labelSets, []store.Label{{Name: "le", Value: le}, method, route})
		}
		names = append(names, "lat_count", "lat_sum")
		labelSets = append(labelSets, []store.Label{method, route}, []store.Label{method, route})
		for i, n := range names {
			k, err := store.ParseKey(store.EncodeKey("lat", n, labelSets[i], "Request latency."))
			if err != nil {
				b.Fatal(err)
			}
			id++
			k.ID = id
			entries = append(entries, store.Entry{Key: k, KeyID: id, Value: float64(i)})
		}
	}
	sid := store.ShardID{Kind: store.KindHistogram, PID: "1"}
	b.ReportAllocs()
	for b.Loop() {
		a := New()
		_ = a.AddShard(sid, entries)
	}
	b.ReportMetric(float64(len(entries))*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
}
