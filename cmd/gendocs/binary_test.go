package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/commands"
	"github.com/promstore/promstore/internal/testenv"
)

// asPromstore is the environment variable under which this test binary
// runs as promstore itself (see TestMain), so that the tests of the
// command line need no second build of the whole program.
const asPromstore = "PROMSTORE_GENDOCS_TEST_AS_PROMSTORE"

var binDir struct {
	once sync.Once
	dir  string
	err  error
}

// promstoreBinary returns a directory holding a "promstore" that is this
// test binary run as promstore (see TestMain); the environment must
// carry asPromstore=1 (see promstoreEnv). The release build itself, with
// goreleaser.yaml's flags, is tested by `make test-long`.
func promstoreBinary(t *testing.T) string {
	t.Helper()
	binDir.once.Do(func() {
		var self string
		if self, binDir.err = os.Executable(); binDir.err != nil {
			return
		}
		if binDir.dir, binDir.err = os.MkdirTemp("", "promstore-bin-"); binDir.err != nil {
			return
		}
		binDir.err = os.Symlink(self, filepath.Join(binDir.dir, "promstore"))
	})
	if binDir.err != nil {
		t.Fatal(binDir.err)
	}
	return binDir.dir
}

// promstoreEnv is the environment of a promstore run by a test: the test
// process's without the variables that name a store, with asPromstore.
func promstoreEnv() []string { return append(cleanEnv(), asPromstore+"=1") }

func TestMain(m *testing.M) {
	if os.Getenv(asPromstore) == "1" {
		os.Exit(commands.Main())
	}
	code := m.Run()
	if binDir.dir != "" {
		os.RemoveAll(binDir.dir)
	}
	os.Exit(code)
}

// run runs promstore (this test binary as promstore) and returns its
// stdout.
func run(t *testing.T, args ...string) string {
	t.Helper()
	return runBinary(t, filepath.Join(promstoreBinary(t), "promstore"), promstoreEnv(), args...)
}

// runBinary runs bin with env and returns its stdout.
func runBinary(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("promstore %q: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

// cleanEnv is the test process's environment without the variables that
// name a store.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir", "PROMETHEUS_REDIS_URL", "REDIS_HOST":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// The completion scripts committed are what the binary's own (cobra's
// default) `completion` command prints.
func TestCompletionCommandMatchesCommitted(t *testing.T) {
	root := testenv.RepoRoot(t)
	for shell, name := range completionFiles {
		got := run(t, "completion", shell)
		want, err := os.ReadFile(filepath.Join(root, completionsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("`promstore completion %s` differs from %s/%s; run `%s`", shell, completionsDir, name, regenerate)
		}
	}
}

// completeValues parses cobra's __complete output into values (without
// descriptions) and the directive line.
func completeValues(out string) ([]string, string) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var vals []string
	for _, l := range lines[:len(lines)-1] {
		v, _, _ := strings.Cut(l, "\t")
		vals = append(vals, v)
	}
	return vals, lines[len(lines)-1]
}

func TestCompleteProtocol(t *testing.T) {
	sample := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"d"}, []string{"dump"}},
		{[]string{""}, []string{"cleanup", "completion", "dump", "help", "ls", "migrate", "serve", "top", "version"}},
		{[]string{"completion", ""}, []string{"bash", "fish", "powershell", "zsh"}},
		{[]string{"dump", "--format", ""}, []string{"text", "openmetrics", "json"}},
		{[]string{"dump", "--dir", sample, "--match", "app_re"}, []string{"app_requests"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			got, _ := completeValues(run(t, append([]string{"__complete"}, tt.args...)...))
			if !containsAll(got, tt.want) {
				t.Errorf("promstore __complete %q = %q, want %q among them", tt.args, got, tt.want)
			}
		})
	}
	got, _ := completeValues(run(t, "__complete", "du"))
	if len(got) != 1 {
		t.Errorf("promstore __complete du = %q, want only dump", got)
	}
}

