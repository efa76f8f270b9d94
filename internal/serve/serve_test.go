package serve

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/bcrypt"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/render"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

// sampleStore copies testdata/sample-store (written by real Python) into a
// temporary directory and opens it.
func sampleStore(t *testing.T) (string, *filestore.Store) {
	t.Helper()
	src := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	dir := filepath.Join(t.TempDir(), "store")
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatalf("copy sample store: %v", err)
	}
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return dir, st
}

// families aggregates the store as dump does.
func families(t *testing.T, st store.Reader) []aggregate.Family {
	t.Helper()
	agg := aggregate.New()
	if err := st.Scan(context.Background(), agg.Add); err != nil {
		t.Fatalf("scan: %v", err)
	}
	return agg.Families()
}

func renderText(t *testing.T, fams []aggregate.Family) string {
	t.Helper()
	var b bytes.Buffer
	if err := render.Text(&b, fams); err != nil {
		t.Fatalf("render: %v", err)
	}
	return b.String()
}

// testLogger collects logs so that tests can look for warnings.
type testLogger struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLogger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// running is a server started by start.
type running struct {
	srv    *Server
	url    string
	cancel context.CancelFunc
	// done is closed when Run has returned err.
	done chan struct{}
	err  error
	logs *testLogger
}

// wait waits for Run to return and gives its result.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop")
		return nil
	}
}

// stop shuts the server down and returns Run's result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// start runs a Server on a free loopback port until the test ends.
func start(t *testing.T, opts Options) *running {
	t.Helper()
	logs := &testLogger{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.ListenAddresses == nil {
		opts.ListenAddresses = []string{"127.0.0.1:0"}
	}
	addrc := make(chan net.Addr, 1)
	opts.OnListen = func(a []net.Addr) { addrc <- a[0] }
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{srv: srv, cancel: cancel, done: make(chan struct{}), logs: logs}
	go func() {
		r.err = srv.Run(ctx)
		close(r.done)
	}()
	select {
	case a := <-addrc:
		scheme := "http"
		if opts.WebConfigFile != "" {
			scheme = "https"
		}
		r.url = scheme + "://" + a.String()
	case <-r.done:
		t.Fatalf("Run: %v", r.err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop at cleanup")
		}
	})
	return r
}

type response struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, c *http.Client, url string, hdr map[string]string) response {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

func TestTextEqualsDump(t *testing.T) {
	_, st := sampleStore(t)
	want := renderText(t, families(t, st))
	srv := start(t, Options{Store: st})
	for _, accept := range []string{"", "text/plain", "text/plain;version=0.0.4", "*/*", "application/json"} {
		t.Run("accept="+accept, func(t *testing.T) {
			r := get(t, nil, srv.url+"/metrics", map[string]string{"Accept": accept})
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4; charset=utf-8") {
				t.Errorf("Content-Type %q", ct)
			}
			if r.body != want {
				t.Errorf("body differs from dump's output (%d vs %d bytes)", len(r.body), len(want))
			}
		})
	}
}

