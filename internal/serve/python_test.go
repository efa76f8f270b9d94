package serve

import (
	"context"
	"io"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

// fetch GETs url with an Accept header and returns the Content-Type and
// the body.
func fetch(t *testing.T, url, accept string) (string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, %v: %s", url, resp.StatusCode, err, body)
	}
	return resp.Header.Get("Content-Type"), string(body)
}

func sortedBodyLines(s string) []string {
	lines := strings.Split(s, "\n")
	sort.Strings(lines)
	return lines
}

// TestMatchesPythonApp serves one store with promstore (as the installed
// prometheus_client release) and with Python's own make_wsgi_app over a
// MultiProcessCollector, and asks both with every Accept header of the
// README's table and with ?name[]= filters: the Content-Type and the body
// (as a set of lines: the sample order is not part of the contract) must
// be the same.
func TestMatchesPythonApp(t *testing.T) {
	client := testenv.PythonClient(t)
	dir := testenv.CopyStore(t, filepath.Join(testenv.FixturesDir(t), "python-0.16-files", "store"))
	app := testenv.StartPythonApp(t, dir)
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := start(t, Options{Store: st, PythonClient: client})
	queries := []string{"", "?name[]=oracle_requests_total", "?name[]=oracle_size_bytes_bucket&name[]=oracle_gauge_max&name[]=oracle_gauge_max", "?name[]=", "?name[]=nope"}
	for _, q := range queries {
		for _, tt := range acceptTable {
			t.Run(tt.name+q, func(t *testing.T) {
				wantCT, want := fetch(t, "http://"+app.Addr+"/metrics"+q, tt.accept)
				gotCT, got := fetch(t, srv.url+"/metrics"+q, tt.accept)
				if gotCT != wantCT {
					t.Errorf("Content-Type %q, Python's %q", gotCT, wantCT)
				}
				if !slices.Equal(sortedBodyLines(got), sortedBodyLines(want)) {
					t.Errorf("body differs from Python's (%d vs %d bytes)\npromstore:\n%.600s\npython:\n%.600s", len(got), len(want), got, want)
				}
			})
		}
	}
}

// writerScript writes a counter, a histogram with bounds from 1e3 to 1e15
// (spelled differently by 0.26 and older clients) and an "all" gauge,
// creating every series first, then prints "ready" and keeps writing.
const writerScript = `
import os, sys, time, random
os.environ['PROMETHEUS_MULTIPROC_DIR'] = sys.argv[1]
from prometheus_client import Counter, Gauge, Histogram
jobs = Counter('jobs', 'Jobs done.', ['queue'])
size = Histogram('object_size_bytes', 'Object sizes.', ['bucket'],
                 buckets=(1e3, 1e6, 1e9, 1e10, 2.5e11, 1.23456789012e12, 1e15, float('inf')))
heap = Gauge('heap_bytes', 'Heap in use.', multiprocess_mode='all')
for q in ('a', 'b', 'c'):
    jobs.labels(q)
for b in ('logs', 'media'):
    size.labels(b)
heap.set(2.5e10)
print('ready', flush=True)
i = 0
while True:
    jobs.labels(random.choice('abc')).inc()
    size.labels(random.choice(['logs', 'media'])).observe(random.choice([5e2, 5e9, 3e11, 2e15]))
    heap.set(2.5e10 + i)
    i += 1
    time.sleep(0.005)
`

// acceptRecorder remembers the Accept headers of the scrapes it passes
// on.
type acceptRecorder struct {
	next http.Handler
	mu   sync.Mutex
	seen map[string]bool
}

func (a *acceptRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen[r.Header.Get("Accept")] = true
	a.mu.Unlock()
	a.next.ServeHTTP(w, r)
}

// TestPrometheusSeesTheSameSeries runs a real Prometheus (Debian's 2.42
// in CI) scraping, every second, promstore serve and the Python app's own
// endpoint over one directory that two real Python processes keep
// writing. Through Prometheus' HTTP API both jobs must hold the same
// series (label values identical, le included) and no counter, bucket,
// count or sum may ever reset.
func TestPrometheusSeesTheSameSeries(t *testing.T) {
	testenv.PrometheusPath(t)
	client := testenv.PythonClient(t)
	dir := t.TempDir()
	for range 2 {
		testenv.StartPythonWriter(t, dir, writerScript)
	}
	app := testenv.StartPythonApp(t, dir)
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Store: st, PythonClient: client})
	if err != nil {
		t.Fatal(err)
	}
	rec := &acceptRecorder{next: s.Handler(), seen: map[string]bool{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: rec}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close(); s.scraper.stop() })

	start := time.Now()
	prom := testenv.StartPrometheus(t, map[string]string{"promstore": l.Addr().String(), "python": app.Addr})

	// Wait (polling the API) until each job has been scraped successfully
	// several times while the writers write.
	const scrapes = 6
	deadline := time.Now().Add(90 * time.Second)
	for {
		ok := 0
		for _, smp := range prom.Query(t, `sum by (job) (sum_over_time(up[10m]))`) {
			if smp.Float() >= scrapes {
				ok++
			}
		}
		if ok == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not scrape both jobs %d times in 90s; up: %v\n%s", scrapes, prom.Query(t, `up`), prom.Log())
		}
		time.Sleep(250 * time.Millisecond)
	}

	// The same series, label for label.
	series := func(job string) map[string]bool {
		out := map[string]bool{}
		for _, ls := range prom.Series(t, `{job="`+job+`"}`, start) {
			delete(ls, "job")
			delete(ls, "instance")
			keys := slices.Sorted(maps.Keys(ls))
			var b strings.Builder
			for _, k := range keys {
				b.WriteString(k + "=" + ls[k] + "\x00")
			}
			out[b.String()] = true
		}
		return out
	}
	got, want := series("promstore"), series("python")
	for k := range want {
		if !got[k] {
			t.Errorf("series of the Python app missing from promstore's job: %q", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("series only in promstore's job: %q", k)
		}
	}
	le := "1e+10"
	if !client.PaddedExponent() {
		le = "1e+010"
	}
	if n := len(prom.Query(t, `object_size_bytes_bucket{le="`+le+`"}`)); n != 4 {
		t.Errorf("%d series with le=%q, want 2 buckets in each job", n, le)
	}

	// Counters grew and never went backwards in either job.
	for _, smp := range prom.Query(t, `sum by (job) (increase(jobs_total[10m]))`) {
		if smp.Float() <= 0 {
			t.Errorf("jobs_total of job %s did not grow: the writers did not write", smp.Metric["job"])
		}
	}
	for _, name := range []string{"jobs_total", "object_size_bytes_bucket", "object_size_bytes_count", "object_size_bytes_sum"} {
		if n := len(prom.Query(t, name)); n == 0 {
			t.Errorf("no %s series", name)
		}
		for _, smp := range prom.Query(t, `resets(`+name+`[10m]) > 0`) {
			t.Errorf("%s reset: %v", name, smp.Metric)
		}
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if v := prom.Version(t); strings.HasPrefix(v, "2.") && (len(rec.seen) != 1 || !rec.seen[acceptProm2]) {
		t.Errorf("Prometheus %s sent %q, not the Accept header of the README's table", v, slices.Collect(maps.Keys(rec.seen)))
	}
}