func containsAll(have, want []string) bool {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

// bashCompletion is the bash-completion package's loader, which the
// generated script needs (as cobra's `completion bash` help says) and
// which loads /usr/share/bash-completion/completions/promstore, where the
// deb and rpm packages put it.
const bashCompletion = "/usr/share/bash-completion/bash_completion"

// TestBashCompletionScript installs completions/promstore.bash the way the
// packages do (as bash-completion/completions/promstore, here under
// XDG_DATA_HOME), lets bash-completion load it in a real bash with the
// built binary on PATH, and completes as a TAB would.
func TestBashCompletionScript(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		testenv.Unavailable(t, "bash not found: %v", err)
	}
	if _, err := os.Stat(bashCompletion); err != nil {
		testenv.Unavailable(t, "the bash-completion package is not installed: %v", err)
	}
	root := testenv.RepoRoot(t)
	data := t.TempDir()
	if err := os.MkdirAll(filepath.Join(data, "bash-completion", "completions"), 0o755); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(root, completionsDir, "promstore.bash"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "bash-completion", "completions", "promstore"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	sample := filepath.Join(root, "testdata", "sample-store")
	tests := []struct {
		words []string // the command line; the last word is being completed
		want  []string
		only  bool // want is the whole answer
	}{
		{[]string{"promstore", "d"}, []string{"diff", "dump"}, true},
		{[]string{"promstore", "v"}, []string{"version"}, true},
		{[]string{"promstore", "completion", ""}, []string{"bash", "fish", "powershell", "zsh"}, true},
		{[]string{"promstore", "dump", "--format", ""}, []string{"json", "openmetrics", "text"}, true},
		{[]string{"promstore", "dump", "--dir", sample, "--match", "app_re"}, []string{"app_requests"}, true},
		{[]string{"promstore", "dump", "--dir", sample, "--match", "app_gauge_live"}, []string{"app_gauge_liveall", "app_gauge_livemax", "app_gauge_livemin", "app_gauge_livesum"}, true},
		{[]string{"promstore", "dump", "--st"}, []string{"--strict"}, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.words, " "), func(t *testing.T) {
			t.Parallel()
			got := bashComplete(t, bash, data, tt.words)
			sort.Strings(got)
			want := append([]string(nil), tt.want...)
			sort.Strings(want)
			if tt.only && strings.Join(got, " ") != strings.Join(want, " ") || !containsAll(got, want) {
				t.Errorf("bash completes %q to %q, want %q", tt.words, got, want)
			}
		})
	}
}

// bashComplete loads bash-completion, has it load promstore's completion
// from dataDir, fills COMP_WORDS as readline would for a TAB at the end of
// words, calls the function the script registered with `complete -F`, and
// returns COMPREPLY's values without descriptions.
func bashComplete(t *testing.T, bash, dataDir string, words []string) []string {
	t.Helper()
	var quoted []string
	for _, w := range words {
		quoted = append(quoted, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
	}
	prog := fmt.Sprintf(`source %s
__load_completion promstore || { echo "bash-completion did not load promstore's completion" >&2; exit 3; }
spec=$(complete -p promstore) || { echo "no completion registered for promstore" >&2; exit 3; }
fn=$(sed -n 's/.* -F \([^ ]*\) .*/\1/p' <<<"$spec")
[ -n "$fn" ] || { echo "no -F function in: $spec" >&2; exit 3; }
COMP_WORDS=(%s)
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
COMP_TYPE=9
COLUMNS=200
"$fn" promstore "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" 2>/dev/null
printf '%%s\n' "${COMPREPLY[@]}"
`, bashCompletion, strings.Join(quoted, " "))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "--norc", "--noprofile", "-c", prog)
	cmd.Env = append(promstoreEnv(), "XDG_DATA_HOME="+dataDir, "BASH_COMPLETION_USER_DIR=",
		"PATH="+promstoreBinary(t)+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("bash: %v\n%s", err, errb.String())
	}
	var vals []string
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			vals = append(vals, f[0])
		}
	}
	return vals
}