// TestNegotiatesOpenMetrics: Prometheus 2.x's Accept header gets
// OpenMetrics, byte for byte render.Exposition's OpenMetrics output, and a header
// asking for protobuf first gets what Python answers it: its next choice.
func TestNegotiatesOpenMetrics(t *testing.T) {
	_, st := sampleStore(t)
	fams := families(t, st)
	var wantOM bytes.Buffer
	if err := (render.Exposition{OpenMetrics: true, Escaping: model.UnderscoreEscaping, Client: pyclient.Latest}).Write(&wantOM, fams); err != nil {
		t.Fatal(err)
	}
	srv := start(t, Options{Store: st})

	t.Run("openmetrics", func(t *testing.T) {
		r := get(t, nil, srv.url+"/metrics", map[string]string{
			"Accept": "application/openmetrics-text;version=1.0.0;q=0.9,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
		})
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		ct := r.header.Get("Content-Type")
		if ct != "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores" {
			t.Fatalf("Content-Type %q", ct)
		}
		if r.body != wantOM.String() {
			t.Errorf("OpenMetrics body differs from render.OpenMetrics")
		}
		if !strings.HasSuffix(r.body, "# EOF\n") || strings.Count(r.body, "# EOF") != 1 {
			t.Errorf("OpenMetrics body must end with exactly one # EOF")
		}
	})

	t.Run("openmetrics parses back", func(t *testing.T) {
		// A small store: expfmt's OpenMetrics parser is slow.
		st := smallStore(t)
		srv := start(t, Options{Store: st})
		r := get(t, nil, srv.url+"/metrics", map[string]string{"Accept": "application/openmetrics-text"})
		got := decodeAll(t, strings.NewReader(r.body), expfmt.Format(r.header.Get("Content-Type")))
		if g, w := names(got), "jobs_total/COUNTER"; g != w {
			t.Errorf("decoded families %s, want %s", g, w)
		}
	})

	t.Run("protobuf first", func(t *testing.T) {
		r := get(t, nil, srv.url+"/metrics", map[string]string{
			"Accept": "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3",
		})
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
			t.Fatalf("Content-Type %q, want the text format as Python answers", ct)
		}
		if r.body != renderText(t, fams) {
			t.Errorf("body differs from dump's text")
		}
	})
}

func decodeAll(t *testing.T, r io.Reader, format expfmt.Format) []*dto.MetricFamily {
	t.Helper()
	dec := expfmt.NewDecoder(r, format)
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("decode %s: %v", format, err)
		}
		out = append(out, mf)
	}
}

func names(mfs []*dto.MetricFamily) string {
	var n []string
	for _, mf := range mfs {
		n = append(n, mf.GetName()+"/"+mf.GetType().String())
	}
	sort.Strings(n)
	return strings.Join(n, " ")
}

