package commands

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

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

// parseCmd builds a command with newCmd and runs it on args with a run
// function that captures its options: the flag-parsing half of a command's
// tests. With wantErr set, the run must fail with an error containing it
// and parseCmd returns nil; otherwise it returns the captured options.
func parseCmd[O any](t *testing.T, env map[string]string, newCmd func(*Factory, func(context.Context, *O) error) *cobra.Command, args []string, wantErr string) *O {
	t.Helper()
	f, _, _ := testFactory(env)
	var got *O
	cmd := newCmd(f, func(_ context.Context, o *O) error { got = o; return nil })
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("args %q: err = %v, want one containing %q", args, err, wantErr)
		}
		return nil
	}
	if err != nil {
		t.Fatalf("args %q: %v", args, err)
	}
	if got == nil {
		t.Fatalf("args %q: run function not called", args)
	}
	return got
}
