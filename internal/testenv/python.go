package testenv

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/pyclient"
)

var python struct {
	once sync.Once
	path string
	why  string
}

// pythonCandidates are tried in order: Debian's interpreter has
// prometheus_client, the python3 first on PATH may not.
var pythonCandidates = []string{"/usr/bin/python3", "python3"}

// Python returns the path of a python3 that can import prometheus_client,
// trying /usr/bin/python3 first, then python3 on PATH; without one the
// test is skipped (failed in CI). The answer is computed once per process.
func Python(t testing.TB) string {
	t.Helper()
	python.once.Do(func() {
		var tried []string
		for _, c := range pythonCandidates {
			p, err := exec.LookPath(c)
			if err != nil {
				tried = append(tried, c+": "+err.Error())
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			out, err := exec.CommandContext(ctx, p, "-c", "import prometheus_client").CombinedOutput()
			cancel()
			if err != nil {
				tried = append(tried, p+": "+err.Error()+": "+string(bytes.TrimSpace(out)))
				continue
			}
			python.path = p
			return
		}
		python.why = "no python3 that imports prometheus_client (tried: "
		for i, s := range tried {
			if i > 0 {
				python.why += "; "
			}
			python.why += s
		}
		python.why += ")"
	})
	if python.path == "" {
		Unavailable(t, "%s", python.why)
	}
	return python.path
}

// RunPython runs script (Python source, passed with -c) with the
// interpreter Python returns, the current environment plus env
// ("NAME=value"), and args as sys.argv[1:]. It returns the standard output
// and fails the test, showing the standard error, when the script fails.
// A nil ctx means no deadline beyond the test's own.
func RunPython(t testing.TB, ctx context.Context, script string, env []string, args ...string) []byte {
	t.Helper()
	py := Python(t)
	if ctx == nil {
		ctx = context.Background()
	}
	cmd := exec.CommandContext(ctx, py, append([]string{"-c", script}, args...)...)
	cmd.Env = append(append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONIOENCODING=utf-8"), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("python script failed: %v\nstderr:\n%s", err, stderr.String())
	}
	return stdout.Bytes()
}

var pythonClient struct {
	once sync.Once
	v    pyclient.Version
	err  string
}

// PythonClient returns the release of the prometheus_client that Python
// imports (Debian's is 0.16): tests that compare promstore's output with
// that client's pass it as --python-client. Skipped (failed in CI) like
// Python.
func PythonClient(t testing.TB) pyclient.Version {
	t.Helper()
	py := Python(t)
	pythonClient.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, py, "-c", "import importlib.metadata as m; print(m.version('prometheus_client'))").CombinedOutput()
		if err != nil {
			pythonClient.err = "prometheus_client version: " + err.Error() + ": " + string(bytes.TrimSpace(out))
			return
		}
		v, err := pyclient.Parse(string(bytes.TrimSpace(out)))
		if err != nil {
			pythonClient.err = err.Error()
			return
		}
		pythonClient.v = v
	})
	if pythonClient.err != "" {
		t.Fatalf("%s", pythonClient.err)
	}
	return pythonClient.v
}

// PythonWorker starts a prometheus_client process in multiprocess mode
// over dir that increments the counter jobs_total once and then waits
// (its shard file counter_<pid> in dir mapped, as a worker keeps it), and
// returns its pid. The process ends when the test does.
func PythonWorker(t testing.TB, dir string) string {
	t.Helper()
	script := `
import sys
from prometheus_client import Counter
Counter("jobs", "Jobs.").inc()
print("ready", flush=True)
sys.stdin.read()
`
	cmd := exec.Command(Python(t), "-c", script)
	cmd.Env = append(os.Environ(), "PROMETHEUS_MULTIPROC_DIR="+dir, "PYTHONDONTWRITEBYTECODE=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start python: %v", err)
	}
	t.Cleanup(func() { in.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("python worker: %q %v\nstderr:\n%s", line, err, stderr.String())
	}
	return strconv.Itoa(cmd.Process.Pid)
}
