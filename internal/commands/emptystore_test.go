package commands

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/storetest"
	"github.com/promstore/promstore/internal/testenv"
)

// TestNoShardsWarns: a directory with no shards (empty, or one of other
// files, as a mistyped path gives) is warned about by every command,
// naming it and saying what a store looks like; dump --strict fails.
func TestNoShardsWarns(t *testing.T) {
	empty := t.TempDir()
	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"dump"}, 0},
		{[]string{"dump", "--strict"}, 1},
		{[]string{"dump", "--raw"}, 0},
		{[]string{"dump", "--match", "^x"}, 0},
		{[]string{"ls"}, 0},
		{[]string{"top", "--once"}, 0},
		{[]string{"cleanup", "--dead-pids", "--dry-run"}, 0},
		{[]string{"fsck"}, 0},
		{[]string{"fsck", "-o", "json"}, 0},
		{[]string{"analyze"}, 0},
		{[]string{"diff", "DIR"}, 0}, // DIR against itself
	}
	for _, dir := range []string{empty, foreign} {
		for _, tc := range tests {
			t.Run(filepath.Base(dir)+" "+strings.Join(tc.args, " "), func(t *testing.T) {
				args := append(tc.args, "--dir", dir)
				if tc.args[0] == "diff" {
					args = []string{"diff", dir, dir}
				}
				code, _, stderr := runCLI(t, nil, args...)
				word := "warning: "
				if tc.code != 0 {
					word = ""
				}
				want := "promstore: " + word + "dir " + dir + " holds no shards: a store is a directory of *.db files (counter_1234.db, gauge_livesum_1234.db, ...) that prometheus_client writes in multiprocess mode"
				if code != tc.code || !strings.Contains(stderr, want) {
					t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, tc.code, want)
				}
			})
		}
	}
	// A store whose shards hold no samples yet is not empty.
	fresh := t.TempDir()
	if err := os.WriteFile(filepath.Join(fresh, "counter_1.db"), make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, nil, "dump", "--strict", "--dir", fresh); code != 0 || stderr != "" {
		t.Errorf("store of one fresh shard: exit %d, stderr %q", code, stderr)
	}
}

// TestDumpNamesPrometheusRejects: keys "a b" and "a_b", labels "r-" and
// "r_" are written as Python writes them (two "# HELP a_b_total" blocks,
// a duplicated series), which Prometheus rejects: dump warns naming
// them, and --strict exits 1 with nothing on stdout.
func TestDumpNamesPrometheusRejects(t *testing.T) {
	dir := t.TempDir()
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	samples := storetest.RejectedNames(t)
	if err := st.WriteShard(context.Background(), store.ShardID{Kind: store.KindCounter, PID: "1"}, samples); err != nil {
		t.Fatal(err)
	}
	wants := []string{
		`Prometheus would reject the output: families "a b" and "a_b" are both written as a_b_total (two # HELP a_b_total blocks)`,
		`Prometheus would reject the output: duplicate series r_total r_ 1 (from names that differ before escaping)`,
	}
	code, out, stderr := runCLI(t, nil, "dump", "--dir", dir)
	if code != 0 || strings.Count(out, "# HELP a_b_total") != 2 {
		t.Fatalf("dump: exit %d, output not as Python writes it:\n%s", code, out)
	}
	for _, w := range wants {
		if !strings.Contains(stderr, "promstore: warning: "+w+"\n") {
			t.Errorf("stderr:\n%s\nwant %q", stderr, w)
		}
	}
	code, out, stderr = runCLI(t, nil, "dump", "--strict", "--dir", dir)
	if code != 1 || out != "" || !strings.Contains(stderr, "promstore: error: "+wants[0]) {
		t.Errorf("--strict: exit %d, stdout %q, stderr:\n%s", code, out, stderr)
	}
}

