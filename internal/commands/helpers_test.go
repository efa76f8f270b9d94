package commands

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/testenv"
)

// testFactory returns a Factory with buffers for streams and the given
// environment (nothing from the real one).
func testFactory(env map[string]string) (*Factory, *bytes.Buffer, *bytes.Buffer) {
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	f := &Factory{
		IO:     &IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut},
		Getenv: func(k string) string { return env[k] },
		Now:    time.Now,
	}
	return f, out, errOut
}

// runCLI runs promstore with args through Execute and returns the exit
// status, stdout and stderr.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	f, out, errOut := testFactory(env)
	code := Execute(context.Background(), f, args)
	return code, out.String(), errOut.String()
}

// copyDir copies the regular files of src into a new temp dir.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		copyFile(t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
	}
	return dst
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// pystore returns the path of scripts/pystore.py.
func pystore(t *testing.T) string {
	t.Helper()
	return filepath.Join(testenv.RepoRoot(t), "scripts", "pystore.py")
}

// pythonWrite writes a store into dir with the real prometheus_client in
// procs separate processes.
func pythonWrite(t *testing.T, dir string, args ...string) {
	t.Helper()
	py := testenv.Python(t)
	runCmd(t, py, append([]string{pystore(t), "write", dir}, args...)...)
}

// pythonCollect returns what Python's MultiProcessCollector serves for dir.
func pythonCollect(t *testing.T, dir string) []byte {
	t.Helper()
	py := testenv.Python(t)
	return runCmd(t, py, pystore(t), "collect", dir)
}
