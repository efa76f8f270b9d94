package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PrometheusPath returns the prometheus binary (Debian's package installs
// /usr/bin/prometheus), or skips the test (fails it in CI) without one.
func PrometheusPath(t testing.TB) string {
	t.Helper()
	return binary(t, "prometheus")
}

// binary finds /usr/bin/name, then name on PATH; without it the test is
// skipped (failed in CI).
func binary(t testing.TB, name string) string {
	t.Helper()
	for _, c := range []string{"/usr/bin/" + name, name} {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	Unavailable(t, "no %s binary (apt-get install prometheus)", name)
	return ""
}

// Prometheus is a real Prometheus server started for a test, with its
// storage in a temporary directory, listening on a free loopback port.
type Prometheus struct {
	URL string // http://127.0.0.1:port
	log *bytes.Buffer
}

// StartPrometheus starts Prometheus scraping each job's target (host:port,
// path /metrics) every second, and waits until it is ready. The server is
// stopped when the test ends.
func StartPrometheus(t testing.TB, targets map[string]string) *Prometheus {
	t.Helper()
	bin := PrometheusPath(t)
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n")
	for job, target := range targets {
		fmt.Fprintf(&cfg, "  - job_name: %q\n    static_configs:\n      - targets: [%q]\n", job, target)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	port, err := freePort(false)
	if err != nil {
		t.Fatal(err)
	}
	p := &Prometheus{URL: "http://127.0.0.1:" + strconv.Itoa(port), log: &bytes.Buffer{}}
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-done:
			t.Fatalf("prometheus exited:\n%s", p.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 60s:\n%s", p.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Log returns what Prometheus logged so far.
func (p *Prometheus) Log() string { return p.log.String() }

// apiGet calls an HTTP API endpoint and decodes its data field into v.
func (p *Prometheus) apiGet(t testing.TB, path string, q url.Values, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Status != "success" {
		t.Fatalf("prometheus %s?%s: status %d, %s %s: %s", path, q.Encode(), resp.StatusCode, env.Status, env.Error, body)
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		t.Fatalf("prometheus %s: data: %v", path, err)
	}
}

// Version returns the server's version ("2.42.0+ds").
func (p *Prometheus) Version(t testing.TB) string {
	t.Helper()
	var data struct {
		Version string `json:"version"`
	}
	p.apiGet(t, "/api/v1/status/buildinfo", nil, &data)
	return data.Version
}

// PromSample is one element of an instant vector.
type PromSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [time, "value"]
}

// Float is the sample's value.
func (s PromSample) Float() float64 {
	v, _ := s.Value[1].(string)
	f, _ := strconv.ParseFloat(v, 64)
	return f
}

// Query evaluates an instant query now and returns its vector.
func (p *Prometheus) Query(t testing.TB, query string) []PromSample {
	t.Helper()
	var data struct {
		ResultType string       `json:"resultType"`
		Result     []PromSample `json:"result"`
	}
	p.apiGet(t, "/api/v1/query", url.Values{"query": {query}}, &data)
	if data.ResultType != "vector" {
		t.Fatalf("query %s: result type %s, want vector", query, data.ResultType)
	}
	return data.Result
}

// Series returns the label sets of every series matching match held
// since start.
func (p *Prometheus) Series(t testing.TB, match string, start time.Time) []map[string]string {
	t.Helper()
	var data []map[string]string
	p.apiGet(t, "/api/v1/series", url.Values{"match[]": {match}, "start": {strconv.FormatInt(start.Unix()-60, 10)}}, &data)
	return data
}

// PythonApp is a Python WSGI app serving make_wsgi_app over a registry
// holding a MultiProcessCollector of a directory: what a gunicorn app
// exposes at /metrics.
type PythonApp struct {
	Addr string // 127.0.0.1:port
}

const pythonAppScript = `
import os, sys
os.environ['PROMETHEUS_MULTIPROC_DIR'] = sys.argv[1]
from prometheus_client import CollectorRegistry, make_wsgi_app, multiprocess
from wsgiref.simple_server import make_server, WSGIRequestHandler, WSGIServer
from socketserver import ThreadingMixIn
class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass
class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry)
httpd = make_server('127.0.0.1', 0, make_wsgi_app(registry), server_class=Server, handler_class=Quiet)
print(httpd.server_port, flush=True)
httpd.serve_forever()
`

// StartPythonApp starts the app over dir; it is stopped when the test
// ends.
func StartPythonApp(t testing.TB, dir string) *PythonApp {
	t.Helper()
	out := startPython(t, pythonAppScript, dir)
	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("python app did not print its port: %v", err)
	}
	return &PythonApp{Addr: "127.0.0.1:" + strings.TrimSpace(line)}
}

// startPython runs a Python script with args in the background, killing
// it when the test ends, and returns its standard output.
func startPython(t testing.TB, script string, args ...string) *bufio.Reader {
	t.Helper()
	py := Python(t)
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONIOENCODING=utf-8")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start python: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("python stderr:\n%s", stderr.String())
		}
	})
	return bufio.NewReader(stdout)
}

// StartPythonWriter starts a Python process that writes metrics to dir
// with prometheus_client in multiprocess mode until the test ends, and
// returns once every series it writes exists. script is Python source
// whose sys.argv[1] is dir; it must print a line once its series exist,
// then keep writing.
func StartPythonWriter(t testing.TB, dir, script string) {
	t.Helper()
	out := startPython(t, script, dir)
	if _, err := out.ReadString('\n'); err != nil {
		t.Fatalf("python writer did not start: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
}

// PromtoolPath returns the promtool binary (Debian's prometheus package
// installs it), or skips the test (fails it in CI) without one.
func PromtoolPath(t testing.TB) string {
	t.Helper()
	return binary(t, "promtool")
}

// Promtool runs `promtool check metrics` on an exposition and returns its
// report (stdout and stderr, lines sorted) and exit status: 0 clean, 3
// lint problems, 1 a parse error.
func Promtool(t testing.TB, expo []byte) ([]string, int) {
	t.Helper()
	cmd := exec.Command(PromtoolPath(t), "check", "metrics")
	cmd.Stdin = bytes.NewReader(expo)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("promtool: %v", err)
		}
		code = ee.ExitCode()
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return lines, code
}
