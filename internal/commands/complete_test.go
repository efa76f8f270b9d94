package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

// completeLines runs cobra's completion protocol (`promstore __complete
// args...`) and returns the offered values (descriptions cut off) and the
// directive line.
func completeLines(t *testing.T, env map[string]string, args ...string) ([]string, string, string) {
	t.Helper()
	code, out, errOut := runCLI(t, env, append([]string{"__complete"}, args...)...)
	if code != ExitOK {
		t.Fatalf("__complete %q: exit %d, stderr:\n%s", args, code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	directive := lines[len(lines)-1]
	var values []string
	for _, l := range lines[:len(lines)-1] {
		v, _, _ := strings.Cut(l, "\t")
		values = append(values, v)
	}
	return values, directive, errOut
}

func TestCompleteMatchFamilies(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		want   []string
		absent []string
	}{
		{
			name: "prefix from --dir",
			args: []string{"dump", "--dir", dir, "--match", "app_re"},
			want: []string{"app_requests"},
		},
		{
			name:   "every family, short flags",
			args:   []string{"dump", "-d", dir, "-m", ""},
			want:   []string{"app_events", "app_gauge_livesum", "app_latency_seconds", "app_payload_bytes", "app_requests", "app_size_bytes"},
			absent: []string{"app_requests_total"},
		},
		{
			name: "store from the environment",
			env:  map[string]string{"PROMETHEUS_MULTIPROC_DIR": dir},
			args: []string{"dump", "--match", "app_s"},
			want: []string{"app_size_bytes"},
		},
		{
			name: "flag after the match flag is still used",
			args: []string{"dump", "--format", "json", "--dir", dir, "--match", "app_payload"},
			want: []string{"app_payload_bytes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, directive, _ := completeLines(t, tt.env, tt.args...)
			if directive != ":4" {
				t.Errorf("directive %q, want :4 (no file completion)", directive)
			}
			set := map[string]bool{}
			for _, g := range got {
				set[g] = true
			}
			for _, w := range tt.want {
				if !set[w] {
					t.Errorf("completions %q lack %q", got, w)
				}
			}
			for _, a := range tt.absent {
				if set[a] {
					t.Errorf("completions %q offer %q", got, a)
				}
			}
			if !sortedStrings(got) {
				t.Errorf("completions not sorted: %q", got)
			}
		})
	}
}

func sortedStrings(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] > s[i] {
			return false
		}
	}
	return true
}

// A store that cannot be opened completes to nothing and prints nothing
// but cobra's own directive note.
func TestCompleteMatchSilentOnErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"missing dir", nil, []string{"dump", "--dir", filepath.Join(t.TempDir(), "nope"), "--match", ""}},
		{"no store at all", nil, []string{"dump", "--match", ""}},
		{"dir and redis both given", nil, []string{"dump", "--dir", t.TempDir(), "--redis-url", "redis://127.0.0.1:1", "--match", ""}},
		{"redis refusing connections", nil, []string{"dump", "--redis-url", "redis://:secret@127.0.0.1:1/0", "--match", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, directive, errOut := completeLines(t, tt.env, tt.args...)
			if len(got) != 0 {
				t.Errorf("completions %q, want none", got)
			}
			if directive != ":4" {
				t.Errorf("directive %q, want :4", directive)
			}
			if strings.Contains(errOut, "promstore") || strings.Contains(errOut, "secret") {
				t.Errorf("stderr says more than the directive:\n%s", errOut)
			}
		})
	}
}

// A store with an unreadable shard still completes the families of the
// readable ones.
func TestCompleteMatchPartialStore(t *testing.T) {
	dir := testenv.CopyStore(t, filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store"))
	if err := os.WriteFile(filepath.Join(dir, "counter_999.db"), []byte("garbage, not a shard"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, _, errOut := completeLines(t, nil, "dump", "--dir", dir, "--match", "app_req")
	if len(got) != 1 || got[0] != "app_requests" {
		t.Errorf("completions %q, want [app_requests]", got)
	}
	if strings.Contains(errOut, "counter_999") {
		t.Errorf("completion reported the broken shard:\n%s", errOut)
	}
}

func TestCompleteFormatValues(t *testing.T) {
	got, directive, _ := completeLines(t, nil, "dump", "--format", "")
	if strings.Join(got, ",") != strings.Join(dumpFormats, ",") || directive != ":4" {
		t.Errorf("dump --format completes %q %s, want %q :4", got, directive, dumpFormats)
	}
}

// TestEveryFormatFlagCompletes: README says --format values complete; every
// command of the tree that has the flag offers its values, not file names.
func TestEveryFormatFlagCompletes(t *testing.T) {
	f, _, _ := testFactory(nil)
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Flags().Lookup("format") == nil {
			return
		}
		n++
		path := strings.Fields(c.CommandPath())[1:]
		got, directive, _ := completeLines(t, nil, append(path, "--format", "")...)
		if len(got) < 2 || got[0] == "" || directive != ":4" {
			t.Errorf("%s --format completes %q %s, want its values and :4 (no files)", c.CommandPath(), got, directive)
		}
	}
	walk(NewRootCmd(f))
	if n < 6 {
		t.Errorf("found %d commands with --format, want at least 6", n)
	}
}

func TestCompletionDescription(t *testing.T) {
	tests := []struct {
		kind store.Kind
		help string
		want string
	}{
		{store.KindCounter, "", "counter"},
		{store.KindGauge, "Temperature.", "gauge: Temperature."},
		{store.KindHistogram, "first line\nsecond line", "histogram: first line"},
		{store.KindSummary, "tab\there", "summary: tab here"},
		{store.KindCounter, strings.Repeat("é", 70), "counter: " + strings.Repeat("é", 59) + "…"},
	}
	for _, tt := range tests {
		if got := completionDescription(tt.kind, tt.help); got != tt.want {
			t.Errorf("completionDescription(%s, %q) = %q, want %q", tt.kind, tt.help, got, tt.want)
		}
	}
}

// TestCompletePythonClient: --python-client completes the releases whose
// output differs from the one before, and latest, on every command that
// has the flag.
func TestCompletePythonClient(t *testing.T) {
	for _, cmd := range []string{"dump", "serve", "top", "diff"} {
		got, directive, _ := completeLines(t, nil, cmd, "--python-client", "")
		if strings.Join(got, ",") != "0.16,0.18,0.23,0.25,0.26,latest" || directive != ":4" {
			t.Errorf("%s --python-client completes %q %s", cmd, got, directive)
		}
	}
}

// TestCompleteDirIsADirectory: every command's --dir completes
// directories only (cobra's directive 16, ShellCompDirectiveFilterDirs),
// as migrate's --dir did; the others offered every file.
func TestCompleteDirIsADirectory(t *testing.T) {
	for _, cmd := range [][]string{{"dump"}, {"ls"}, {"serve"}, {"top"}, {"fsck"}, {"analyze"}, {"cleanup"}, {"migrate", "file-to-redis"}, {"migrate", "redis-to-file"}} {
		for _, flag := range []string{"--dir", "-d"} {
			_, directive, _ := completeLines(t, nil, append(cmd, flag, "")...)
			if directive != ":16" {
				t.Errorf("promstore %s %s: directive %s, want :16 (directories only)", strings.Join(cmd, " "), flag, directive)
			}
		}
	}
}