func TestGzip(t *testing.T) {
	_, st := sampleStore(t)
	want := renderText(t, families(t, st))
	srv := start(t, Options{Store: st})
	// Setting Accept-Encoding ourselves stops net/http from decompressing.
	r := get(t, nil, srv.url+"/metrics", map[string]string{"Accept-Encoding": "deflate, gzip;q=0.8"})
	if r.status != 200 || r.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("status %d, Content-Encoding %q", r.status, r.header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != want {
		t.Errorf("gunzipped body differs from dump's output")
	}
	r = get(t, nil, srv.url+"/metrics", map[string]string{"Accept-Encoding": "gzip;q=0, identity"})
	if r.header.Get("Content-Encoding") != "" || r.body != want {
		t.Errorf("gzip;q=0 must give an uncompressed body, got Content-Encoding %q", r.header.Get("Content-Encoding"))
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"deflate, gzip", true},
		{"gzip;q=0", false},
		{"gzip; q=0.0", false},
		{"gzip;q=0.5", true},
		{"x-gzip", true},
		{"br, zstd", false},
		{"identity", false},
	} {
		if got := acceptsGzip(tc.in); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// gateStore blocks every Scan until released (or its context ends,
// unless deaf is set: a store that does not heed cancellation).
type gateStore struct {
	store.Reader
	entered chan struct{}
	release chan struct{}
	deaf    bool
	scans   atomic.Int32
}

func newGate(st store.Reader) *gateStore {
	return &gateStore{Reader: st, entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (g *gateStore) Scan(ctx context.Context, fn store.ScanFunc) error {
	g.scans.Add(1)
	g.entered <- struct{}{}
	if g.deaf {
		<-g.release
		return ctx.Err()
	}
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Reader.Scan(ctx, fn)
}

func waitEntered(t *testing.T, g *gateStore) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("store was never read")
	}
}

// waitUntil polls cond until it holds, or fails the test after 10 s with
// what failure says then.
func waitUntil(t *testing.T, cond func() bool, failure func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(failure())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitSelfMetric polls the server's own metrics until one of their lines
// is line.
func waitSelfMetric(t *testing.T, srv *running, line string) {
	t.Helper()
	var self response
	waitUntil(t, func() bool {
		self = get(t, nil, srv.url+SelfMetricsPath, nil)
		return slices.Contains(strings.Split(self.body, "\n"), line)
	}, func() string {
		return fmt.Sprintf("self metrics never showed %q:\n%s", line, grepLines(self.body, strings.Fields(line)[0]))
	})
}

func TestConcurrentScrapesShareOneRead(t *testing.T) {
	_, st := sampleStore(t)
	want := renderText(t, families(t, st))
	g := newGate(st)
	srv := start(t, Options{Store: g})
	const n = 8
	var wg sync.WaitGroup
	bodies := make([]response, n)
	var started sync.WaitGroup
	started.Add(n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			bodies[i] = get(t, nil, srv.url+"/metrics", nil)
		}()
	}
	started.Wait()
	waitEntered(t, g)
	// Release the read once every scrape waits for it.
	waitSelfMetric(t, srv, fmt.Sprintf("promstore_scrapes_in_flight %d", n))
	waitUntil(t, func() bool { return srv.srv.scraper.waiting() == n }, func() string {
		return fmt.Sprintf("%d scrapes in flight, %d of them wait for the read", n, srv.srv.scraper.waiting())
	})
	close(g.release)
	wg.Wait()
	for i, r := range bodies {
		if r.status != 200 || r.body != want {
			t.Errorf("scrape %d: status %d, body equal %v", i, r.status, r.body == want)
		}
	}
	if s := g.scans.Load(); s != 1 {
		t.Errorf("%d concurrent scrapes made %d reads, want 1", n, s)
	}
	waitSelfMetric(t, srv, "promstore_scrapes_in_flight 0")
	// A later scrape reads again.
	if r := get(t, nil, srv.url+"/metrics", nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if s := g.scans.Load(); s != 2 {
		t.Errorf("a scrape after the shared read made %d reads in all, want 2", s)
	}
}

func TestScrapeTimeout(t *testing.T) {
	_, st := sampleStore(t)

	t.Run("header lowers the timeout", func(t *testing.T) {
		g := newGate(st)
		srv := start(t, Options{Store: g, ScrapeTimeout: time.Minute})
		r := get(t, nil, srv.url+"/metrics", map[string]string{scrapeTimeoutHeader: "0.2"})
		if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "scrape timeout (200ms)") {
			t.Errorf("status %d body %q, want 503 naming the 200ms timeout", r.status, r.body)
		}
		if strings.Count(strings.TrimSpace(r.body), "\n") != 0 {
			t.Errorf("error body is not one line: %q", r.body)
		}
		close(g.release)
	})

	t.Run("server timeout ends the read", func(t *testing.T) {
		// The timeout also bounds the read after the release, which reads
		// the sample store for real: 2 s leaves a loaded machine's race
		// build room (200 ms failed about once in seven runs under load).
		g := newGate(st)
		srv := start(t, Options{Store: g, ScrapeTimeout: 2 * time.Second})
		r := get(t, nil, srv.url+"/metrics", map[string]string{scrapeTimeoutHeader: "30"})
		if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "scrape timeout (2s)") {
			t.Errorf("status %d body %q, want 503 naming the 2s timeout", r.status, r.body)
		}
		self := get(t, nil, srv.url+SelfMetricsPath, nil)
		if !strings.Contains(self.body, `promstore_scrapes_total{outcome="timeout"} 1`) {
			t.Errorf("timeout not counted in self metrics:\n%s", grepLines(self.body, "promstore_scrapes_total"))
		}
		close(g.release)
		if r := get(t, nil, srv.url+"/metrics", nil); r.status != 200 {
			t.Errorf("after the slow read: status %d, want 200", r.status)
		}
		if s := g.scans.Load(); s != 2 {
			t.Errorf("%d reads, want 2", s)
		}
	})

	// A scrape that comes while a timed-out read is still running (the
	// store does not heed cancellation) starts its own read instead of
	// sharing the failure of one it never waited for.
	t.Run("timed-out read takes no more scrapes", func(t *testing.T) {
		g := newGate(st)
		g.deaf = true
		srv := start(t, Options{Store: g, ScrapeTimeout: 200 * time.Millisecond})
		release := sync.OnceFunc(func() { close(g.release) })
		defer release()
		if r := get(t, nil, srv.url+"/metrics", nil); r.status != http.StatusServiceUnavailable {
			t.Fatalf("first scrape: status %d, want 503", r.status)
		}
		waitEntered(t, g)
		// The first read is past its deadline but still stuck in the store.
		resc := make(chan response, 1)
		go func() { resc <- get(t, nil, srv.url+"/metrics", nil) }()
		select {
		case <-g.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("a scrape after the timed-out read never started its own read")
		}
		release()
		<-resc
	})
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// corrupt writes a shard file whose header claims more bytes than it has.
func corrupt(t *testing.T, dir, name string) {
	t.Helper()
	b := make([]byte, 64)
	b[0], b[1] = 0xff, 0xff // used = 65535 > file size
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptShard(t *testing.T) {
	dir, st := sampleStore(t)
	want := renderText(t, families(t, st))
	corrupt(t, dir, "counter_9999.db")

	t.Run("default fails the scrape naming the shard", func(t *testing.T) {
		srv := start(t, Options{Store: st})
		r := get(t, nil, srv.url+"/metrics", nil)
		if r.status != http.StatusInternalServerError || !strings.Contains(r.body, "counter_9999") {
			t.Fatalf("status %d body %q, want 500 naming counter_9999", r.status, r.body)
		}
		if strings.Count(strings.TrimSpace(r.body), "\n") != 0 {
			t.Errorf("error body is not one line: %q", r.body)
		}
		if !strings.Contains(srv.logs.String(), "counter_9999") {
			t.Errorf("problem not logged:\n%s", srv.logs.String())
		}
		self := get(t, nil, srv.url+SelfMetricsPath, nil)
		if !strings.Contains(self.body, "promstore_shard_errors_total 1") {
			t.Errorf("shard error not counted:\n%s", grepLines(self.body, "shard_errors"))
		}
		// Ready means listable: still ready.
		if r := get(t, nil, srv.url+"/-/ready", nil); r.status != 200 {
			t.Errorf("/-/ready: %d %s", r.status, r.body)
		}
	})

	t.Run("partial serves the rest", func(t *testing.T) {
		srv := start(t, Options{Store: st, Partial: true})
		r := get(t, nil, srv.url+"/metrics", nil)
		if r.status != 200 || r.body != want {
			t.Fatalf("status %d, body equal to the store without the bad shard: %v", r.status, r.body == want)
		}
		if l := srv.logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "counter_9999") {
			t.Errorf("problem not logged as a warning:\n%s", l)
		}
		self := get(t, nil, srv.url+SelfMetricsPath, nil)
		if !strings.Contains(self.body, `promstore_scrapes_total{outcome="partial"} 1`) {
			t.Errorf("partial scrape not counted:\n%s", grepLines(self.body, "promstore_scrapes_total"))
		}
	})

	t.Run("serves again once the shard is gone", func(t *testing.T) {
		srv := start(t, Options{Store: st})
		if r := get(t, nil, srv.url+"/metrics", nil); r.status != 500 {
			t.Fatalf("status %d, want 500", r.status)
		}
		if err := os.Remove(filepath.Join(dir, "counter_9999.db")); err != nil {
			t.Fatal(err)
		}
		if r := get(t, nil, srv.url+"/metrics", nil); r.status != 200 || r.body != want {
			t.Fatalf("status %d, body equal %v", r.status, r.body == want)
		}
	})
}

func TestStoreGoesAwayAndComesBack(t *testing.T) {
	dir, st := sampleStore(t)
	want := renderText(t, families(t, st))
	srv := start(t, Options{Store: st})
	if r := get(t, nil, srv.url+"/metrics", nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	moved := dir + ".moved"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	r := get(t, nil, srv.url+"/metrics", nil)
	if r.status != http.StatusInternalServerError || !strings.Contains(r.body, dir) {
		t.Errorf("store gone: status %d body %q, want 500 naming %s", r.status, r.body, dir)
	}
	if strings.Count(strings.TrimSpace(r.body), "\n") != 0 {
		t.Errorf("error body is not one line: %q", r.body)
	}
	if r := get(t, nil, srv.url+"/-/ready", nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("/-/ready with the store gone: %d, want 503", r.status)
	}
	if r := get(t, nil, srv.url+"/-/healthy", nil); r.status != 200 {
		t.Errorf("/-/healthy with the store gone: %d, want 200", r.status)
	}
	self := get(t, nil, srv.url+SelfMetricsPath, nil)
	if !strings.Contains(self.body, "promstore_store_errors_total 1") {
		t.Errorf("store error not counted:\n%s", grepLines(self.body, "store_errors"))
	}
	if err := os.Rename(moved, dir); err != nil {
		t.Fatal(err)
	}
	if r := get(t, nil, srv.url+"/metrics", nil); r.status != 200 || r.body != want {
		t.Errorf("store back: status %d, body equal %v", r.status, r.body == want)
	}
	if r := get(t, nil, srv.url+"/-/ready", nil); r.status != 200 {
		t.Errorf("/-/ready with the store back: %d", r.status)
	}
}

func TestEndpoints(t *testing.T) {
	_, st := sampleStore(t)
	srv := start(t, Options{Store: st, StoreName: "dir test", Version: "1.2.3", TelemetryPath: "/store"})
	for _, tc := range []struct {
		path     string
		status   int
		contains string
	}{
		{"/", 200, `href="/store"`},
		{"/", 200, "1.2.3"},
		{"/-/healthy", 200, "healthy"},
		{"/-/ready", 200, "ready"},
		{"/store", 200, "# TYPE "},
		{"/metrics", 404, ""},
		{"/nope", 404, ""},
		{SelfMetricsPath, 200, "go_goroutines"},
		{SelfMetricsPath, 200, "process_resident_memory_bytes"},
		{SelfMetricsPath, 200, `promstore_build_info{goversion=`},
	} {
		r := get(t, nil, srv.url+tc.path, nil)
		if r.status != tc.status || !strings.Contains(r.body, tc.contains) {
			t.Errorf("GET %s: status %d, want %d containing %q; body:\n%.300s", tc.path, r.status, tc.status, tc.contains, r.body)
		}
	}
}

func TestSelfMetrics(t *testing.T) {
	_, st := sampleStore(t)
	fams := families(t, st)
	want := renderText(t, fams)

	t.Run("kept apart by default", func(t *testing.T) {
		srv := start(t, Options{Store: st})
		r := get(t, nil, srv.url+"/metrics", nil)
		if strings.Contains(r.body, "promstore_") || strings.Contains(r.body, "go_goroutines") {
			t.Errorf("own metrics leaked into the telemetry path")
		}
		self := get(t, nil, srv.url+SelfMetricsPath, nil)
		for _, m := range []string{
			`promstore_scrape_duration_seconds_count{outcome="ok"} 1`,
			"promstore_store_reads_total 1",
			"promstore_shards_read 33",
			fmt.Sprintf("promstore_output_samples %d", countSamples(fams)),
			"promstore_shard_errors_total 0",
			"promstore_store_errors_total 0",
		} {
			if !strings.Contains(self.body, m) {
				t.Errorf("self metrics lack %q:\n%s", m, grepLines(self.body, "promstore_"))
			}
		}
	})

	t.Run("appended when asked", func(t *testing.T) {
		srv := start(t, Options{Store: st, SelfMetricsInTelemetry: true})
		r := get(t, nil, srv.url+"/metrics", nil)
		if !strings.HasPrefix(r.body, want) || !strings.Contains(r.body[len(want):], "\npromstore_store_reads_total 1\n") {
			t.Errorf("text: store output then own metrics expected; tail:\n%.500s", r.body[min(len(want), len(r.body)):])
		}
	})

	t.Run("appended output parses back", func(t *testing.T) {
		// A small store: the OpenMetrics parser is slow on big inputs.
		st := smallStore(t)
		fams := families(t, st)
		want := renderText(t, fams)
		srv := start(t, Options{Store: st, SelfMetricsInTelemetry: true})
		r := get(t, nil, srv.url+"/metrics", nil)
		if !strings.HasPrefix(r.body, want) || !strings.Contains(r.body[len(want):], "\npromstore_store_reads_total 1\n") {
			t.Errorf("text: store output then own metrics expected; tail:\n%.500s", r.body[min(len(want), len(r.body)):])
		}
		decodeAll(t, strings.NewReader(r.body), expfmt.FmtText)
		om := get(t, nil, srv.url+"/metrics", map[string]string{"Accept": "application/openmetrics-text;version=1.0.0"})
		if !strings.HasSuffix(om.body, "# EOF\n") || strings.Count(om.body, "# EOF") != 1 || !strings.Contains(om.body, "promstore_store_reads_total") {
			t.Errorf("OpenMetrics with own metrics must hold them before a single final # EOF")
		}
		// expfmt's OpenMetrics parser takes many seconds on this much
		// output under -race: check the property it failed on instead
		// (each family's metadata once), and parse the text back (a
		// protobuf Accept header gets text, as from Python).
		seen := map[string]bool{}
		for _, l := range strings.Split(om.body, "\n") {
			if f, ok := strings.CutPrefix(l, "# TYPE "); ok {
				name, _, _ := strings.Cut(f, " ")
				if seen[name] {
					t.Errorf("OpenMetrics: family %s declared twice", name)
				}
				seen[name] = true
			}
		}
		if !seen["jobs"] || !seen["promstore_store_reads"] || !seen["go_goroutines"] {
			t.Errorf("OpenMetrics families lack jobs, promstore_store_reads or go_goroutines: %v", seen)
		}
		pb := get(t, nil, srv.url+"/metrics", map[string]string{"Accept": "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"})
		got := names(decodeAll(t, strings.NewReader(pb.body), expfmt.Format(pb.header.Get("Content-Type"))))
		for _, w := range []string{"jobs_total/COUNTER", "promstore_store_reads_total/COUNTER", "go_goroutines/GAUGE"} {
			if !strings.Contains(" "+got+" ", " "+w+" ") {
				t.Errorf("text for a protobuf Accept header: decoded families lack %s: %s", w, got)
			}
		}
	})
}

// smallStore writes a store of one counter shard with the file store's
// writer.
func smallStore(t *testing.T) *filestore.Store {
	t.Helper()
	ctx := context.Background()
	st, err := filestore.Open(ctx, t.TempDir(), filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := store.ParseKey(store.EncodeKey("jobs", "jobs_total", []store.Label{{Name: "queue", Value: "a"}}, "Jobs done."))
	if err != nil {
		t.Fatal(err)
	}
	id := store.ShardID{Kind: store.KindCounter, PID: "4100"}
	if err := st.WriteShard(ctx, id, []store.Sample{{Shard: id, Key: k, Value: 3}}); err != nil {
		t.Fatal(err)
	}
	return st
}

func countSamples(fams []aggregate.Family) int {
	n := 0
	for i := range fams {
		n += len(fams[i].Samples)
	}
	return n
}

func TestTLSAndBasicAuth(t *testing.T) {
	_, st := sampleStore(t)
	want := renderText(t, families(t, st))
	dir := t.TempDir()
	_, _, pool := testenv.SelfSignedCert(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "web.yml")
	yml := "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  alice: " + string(hash) + "\n"
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := start(t, Options{Store: st, WebConfigFile: cfg})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	do := func(user, pass string) response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.url+"/metrics", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.TLS == nil {
			t.Errorf("response not over TLS")
		}
		return response{resp.StatusCode, resp.Header, string(b)}
	}
	if r := do("alice", "s3cret pass"); r.status != 200 || r.body != want {
		t.Errorf("right password: status %d, body equal %v", r.status, r.body == want)
	}
	if r := do("alice", "wrong"); r.status != http.StatusUnauthorized {
		t.Errorf("wrong password: status %d, want 401", r.status)
	}
	if r := do("", ""); r.status != http.StatusUnauthorized {
		t.Errorf("no credentials: status %d, want 401", r.status)
	}
	// Plain HTTP to the TLS port is refused.
	plainURL := "http://" + strings.TrimPrefix(srv.url, "https://") + "/metrics"
	if resp, err := http.Get(plainURL); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP served the store")
		}
	}
	if l := srv.logs.String(); strings.Contains(l, "s3cret") {
		t.Errorf("password in logs")
	}
}

func TestBadOptions(t *testing.T) {
	_, st := sampleStore(t)
	badCfg := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(badCfg, []byte("tls_server_config:\n  cert_file: /nonexistent/cert.pem\n  key_file: /nonexistent/key.pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no store", Options{}, "no store"},
		{"relative path", Options{Store: st, TelemetryPath: "metrics"}, "must start with /"},
		{"reserved path", Options{Store: st, TelemetryPath: "/-/metrics"}, "reserved"},
		{"bad web config", Options{Store: st, WebConfigFile: badCfg}, badCfg},
		{"missing web config", Options{Store: st, WebConfigFile: badCfg + ".missing"}, "web.yml.missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestListenError(t *testing.T) {
	_, st := sampleStore(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srv, err := New(Options{Store: st, ListenAddresses: []string{l.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Errorf("Run on a busy port: %v, want an error naming %s", err, l.Addr())
	}
}

func TestForStopsByItself(t *testing.T) {
	_, st := sampleStore(t)
	srv, err := New(Options{Store: st, ListenAddresses: []string{"127.0.0.1:0"}, For: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	begin := time.Now()
	go func() { done <- srv.Run(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		if took := time.Since(begin); took < 300*time.Millisecond {
			t.Errorf("stopped after %s, before --for 300ms", took)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("--for 300ms: server still running after 20s")
	}
}

func TestGracefulShutdownFinishesScrapeInFlight(t *testing.T) {
	_, st := sampleStore(t)
	want := renderText(t, families(t, st))
	g := newGate(st)
	srv := start(t, Options{Store: g, ShutdownGrace: 20 * time.Second})
	resc := make(chan response, 1)
	go func() { resc <- get(t, nil, srv.url+"/metrics", nil) }()
	waitEntered(t, g)
	srv.cancel() // as SIGTERM does
	// New connections are refused once shutdown began, the scrape waits.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.url, "http://"), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still open after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-srv.done:
		t.Fatalf("Run returned (%v) with a scrape in flight", srv.err)
	case <-time.After(200 * time.Millisecond):
	}
	close(g.release)
	r := <-resc
	if r.status != 200 || r.body != want {
		t.Errorf("in-flight scrape: status %d, body equal %v", r.status, r.body == want)
	}
	if err := srv.wait(t); err != nil {
		t.Errorf("Run after graceful shutdown: %v", err)
	}
}

func TestShutdownGraceCutsOffSlowScrape(t *testing.T) {
	_, st := sampleStore(t)
	g := newGate(st)
	srv := start(t, Options{Store: g, ShutdownGrace: 200 * time.Millisecond})
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.url + "/metrics")
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		errc <- err
	}()
	waitEntered(t, g)
	err := srv.stop(t)
	if err == nil || !strings.Contains(err.Error(), "--shutdown-grace") {
		t.Errorf("Run: %v, want an error about --shutdown-grace", err)
	}
	select {
	case <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("cut-off scrape never ended")
	}
	// The logs say the server cut the scrape off, not that the scraper
	// hung up or the store failed.
	waitUntil(t, func() bool { return strings.Contains(srv.logs.String(), "shutting down and --shutdown-grace ran out") }, func() string {
		return "no log of the scrape cut off:\n" + srv.logs.String()
	})
	if l := srv.logs.String(); strings.Contains(l, "hung up") || strings.Contains(l, "store read failed") || strings.Contains(l, "level=ERROR") {
		t.Errorf("the cut-off is logged as the scraper's or the store's failure:\n%s", l)
	}
}
