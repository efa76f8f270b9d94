package filestore

import (
	"context"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

// pyCollect prints generate_latest of MultiProcessCollector over argv[1].
const pyCollect = `
import sys
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
r = CollectorRegistry()
MultiProcessCollector(r, path=sys.argv[1])
sys.stdout.write(generate_latest(r).decode('utf-8'))
`

// pyVersion prints the installed prometheus_client's version.
const pyVersion = `
from importlib.metadata import version
print(version('prometheus_client'))
`

// tricky label values and help text Python must read back exactly.
var tricky = []string{
	"plain", "", " spaced ", "café", "日本", "🚀 rocket", `say "hi"`, `back\slash`,
	"new\nline", "tab\there", "cr\rret", "ls\u2028sep", `{a="b",c=d}`, `trailing\`,
	`lit\n`, "/api/v1/items/7?x=1&y=2", "\x7fdel", strings.Repeat("L", 300),
}

const trickyHelp = "Help with \"quotes\", back\\slash, new\nline, café 日本 🚀 and a trailing backslash \\"

// pyLine is a sample line as Python's generate_latest writes it.
func pyLine(name string, labels map[string]string, v float64) string {
	var b strings.Builder
	b.WriteString(name)
	if len(labels) > 0 {
		names := make([]string, 0, len(labels))
		for n := range labels {
			names = append(names, n)
		}
		sort.Strings(names)
		b.WriteByte('{')
		for i, n := range names {
			if i > 0 {
				b.WriteByte(',')
			}
			v := strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(labels[n])
			b.WriteString(n + `="` + v + `"`)
		}
		b.WriteByte('}')
	}
	return b.String() + " " + store.FloatToGoString(v)
}

func pyHelp(name, help string) string {
	return "# HELP " + name + " " + strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(help)
}

// TestPythonReadsWrittenShards writes shards with tricky keys and values,
// and checks the real prometheus_client collector's output. Debian's
// prometheus_client 0.16 reads only the 8-byte layout; the 16-byte layout
// is checked with Python too when the interpreter's client is >= 0.18
// (otherwise TestWriteShardByteIdentical covers it against files written
// by prometheus_client 0.25).
func TestPythonReadsWrittenShards(t *testing.T) {
	testenv.Python(t)
	for _, layout := range []int{8, 16} {
		t.Run(map[int]string{8: "8-byte", 16: "16-byte"}[layout], func(t *testing.T) {
			dir := t.TempDir()
			st := openDir(t, dir, layout)
			ctx := context.Background()
			key := func(family, name string, labels map[string]string, help string) *store.Key {
				var ls []store.Label
				for n, v := range labels {
					ls = append(ls, store.Label{Name: n, Value: v})
				}
				return mustKey(t, store.EncodeKey(family, name, ls, help))
			}
			var want []string
			write := func(id store.ShardID, samples []store.Sample) {
				t.Helper()
				if err := st.WriteShard(ctx, id, samples); err != nil {
					t.Fatal(err)
				}
			}
			// Counters in two processes: Python sums them.
			for p, pid := range []string{"101", "102"} {
				var samples []store.Sample
				for i, v := range tricky {
					l := map[string]string{"tag": v, "code": "200"}
					samples = append(samples, store.Sample{Key: key("tricky_requests", "tricky_requests_total", l, trickyHelp), Value: float64(i) + float64(p)*0.25})
				}
				write(store.ShardID{Kind: store.KindCounter, PID: pid}, samples)
			}
			for i, v := range tricky {
				want = append(want, pyLine("tricky_requests_total", map[string]string{"tag": v, "code": "200"}, 2*float64(i)+0.25))
			}
			want = append(want, pyHelp("tricky_requests_total", trickyHelp))
			// Gauges of mode all keep one sample per pid, special values
			// included.
			special := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 1e308, 5e-324, 1e-07, 12345678.9}
			var gs []store.Sample
			for i, v := range special {
				l := map[string]string{"i": tricky[i]}
				gs = append(gs, store.Sample{Key: key("tricky_temp", "tricky_temp", l, "Temp."), Value: v, Timestamp: 1732550000.5})
				want = append(want, pyLine("tricky_temp", map[string]string{"i": tricky[i], "pid": "7"}, v))
			}
			write(store.ShardID{Kind: store.KindGauge, Mode: "all", PID: "7"}, gs)
			// A histogram: Python accumulates the buckets.
			hl := func(le string) map[string]string { return map[string]string{"route": "/é", "le": le} }
			write(store.ShardID{Kind: store.KindHistogram, PID: "7"}, []store.Sample{
				{Key: key("tricky_latency", "tricky_latency_bucket", hl("0.5"), "Latency."), Value: 1},
				{Key: key("tricky_latency", "tricky_latency_bucket", hl("+Inf"), "Latency."), Value: 2},
				{Key: key("tricky_latency", "tricky_latency_sum", map[string]string{"route": "/é"}, "Latency."), Value: 2.75},
				{Key: key("tricky_latency", "tricky_latency_count", map[string]string{"route": "/é"}, "Latency."), Value: 3},
			})
			want = append(want,
				pyLine("tricky_latency_bucket", hl("0.5"), 1),
				pyLine("tricky_latency_bucket", hl("+Inf"), 3),
				pyLine("tricky_latency_sum", map[string]string{"route": "/é"}, 2.75),
				pyLine("tricky_latency_count", map[string]string{"route": "/é"}, 3))
			// A legacy 3-element key is written as the 4-element key
			// Python >= 0.16 needs, with help "Multiprocess metric".
			legacy := mustKey(t, `["old_jobs", "old_jobs_total", {"q": "x"}]`)
			write(store.ShardID{Kind: store.KindCounter, PID: "7"}, []store.Sample{{Key: legacy, Value: 9}})
			want = append(want, pyLine("old_jobs_total", map[string]string{"q": "x"}, 9), pyHelp("old_jobs_total", store.LegacyHelp))

			ver := strings.TrimSpace(string(testenv.RunPython(t, ctx, pyVersion, nil)))
			if layout == 16 && !clientReads16(ver) {
				t.Logf("prometheus_client %s reads only 8-byte files; the 16-byte layout is checked by TestWriteShardByteIdentical", ver)
				// Our own reader must still read everything back.
				if got, err := scanAll(t, st); err != nil || len(got) != 2*len(tricky)+len(special)+5 {
					t.Fatalf("read back %d samples: %v", len(got), err)
				}
				return
			}
			text := string(testenv.RunPython(t, ctx, pyCollect, nil, dir))
			lines := map[string]bool{}
			for _, l := range strings.Split(text, "\n") {
				lines[l] = true
			}
			for _, w := range want {
				if !lines[w] {
					t.Errorf("Python's output lacks line %q", w)
				}
			}
			if t.Failed() {
				t.Logf("prometheus_client %s output:\n%s", ver, text)
			}
		})
	}
}

// clientReads16 reports whether prometheus_client version v (e.g. "0.16.0")
// reads the 16-byte layout (>= 0.18).
func clientReads16(v string) bool {
	var major, minor int
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	for _, c := range parts[0] {
		major = major*10 + int(c-'0')
	}
	for _, c := range parts[1] {
		minor = minor*10 + int(c-'0')
	}
	return major > 0 || minor >= 18
}
