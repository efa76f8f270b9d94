package commands

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestUsageErrorsAreTyped: what the argument validators, the flag parser
// and the command tree reject exits 2 with the pointer to --help; an
// error of the system whose text reads "invalid argument" (EINVAL) is an
// error, exit 1, without it.
func TestUsageErrorsAreTyped(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
		help string // the command whose help the hint names
	}{
		{"unknown command", []string{"dumb"}, `unknown command "dumb"`, "promstore"},
		{"positional to ls", []string{"ls", "--dir", dir, "extra"}, `unknown command "extra"`, "promstore ls"},
		{"positional to migrate", []string{"migrate", "file-to-redis", "extra"}, `unknown command "extra"`, "promstore migrate file-to-redis"},
		{"unknown direction", []string{"migrate", "sideways"}, `unknown command "sideways" for "promstore migrate"`, "promstore migrate"},
		{"unknown shell", []string{"completion", "tcsh"}, `unknown command "tcsh" for "promstore completion"`, "promstore completion"},
		{"diff with one store", []string{"diff", dir}, "accepts 2 arg(s), received 1", "promstore diff"},
		{"bad flag value", []string{"dump", "--dir", dir, "--strict=maybe"}, "invalid argument", "promstore dump"},
		{"unknown flag", []string{"ls", "--bogus"}, "unknown flag: --bogus", "promstore ls"},
		{"unknown help topic", []string{"help", "dumb"}, `unknown help topic "dumb"`, "promstore help"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, nil, tc.args...)
			if code != ExitUsage || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "Run '"+tc.help+" --help'") {
				t.Errorf("exit %d, stderr %q; want exit %d naming %q and %q", code, errOut, ExitUsage, tc.want, tc.help+" --help")
			}
		})
	}
	// help with a known topic (or none) prints that help.
	for _, args := range [][]string{{"help"}, {"help", "serve"}, {"help", "migrate", "file-to-redis"}} {
		code, out, errOut := runCLI(t, nil, args...)
		if code != ExitOK || !strings.Contains(out, "Usage:") || errOut != "" {
			t.Errorf("promstore %v: exit %d, stdout %q, stderr %q; want the help, exit 0", args, code, out, errOut)
		}
	}
	// A command that groups others, run alone, prints its help.
	for _, args := range [][]string{{"migrate"}, {"completion"}} {
		code, out, errOut := runCLI(t, nil, args...)
		if code != ExitOK || !strings.Contains(out, "Available Commands:") {
			t.Errorf("promstore %s: exit %d, stdout %q, stderr %q; want its help, exit 0", args[0], code, out, errOut)
		}
	}
	t.Run("EINVAL", func(t *testing.T) {
		f, _, errOut := testFactory(nil)
		err := fmt.Errorf("read shard x.db: %w", &os.PathError{Op: "read", Path: "x.db", Err: syscall.EINVAL})
		if !strings.Contains(err.Error(), "invalid argument") {
			t.Fatalf("EINVAL reads %q here", err)
		}
		if code := exitCode(context.Background(), f, err, "promstore"); code != ExitError || strings.Contains(errOut.String(), "--help") {
			t.Errorf("exit %d, stderr %q; want %d without the usage hint", code, errOut, ExitError)
		}
	})
}

// TestMissingDirNamesItsSource: a directory that cannot be opened is named
// with where it came from when that is the environment, not a flag.
func TestMissingDirNamesItsSource(t *testing.T) {
	missing := t.TempDir() + "/gone"
	for _, tc := range []struct {
		env  map[string]string
		args []string
		hint bool
	}{
		{map[string]string{"PROMETHEUS_MULTIPROC_DIR": missing}, []string{"dump"}, true},
		{map[string]string{"prometheus_multiproc_dir": missing}, []string{"ls"}, true},
		{nil, []string{"dump", "--dir", missing}, false},
	} {
		code, _, errOut := runCLI(t, tc.env, tc.args...)
		hint := strings.Contains(errOut, "names)")
		if code != ExitError || !strings.Contains(errOut, missing) || hint != tc.hint {
			t.Errorf("%v %v: exit %d, stderr %q; want exit %d naming %s, the environment variable: %v", tc.env, tc.args, code, errOut, ExitError, missing, tc.hint)
		}
	}
}

// TestVersionFlag: 'promstore --version' (what Prometheus and its
// exporters answer to) prints what 'promstore version' prints; it was an
// unknown flag (exit 2).
func TestVersionFlag(t *testing.T) {
	code, want, _ := runCLI(t, nil, "version")
	if code != ExitOK || !strings.HasPrefix(want, "promstore ") {
		t.Fatalf("promstore version: exit %d, %q", code, want)
	}
	code, got, errOut := runCLI(t, nil, "--version")
	if code != ExitOK || got != want {
		t.Errorf("promstore --version: exit %d, stdout %q, stderr %q; want exit 0 and %q", code, got, errOut, want)
	}
}
