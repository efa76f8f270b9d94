package commands

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/promstore/promstore/internal/testenv"
)

// pythonOpenMetrics prints openmetrics.generate_latest of a
// MultiProcessCollector over DIR: what the Python app serves Prometheus.
const pythonOpenMetrics = `
import os, sys
os.environ['PROMETHEUS_MULTIPROC_DIR'] = sys.argv[1]
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.openmetrics.exposition import generate_latest
r = CollectorRegistry()
multiprocess.MultiProcessCollector(r)
sys.stdout.buffer.write(generate_latest(r))
`

// TestPromtoolLint runs `promtool check metrics` on dump's output and on
// Python's for the same store: promstore may introduce no problem of its
// own. Text: every file fixture against the expected.prom Python printed
// (in the release's spelling). OpenMetrics: the stores the installed
// client reads (the 0.16 fixture and a store it writes now) against its
// own OpenMetrics output — promtool 2.x reads the text format only, so
// both fail alike on OpenMetrics' escaped quotes in help; what is checked
// is that promtool says the same of both.
func TestPromtoolLint(t *testing.T) {
	testenv.PromtoolPath(t)
	fx := testenv.FixturesDir(t)
	texts := []struct{ fixture, client, expected string }{
		{"python-0.16-files", "0.16", "expected.prom"},
		{"python-0.25-files", "0.25", "expected.prom"},
		{"python-0.26-files", "latest", "expected.prom"},
		{"python-0.26-files", "0.25", "expected-0.25.prom"},
	}
	for _, tt := range texts {
		t.Run("text/"+tt.fixture+"/"+tt.client, func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, "dump", "--dir", filepath.Join(fx, tt.fixture, "store"), "--python-client", tt.client)
			if code != 0 {
				t.Fatalf("dump: exit %d: %s", code, errOut)
			}
			want, err := os.ReadFile(filepath.Join(fx, tt.fixture, tt.expected))
			if err != nil {
				t.Fatal(err)
			}
			got, gotCode := testenv.Promtool(t, []byte(out))
			ref, refCode := testenv.Promtool(t, want)
			if gotCode != refCode || !slices.Equal(got, ref) {
				t.Errorf("promtool on dump (exit %d):\n%v\non Python's output (exit %d):\n%v", gotCode, got, refCode, ref)
			}
			if gotCode == 1 {
				t.Errorf("promtool cannot parse dump's text: %v", got)
			}
		})
	}
	client := testenv.PythonClient(t).String()
	fresh := t.TempDir()
	pythonWrite(t, fresh, "--procs", "2", "--series", "8", "--seed", "5")
	for name, dir := range map[string]string{"python-0.16-files": testenv.CopyStore(t, filepath.Join(fx, "python-0.16-files", "store")), "written now": fresh} {
		t.Run("openmetrics/"+name, func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, "dump", "--dir", dir, "--python-client", client, "-o", "openmetrics")
			if code != 0 {
				t.Fatalf("dump: exit %d: %s", code, errOut)
			}
			want := testenv.RunPython(t, nil, pythonOpenMetrics, nil, dir)
			got, gotCode := testenv.Promtool(t, []byte(out))
			ref, refCode := testenv.Promtool(t, want)
			// The sample order differs, so a parse error's line does.
			lineNo := regexp.MustCompile(`in line [0-9]+`)
			for i := range got {
				got[i] = lineNo.ReplaceAllString(got[i], "in line N")
			}
			for i := range ref {
				ref[i] = lineNo.ReplaceAllString(ref[i], "in line N")
			}
			if gotCode != refCode || !slices.Equal(got, ref) {
				t.Errorf("promtool on dump -o openmetrics (exit %d):\n%v\non Python's OpenMetrics (exit %d):\n%v", gotCode, got, refCode, ref)
			}
			// And the lines are Python's, byte for byte.
			if g, w := sortedLines(out), sortedLines(string(want)); g != w {
				t.Errorf("dump -o openmetrics lines differ from Python's OpenMetrics")
			}
		})
	}
}
