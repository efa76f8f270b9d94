package render

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/store"
)

func rawSamples() []store.Sample {
	c := &store.Key{Family: "requests", Name: "requests_total", Labels: ls("path", "/a\tb\rc\"d\\e\nf"), Help: "Requests."}
	g := &store.Key{Family: "my.gauge", Name: "my.gauge", Labels: ls("la.bel", "x"), Help: "G."}
	h := &store.Key{Family: "lat", Name: "lat_bucket", Labels: ls("le", "1.0"), Help: "L."}
	return []store.Sample{
		{Shard: store.ShardID{Kind: store.KindCounter, PID: "4100"}, Key: c, Value: 3},
		{Shard: store.ShardID{Kind: store.KindGauge, Mode: "mostrecent", PID: "4101"}, Key: g, Value: math.NaN(), Timestamp: 1700000000.25},
		{Shard: store.ShardID{Kind: store.KindGauge, Mode: "mostrecent", PID: "4102"}, Key: g, Value: -0.5},
		{Shard: store.ShardID{Kind: store.KindHistogram, PID: "worker-1"}, Key: h, Value: 1e6},
	}
}

func writeRaw(t *testing.T, format string) []byte {
	t.Helper()
	var b bytes.Buffer
	rw, err := NewRaw(&b, format)
	if err != nil {
		t.Fatal(err)
	}
	var fn store.ScanFunc = rw.Write
	for _, s := range rawSamples() {
		if err := fn(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRawText(t *testing.T) {
	out := writeRaw(t, "text")
	golden(t, "raw.tsv", out)
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if lines[0] != "SHARD\tKIND\tMODE\tPID\tSAMPLE\tVALUE\tTIMESTAMP" {
		t.Errorf("header %q", lines[0])
	}
	if len(lines) != 5 {
		t.Fatalf("%d lines, want 5", len(lines))
	}
	for _, l := range lines {
		if n := strings.Count(l, "\t"); n != 6 {
			t.Errorf("line %q has %d tabs, want 6", l, n)
		}
	}
	for i, want := range []string{
		"counter_4100\tcounter\t-\t4100\trequests_total{path=\"/a\\tb\\rc\\\"d\\\\e\\nf\"}\t3.0\t-",
		"gauge_mostrecent_4101\tgauge\tmostrecent\t4101\t{\"my.gauge\",\"la.bel\"=\"x\"}\tNaN\t1700000000.25",
		"histogram_worker-1\thistogram\t-\tworker-1\tlat_bucket{le=\"1.0\"}\t1e+06\t-",
	} {
		idx := []int{1, 2, 4}[i]
		if lines[idx] != want {
			t.Errorf("line %d = %q, want %q", idx, lines[idx], want)
		}
	}
}

func TestRawJSON(t *testing.T) {
	out := writeRaw(t, "json")
	golden(t, "raw.jsonl", out)
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	samples := rawSamples()
	if len(lines) != len(samples) {
		t.Fatalf("%d lines", len(lines))
	}
	for i, l := range lines {
		var got struct {
			Shard, Kind, Mode, PID, Family, Name, Help, Value, Timestamp string
			Labels                                                       map[string]string
		}
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		s := samples[i]
		if got.Shard != s.Shard.String() || got.Kind != string(s.Shard.Kind) || got.Mode != s.Shard.Mode || got.PID != s.Shard.PID ||
			got.Family != s.Key.Family || got.Name != s.Key.Name || got.Help != s.Key.Help ||
			got.Value != store.FloatToGoString(s.Value) || got.Timestamp != store.PyRepr(s.Timestamp) {
			t.Errorf("line %d = %+v", i, got)
		}
		for _, lb := range s.Key.Labels {
			if got.Labels[lb.Name] != lb.Value {
				t.Errorf("line %d label %s = %q", i, lb.Name, got.Labels[lb.Name])
			}
		}
	}
}

func TestRawBadFormat(t *testing.T) {
	if _, err := NewRaw(io.Discard, "xml"); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Errorf("NewRaw(xml) error = %v", err)
	}
}

// benchFamilies builds n gauge samples spread over 100 families, with a
// few labels each, like a busy multiprocess store.
func benchFamilies(n int) []aggregate.Family {
	fams := make([]aggregate.Family, 100)
	for i := range fams {
		fams[i] = aggregate.Family{Name: "family_" + strconv.Itoa(i), Type: store.KindGauge, Mode: "all", Help: "Help text."}
	}
	for i := 0; i < n; i++ {
		f := &fams[i%100]
		f.Samples = append(f.Samples, aggregate.Sample{
			Name:   f.Name,
			Labels: ls("method", "GET", "pid", strconv.Itoa(4000+i%64), "route", "/api/v1/items/"+strconv.Itoa(i)),
			Value:  float64(i%1000) * 1.25,
		})
	}
	return fams
}

func benchmarkWriter(b *testing.B, write func(io.Writer, []aggregate.Family) error) {
	fams := benchFamilies(100_000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := write(io.Discard, fams); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/sample")
}

func BenchmarkText100k(b *testing.B)        { benchmarkWriter(b, Text) }
func BenchmarkJSON100k(b *testing.B)        { benchmarkWriter(b, JSON) }
func BenchmarkOpenMetrics100k(b *testing.B) { benchmarkWriter(b, OpenMetrics) }

// BenchmarkRejected100k is the check serve makes once per read and
// exposition (Exposition.Rejected), on the families of BenchmarkText100k:
// compare the two to see what the check adds to a scrape.
func BenchmarkRejected100k(b *testing.B) {
	fams := benchFamilies(100_000)
	var e Exposition
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if p := e.Rejected(fams); len(p) > 0 {
			b.Fatal(p)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/sample")
}

// TestRawWriterKeepsNoStaleText: the columns a RawWriter keeps between
// samples (the last shard's, each key's by its ID) never stand for
// another shard or key: keys of one ID from two stores, keys without an
// ID, shards that come back, in both formats; each line is what a new
// writer writes for the sample alone.
func TestRawWriterKeepsNoStaleText(t *testing.T) {
	key := func(id uint32, name, route string) *store.Key {
		return &store.Key{Family: name, Name: name + "_total", Help: "Help of " + name + ".", ID: id,
			Labels: []store.Label{{Name: "route", Value: route}}}
	}
	a, b := key(1, "a", "/x"), key(2, "b", "/y")
	a2 := key(1, "other", "/z\t") // another store's key of ID 1
	n0 := key(0, "noid", "/w")
	s1 := store.ShardID{Kind: store.KindCounter, PID: "1"}
	s2 := store.ShardID{Kind: store.KindGauge, Mode: "all", PID: "2"}
	s3 := store.ShardID{Kind: store.KindCounter, PID: "3"}
	samples := []store.Sample{
		{Shard: s1, Key: a, Value: 1}, {Shard: s1, Key: b, Value: 2}, {Shard: s1, Key: n0, Value: 3},
		{Shard: s2, Key: a, Value: 4, Timestamp: 5}, {Shard: s2, Key: a2, Value: 6},
		{Shard: s1, Key: a, Value: 7}, {Shard: s3, Key: a2, Value: 8}, {Shard: s3, Key: a, Value: math.NaN()},
		{Shard: s3, Key: n0, Value: 9}, {Shard: s3, Key: b, Value: 10},
	}
	for _, format := range RawFormats {
		var got bytes.Buffer
		rw, err := NewRaw(&got, format)
		if err != nil {
			t.Fatal(err)
		}
		var want strings.Builder
		for _, s := range samples {
			if err := rw.Write(s); err != nil {
				t.Fatal(err)
			}
			var one bytes.Buffer
			fresh, _ := NewRaw(&one, format)
			if err := fresh.Write(s); err != nil {
				t.Fatal(err)
			}
			if err := fresh.Close(); err != nil {
				t.Fatal(err)
			}
			line := one.String()
			if format == "text" {
				line = line[strings.IndexByte(line, '\n')+1:] // the header
			}
			want.WriteString(line)
		}
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
		out := got.String()
		if format == "text" {
			out = out[strings.IndexByte(out, '\n')+1:]
		}
		if out != want.String() {
			t.Errorf("%s:\n%s\nwant:\n%s", format, out, want.String())
		}
	}
}

// TestRawTextEscapesShardColumns: a file name may hold a tab or newline
// (counter_a<TAB>b.db is a shard of pid "a\tb"); the shard and pid
// columns escape them as ls's TSV does, so every sample stays one line of
// seven columns.
func TestRawTextEscapesShardColumns(t *testing.T) {
	var b bytes.Buffer
	rw, err := NewRaw(&b, "text")
	if err != nil {
		t.Fatal(err)
	}
	k := &store.Key{Family: "c", Name: "c_total", Help: "C."}
	for _, pid := range []string{"a\tb", "c\nd", `e\f`, "g\rh"} {
		if err := rw.Write(store.Sample{Shard: store.ShardID{Kind: store.KindCounter, PID: pid}, Key: k, Value: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	want := "SHARD\tKIND\tMODE\tPID\tSAMPLE\tVALUE\tTIMESTAMP\n" +
		"counter_a\\tb\tcounter\t-\ta\\tb\tc_total\t1.0\t-\n" +
		"counter_c\\nd\tcounter\t-\tc\\nd\tc_total\t1.0\t-\n" +
		"counter_e\\\\f\tcounter\t-\te\\\\f\tc_total\t1.0\t-\n" +
		"counter_g\\rh\tcounter\t-\tg\\rh\tc_total\t1.0\t-\n"
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
