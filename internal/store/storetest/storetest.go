// Package storetest is the contract every store backend passes: samples
// written through its Writer read back identical through its Reader, and
// aggregate to the same families whatever the backend.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/render"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

// Run runs the contract suite. open must return a new, empty store for
// each call (the suite calls it once per subtest) and close it when t ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, open(t)) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, open(t)) })
	t.Run("Deterministic", func(t *testing.T) { testDeterministic(t, open(t)) })
	t.Run("Idempotent", func(t *testing.T) { testIdempotent(t, open(t)) })
	t.Run("Upsert", func(t *testing.T) { testUpsert(t, open(t)) })
	t.Run("DeleteShard", func(t *testing.T) { testDeleteShard(t, open(t)) })
	t.Run("Shards", func(t *testing.T) { testShards(t, open(t)) })
	t.Run("Aggregate", func(t *testing.T) { testAggregate(t, open(t)) })
	t.Run("StopEarly", func(t *testing.T) { testStopEarly(t, open(t)) })
}

// TrickyValues are label values and help texts that stress key codecs.
var TrickyValues = []string{
	"plain", "", `say "hi"`, `back\slash`, `trailing\`, "new\nline", "tab\there",
	"cr\rret", "café 日本", "🚀 astral", "ls\u2028sep", "del\x7fchar", "{a=\"b\",c=d}",
	strings.Repeat("L", 300),
}

// Key builds the key Python would write for a sample.
func Key(t testing.TB, family, name string, labels []store.Label, help string) *store.Key {
	t.Helper()
	k, err := store.ParseKey(store.EncodeKey(family, name, labels, help))
	if err != nil {
		t.Fatalf("key %s: %v", name, err)
	}
	return k
}

// RejectedNames are counter samples whose names Prometheus rejects
// once escaped as Python writes them: families "a b" and "a_b" (one name
// on the wire, two # HELP blocks) and labels "r-" and "r_" (one series
// twice).
func RejectedNames(t testing.TB) []store.Sample {
	t.Helper()
	return []store.Sample{
		{Key: Key(t, "a b", "a b_total", nil, "A."), Value: 1},
		{Key: Key(t, "a_b", "a_b_total", nil, "A."), Value: 1},
		{Key: Key(t, "r", "r_total", []store.Label{{Name: "r-", Value: "1"}}, "R."), Value: 1},
		{Key: Key(t, "r", "r_total", []store.Label{{Name: "r_", Value: "1"}}, "R."), Value: 1},
	}
}

// LegacyKey builds a 3-element key as prometheus_client < 0.16 wrote it.
func LegacyKey(t testing.TB, family, name string, labels []store.Label) *store.Key {
	t.Helper()
	text := store.EncodeKey(family, name, labels, "")
	// Drop the help element: `[f, n, {...}, ""]` -> `[f, n, {...}]`.
	text = strings.TrimSuffix(text, `, ""]`) + "]"
	k, err := store.ParseKey(text)
	if err != nil || !k.Legacy {
		t.Fatalf("legacy key %s: %v (legacy=%v)", text, err, k != nil && k.Legacy)
	}
	return k
}

// specialValues are values whose bits must survive a round trip.
var specialValues = []float64{
	0, 1, -1, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1),
	1e308, 5e-324, 0.1, 1732550000.123456, -2.5e-7, 123456789012345678,
}

// Shard is one shard's samples as the suite writes them.
type Shard struct {
	ID      store.ShardID
	Samples []store.Sample
}

// Fixture returns shards of every kind and gauge mode over two pids, with
// tricky keys (quotes, backslashes, newlines, non-ASCII, astral, a legacy
// 3-element key) and special values (NaN, ±Inf, -0.0, 1e308, 5e-324).
func Fixture(t testing.TB) []Shard {
	t.Helper()
	help := `Help with "quotes", back\slash, new` + "\n" + `line, café 🚀 and \`
	var out []Shard
	ids := []store.ShardID{{Kind: store.KindCounter}, {Kind: store.KindHistogram}, {Kind: store.KindSummary}}
	for _, m := range store.GaugeModes {
		ids = append(ids, store.ShardID{Kind: store.KindGauge, Mode: m})
	}
	for p, pid := range []string{"4100", "4101"} {
		for _, base := range ids {
			id := base
			id.PID = pid
			var ss []store.Sample
			add := func(k *store.Key, v, ts float64) {
				ss = append(ss, store.Sample{Shard: id, Key: k, Value: v, Timestamp: ts})
			}
			switch id.Kind {
			case store.KindCounter:
				for i, tv := range TrickyValues {
					k := Key(t, "c_requests", "c_requests_total", []store.Label{{Name: "tag", Value: tv}, {Name: "code", Value: "200"}}, help)
					add(k, float64(i+1)*1.5+float64(p), 0)
				}
				add(Key(t, "c_nolabels", "c_nolabels_total", nil, ""), 7, 0)
				add(LegacyKey(t, "c_legacy", "c_legacy_total", []store.Label{{Name: "a", Value: "b\"\\\n"}}), 3, 0)
			case store.KindHistogram:
				for _, tv := range TrickyValues[:4] {
					for i, le := range []string{"0.005", "0.5", "1.0", "1e+21", "+Inf"} {
						k := Key(t, "h_latency", "h_latency_bucket", []store.Label{{Name: "le", Value: le}, {Name: "tag", Value: tv}}, help)
						add(k, float64(i+p), 0)
					}
					add(Key(t, "h_latency", "h_latency_sum", []store.Label{{Name: "tag", Value: tv}}, help), 12.75+float64(p), 0)
				}
			case store.KindSummary:
				for _, tv := range TrickyValues[4:8] {
					add(Key(t, "s_size", "s_size_count", []store.Label{{Name: "tag", Value: tv}}, help), 4+float64(p), 0)
					add(Key(t, "s_size", "s_size_sum", []store.Label{{Name: "tag", Value: tv}}, help), 1e-3*float64(p+1), 0)
				}
			case store.KindGauge:
				fam := "g_" + id.Mode
				for i, v := range specialValues {
					tv := TrickyValues[i%len(TrickyValues)]
					k := Key(t, fam, fam, []store.Label{{Name: "i", Value: fmt.Sprint(i)}, {Name: "tag", Value: tv}}, help)
					ts := 0.0
					if strings.HasSuffix(id.Mode, "mostrecent") {
						ts = 1732550000.25 + float64(i) + float64(p)*0.5
					}
					add(k, v, ts)
				}
			}
			out = append(out, Shard{ID: id, Samples: ss})
		}
	}
	return out
}

func writeAll(t testing.TB, s store.Store, shards []Shard) {
	t.Helper()
	for _, sh := range shards {
		if err := s.WriteShard(context.Background(), sh.ID, sh.Samples); err != nil {
			t.Fatalf("write shard %s: %v", sh.ID, err)
		}
	}
}

// ScanAll returns every sample a store holds, failing on any error
// (partial ones too).
func ScanAll(t testing.TB, s store.Store) []store.Sample {
	t.Helper()
	var out []store.Sample
	if err := s.Scan(context.Background(), func(smp store.Sample) error {
		out = append(out, smp)
		return nil
	}); err != nil {
		t.Fatalf("scan %s: %v", s.Describe(), err)
	}
	return out
}

// sampleID identifies a sample regardless of backend.
func sampleID(s store.Sample) string {
	return s.Shard.String() + "\x00" + store.CanonicalKeyText(s.Key)
}

// sameValue compares float bits, any NaN equal to any NaN.
func sameValue(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Float64bits(a) == math.Float64bits(b)
}

// CompareSamples fails t unless got and want hold the same samples (same
// shard, canonical key text, value bits and timestamp), in any order.
func CompareSamples(t testing.TB, got, want []store.Sample) {
	t.Helper()
	index := func(ss []store.Sample, what string) map[string]store.Sample {
		m := make(map[string]store.Sample, len(ss))
		for _, s := range ss {
			id := sampleID(s)
			if _, dup := m[id]; dup {
				t.Errorf("%s: sample %q twice", what, id)
			}
			m[id] = s
		}
		return m
	}
	g, w := index(got, "got"), index(want, "want")
	bad := 0
	for id, ws := range w {
		gs, ok := g[id]
		switch {
		case !ok:
			t.Errorf("missing sample %q", id)
		case gs.Shard != ws.Shard:
			t.Errorf("sample %q: shard %+v, want %+v", id, gs.Shard, ws.Shard)
		case !sameValue(gs.Value, ws.Value):
			t.Errorf("sample %q: value %v (%#x), want %v (%#x)", id, gs.Value, math.Float64bits(gs.Value), ws.Value, math.Float64bits(ws.Value))
		case !sameValue(gs.Timestamp, ws.Timestamp):
			t.Errorf("sample %q: timestamp %v, want %v", id, gs.Timestamp, ws.Timestamp)
		case gs.Key.Family != ws.Key.Family || gs.Key.Name != ws.Key.Name || gs.Key.Help != ws.Key.Help || !sameLabels(gs.Key.Labels, ws.Key.Labels):
			t.Errorf("sample %q: key %+v, want %+v", id, *gs.Key, *ws.Key)
		default:
			continue
		}
		if bad++; bad > 20 {
			t.Fatalf("too many differences")
		}
	}
	for id := range g {
		if _, ok := w[id]; !ok {
			t.Errorf("extra sample %q", id)
		}
	}
}

func sameLabels(a, b []store.Label) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func allSamples(shards []Shard) []store.Sample {
	var out []store.Sample
	for _, sh := range shards {
		out = append(out, sh.Samples...)
	}
	return out
}

func testEmpty(t *testing.T, s store.Store) {
	if got := ScanAll(t, s); len(got) != 0 {
		t.Errorf("empty store scanned %d samples", len(got))
	}
	infos, err := s.Shards(context.Background())
	if err != nil {
		t.Fatalf("shards of empty store: %v", err)
	}
	if len(infos) != 0 {
		t.Errorf("empty store lists %d shards", len(infos))
	}
	if d := s.Describe(); d == "" {
		t.Errorf("Describe is empty")
	}
}

func testRoundTrip(t *testing.T, s store.Store) {
	shards := Fixture(t)
	writeAll(t, s, shards)
	got := ScanAll(t, s)
	CompareSamples(t, got, allSamples(shards))
	// Each shard's samples come together.
	seen := map[store.ShardID]bool{}
	for i, smp := range got {
		if i > 0 && got[i-1].Shard == smp.Shard {
			continue
		}
		if seen[smp.Shard] {
			t.Errorf("shard %s scanned in more than one run", smp.Shard)
		}
		seen[smp.Shard] = true
	}
}

func testDeterministic(t *testing.T, s store.Store) {
	writeAll(t, s, Fixture(t))
	render := func() string {
		var b strings.Builder
		for _, smp := range ScanAll(t, s) {
			fmt.Fprintf(&b, "%s %s %x %x\n", smp.Shard, smp.Key.Text, math.Float64bits(smp.Value), math.Float64bits(smp.Timestamp))
		}
		return b.String()
	}
	a, b := render(), render()
	if a != b {
		t.Errorf("two scans of one store differ")
	}
}

func testIdempotent(t *testing.T, s store.Store) {
	shards := Fixture(t)
	writeAll(t, s, shards)
	writeAll(t, s, shards)
	CompareSamples(t, ScanAll(t, s), allSamples(shards))
}

func testUpsert(t *testing.T, s store.Store) {
	id := store.ShardID{Kind: store.KindGauge, Mode: "livesum", PID: "77"}
	ka := Key(t, "g_up", "g_up", []store.Label{{Name: "k", Value: "a"}}, "up")
	kb := Key(t, "g_up", "g_up", []store.Label{{Name: "k", Value: "b"}}, "up")
	kc := Key(t, "g_up", "g_up", []store.Label{{Name: "k", Value: "c"}}, "up")
	smp := func(k *store.Key, v float64) store.Sample { return store.Sample{Shard: id, Key: k, Value: v} }
	ctx := context.Background()
	if err := s.WriteShard(ctx, id, []store.Sample{smp(ka, 1), smp(kb, 2)}); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteShard(ctx, id, []store.Sample{smp(ka, 10), smp(kc, 3)}); err != nil {
		t.Fatal(err)
	}
	CompareSamples(t, ScanAll(t, s), []store.Sample{smp(ka, 10), smp(kb, 2), smp(kc, 3)})
}

func testDeleteShard(t *testing.T, s store.Store) {
	shards := Fixture(t)
	writeAll(t, s, shards)
	ctx := context.Background()
	gone := map[store.ShardID]bool{}
	for _, i := range []int{0, 5, len(shards) - 1} {
		if err := s.DeleteShard(ctx, shards[i].ID); err != nil {
			t.Fatalf("delete %s: %v", shards[i].ID, err)
		}
		gone[shards[i].ID] = true
	}
	// Deleting what is not there is no error, twice neither.
	for _, id := range []store.ShardID{shards[0].ID, {Kind: store.KindCounter, PID: "999999"}} {
		if err := s.DeleteShard(ctx, id); err != nil {
			t.Errorf("delete absent shard %s: %v", id, err)
		}
	}
	var want []store.Sample
	for _, sh := range shards {
		if !gone[sh.ID] {
			want = append(want, sh.Samples...)
		}
	}
	CompareSamples(t, ScanAll(t, s), want)
	// A deleted shard can be written again.
	writeAll(t, s, shards[:1])
	want = append(want, shards[0].Samples...)
	CompareSamples(t, ScanAll(t, s), want)
}

func testShards(t *testing.T, s store.Store) {
	shards := Fixture(t)
	writeAll(t, s, shards)
	infos, err := s.Shards(context.Background())
	if err != nil {
		t.Fatalf("shards: %v", err)
	}
	got := map[store.ShardID]store.ShardInfo{}
	for _, in := range infos {
		if _, dup := got[in.ID]; dup {
			t.Errorf("shard %s listed twice", in.ID)
		}
		got[in.ID] = in
	}
	for _, sh := range shards {
		in, ok := got[sh.ID]
		if !ok {
			t.Errorf("shard %s not listed", sh.ID)
			continue
		}
		if in.Samples != len(sh.Samples) {
			t.Errorf("shard %s: %d samples, want %d", sh.ID, in.Samples, len(sh.Samples))
		}
		if in.Location == "" {
			t.Errorf("shard %s: no location", sh.ID)
		}
		if len(in.Problems) != 0 {
			t.Errorf("shard %s: problems %v", sh.ID, in.Problems)
		}
	}
	if len(infos) != len(shards) {
		t.Errorf("%d shards listed, want %d", len(infos), len(shards))
	}
}

// Families aggregates samples fed in the given order.
func Families(samples []store.Sample) []aggregate.Family {
	a := aggregate.New()
	for _, s := range samples {
		_ = a.Add(s)
	}
	return a.Families()
}

func testAggregate(t *testing.T, s store.Store) {
	shards := Fixture(t)
	writeAll(t, s, shards)
	a := aggregate.New()
	if err := s.Scan(context.Background(), a.Add); err != nil {
		t.Fatalf("scan: %v", err)
	}
	// The reference: the written samples aggregated in canonical order,
	// independent of any backend.
	want := allSamples(shards)
	sort.SliceStable(want, func(i, j int) bool { return sampleID(want[i]) < sampleID(want[j]) })
	CompareFamilies(t, a.Families(), Families(want))
}

// CompareFamilies fails t unless got and want are the same families with
// the same samples (values equal within testenv.ValuesEqual).
func CompareFamilies(t testing.TB, got, want []aggregate.Family) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d families, want %d", len(got), len(want))
	}
	for i := 0; i < len(got) && i < len(want); i++ {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Type != w.Type || g.Help != w.Help || g.Mode != w.Mode {
			t.Errorf("family %d: %s %s %q mode %q, want %s %s %q mode %q", i, g.Name, g.Type, g.Help, g.Mode, w.Name, w.Type, w.Help, w.Mode)
			continue
		}
		if len(g.Samples) != len(w.Samples) {
			t.Errorf("family %s: %d samples, want %d", g.Name, len(g.Samples), len(w.Samples))
			continue
		}
		for j := range g.Samples {
			gs, ws := g.Samples[j], w.Samples[j]
			if gs.Name != ws.Name || !sameLabels(gs.Labels, ws.Labels) || !testenv.ValuesEqual(gs.Value, ws.Value) {
				t.Errorf("family %s sample %d: %s%v %v, want %s%v %v", g.Name, j, gs.Name, gs.Labels, gs.Value, ws.Name, ws.Labels, ws.Value)
			}
		}
	}
}

// errStop is the ScanFunc error the suite stops a scan with.
var errStop = errors.New("stop")

func testStopEarly(t *testing.T, s store.Store) {
	writeAll(t, s, Fixture(t))
	n := 0
	err := s.Scan(context.Background(), func(store.Sample) error {
		n++
		if n == 3 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Errorf("scan stopped by its callback returned %v, want the callback's error", err)
	}
	if n != 3 {
		t.Errorf("callback ran %d times after returning an error at 3", n)
	}
}

// Dump returns the text exposition `promstore dump` prints for st: every
// sample aggregated and rendered. Any scan error fails the test.
func Dump(t testing.TB, st store.Reader) []byte {
	t.Helper()
	return DumpAs(t, st, pyclient.Latest)
}

// DumpAs is Dump with floats spelled as prometheus_client release client
// spells them: what tests compare with the output of a real Python
// collector (testenv.PythonClient).
func DumpAs(t testing.TB, st store.Reader, client pyclient.Version) []byte {
	t.Helper()
	agg := aggregate.NewFor(client)
	if err := st.Scan(context.Background(), agg.Add); err != nil {
		t.Fatalf("scan: %v", err)
	}
	var b bytes.Buffer
	if err := (render.Exposition{Escaping: model.UnderscoreEscaping, Client: client}).Write(&b, agg.Families()); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