// TestDumpMatchNothingWarns: a --match that selects none of a store's
// families (a mistyped regex) prints nothing and says so; one that
// selects something says nothing.
func TestDumpMatchNothingWarns(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	for _, raw := range []bool{false, true} {
		args := []string{"dump", "--dir", dir, "--match", "^nosuchfamily$"}
		if raw {
			args = append(args, "--raw")
		}
		code, out, stderr := runCLI(t, nil, args...)
		want := `promstore: warning: --match "^nosuchfamily$" selects none of the families of dir ` + dir
		if code != 0 || strings.Contains(out, "app_") || !strings.Contains(stderr, want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", args, code, out, stderr, want)
		}
		args = []string{"dump", "--dir", dir, "--match", "^app_events"}
		if raw {
			args = append(args, "--raw")
		}
		if code, out, stderr := runCLI(t, nil, args...); code != 0 || !strings.Contains(out, "app_events") || stderr != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout holds app_events: %v", args, code, stderr, strings.Contains(out, "app_events"))
		}
	}
}

// TestRedisPrefixHints: the commonest cause of an empty Redis store is a
// missing or short --redis-prefix. A prefix that holds no shards names
// the prefixes the server holds metric hashes under; a prefix that is
// the start of another's (my for my:app) names the longer one in each
// key's warning.
func TestRedisPrefixHints(t *testing.T) {
	srv := testenv.StartRedis(t)
	sample := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	for _, prefix := range []string{"my:app", "team a"} {
		if code, _, stderr := runCLI(t, nil, "migrate", "file-to-redis", "--dir", sample, "--redis-url", srv.URL(), "--redis-prefix", prefix); code != 0 {
			t.Fatalf("migrate to %q: exit %d: %s", prefix, code, stderr)
		}
	}
	if err := srv.Client().Set(context.Background(), "session:metric:x", "not a metric", 0).Err(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		prefix string
		want   string // in stderr; "" for none at all
	}{
		{"gunicorn", "holds no shards: no metric hashes under the prefix (a store is the <prefix>:<kind>:<pid>:metric:<md5> hashes gunicorn-prometheus-exporter writes); shards were found with --redis-prefix my:app, --redis-prefix 'team a'\n"},
		{"my", `key name: unknown metric kind "app": is the prefix my:app? (--redis-prefix my:app)` + "\n"},
		{"team", "prefix team holds no shards: no metric hashes under the prefix (a store is the <prefix>:<kind>:<pid>:metric:<md5> hashes gunicorn-prometheus-exporter writes); shards were found with --redis-prefix my:app, --redis-prefix 'team a'\n"},
		{"my:app", ""},
	}
	for _, tc := range tests {
		t.Run(tc.prefix, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, "dump", "--redis-url", srv.URL(), "--redis-prefix", tc.prefix)
			if code != 0 || (tc.want == "") != (stderr == "") || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant it to hold %q", code, stderr, tc.want)
			}
		})
	}
}

// TestNoShardsNamesSubdirStores: a directory with no shards whose
// subdirectories hold some (a parent of PROMETHEUS_MULTIPROC_DIR given
// by mistake) names them as the --dir to give, quoted for a shell.
func TestNoShardsNamesSubdirStores(t *testing.T) {
	parent := t.TempDir()
	sample := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	for _, sub := range []string{"web multiproc", "worker"} {
		if err := os.Rename(testenv.CopyStore(t, sample), filepath.Join(parent, sub)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(parent, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := "holds no shards: a store is a directory of *.db files (counter_1234.db, gauge_livesum_1234.db, ...) that prometheus_client writes in multiprocess mode; shards were found with --dir '" +
		filepath.Join(parent, "web multiproc") + "', --dir " + filepath.Join(parent, "worker") + "\n"
	for _, args := range [][]string{{"dump"}, {"ls"}} {
		code, _, stderr := runCLI(t, nil, append(args, "--dir", parent)...)
		if code != 0 || !strings.Contains(stderr, want) {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant it to hold %q", args, code, stderr, want)
		}
	}
}
