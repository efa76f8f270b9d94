package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/testenv"
)

// TestRedisURLMistakes: a URL without its scheme, or of another scheme,
// is a usage error (exit 2) saying which URL was meant; migrate needs a
// Redis store like every other command instead of taking localhost.
func TestRedisURLMistakes(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"ip:port", []string{"ls", "--redis-url", "127.0.0.1:6379"}, `--redis-url: "127.0.0.1:6379" is not a Redis URL; did you mean redis://127.0.0.1:6379?`},
		{"host:port", []string{"dump", "--redis-url", "localhost:6379"}, `--redis-url: "localhost:6379" is not a Redis URL; did you mean redis://localhost:6379?`},
		{"password not echoed", []string{"dump", "--redis-url", ":hunter2@localhost:6379"}, `is not a Redis URL; did you mean redis://:xxxxx@localhost:6379?`},
		{"http scheme", []string{"top", "--once", "--redis-url", "http://localhost:6379"}, `--redis-url: http://localhost:6379: scheme "http": want redis:// (or rediss:// for TLS, unix:// for a socket)`},
		{"migrate without redis", []string{"migrate", "file-to-redis", "--dir", dir, "--dry-run"}, "no Redis store given: use --redis-url (or set PROMETHEUS_REDIS_URL or REDIS_HOST)"},
		{"migrate bad url", []string{"migrate", "redis-to-file", "--dir", dir, "--redis-url", "localhost:6379"}, "did you mean redis://localhost:6379?"},
		{"password file without redis", []string{"dump", "--dir", dir, "--redis-password-file", "/nonexistent"}, "--redis-password-file given without a Redis store"},
		{"negative database", []string{"dump", "--redis-url", "redis://127.0.0.1:1/-1"}, "--redis-url: redis://127.0.0.1:1/-1: database -1: want a number from 0"},
		{"two databases", []string{"dump", "--redis-url", "redis://127.0.0.1:1/3?db=0"}, "two databases, 3 in the path and 0 in ?db=: give one"},
		{"socket password not echoed", []string{"dump", "--redis-url", "unix:///x.sock?password=hunter2"}, "password=xxxxx"},
		{"port out of range", []string{"ls", "--redis-url", "redis://127.0.0.1:99999"}, "port 99999: want 1 to 65535"},
		{"password twice", []string{"ls", "--redis-url", "redis://:a@127.0.0.1:1", "--redis-password-file", "/nonexistent"}, "give one of them"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, tc.args...)
			if code != ExitUsage || stdout != "" || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "hunter2") {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 2 and %q", code, stdout, stderr, tc.want)
			}
		})
	}
}

// TestRedisSocketURLWithDatabase: a unix:// URL's path is the socket, so
// its ?db= is the only database given, not a second one (a review found
// it refused as a usage error).
func TestRedisSocketURLWithDatabase(t *testing.T) {
	code, _, stderr := runCLI(t, nil, "ls", "--redis-url", "unix:///nonexistent/redis.sock?db=1")
	if code == ExitUsage || strings.Contains(stderr, "two databases") || !strings.Contains(stderr, "redis.sock") {
		t.Errorf("exit %d, stderr:\n%s\nwant a connection error naming the socket", code, stderr)
	}
}

// TestDiffTakesSocketURL: diff takes a unix:// URL as a Redis store, as
// --redis-url does (it said "no such directory, file or Redis URL").
func TestDiffTakesSocketURL(t *testing.T) {
	code, _, stderr := runCLI(t, nil, "diff", "unix:///nonexistent/redis.sock", t.TempDir())
	if code == 0 || strings.Contains(stderr, "no such directory") || !strings.Contains(stderr, "dial unix /nonexistent/redis.sock") {
		t.Errorf("exit %d, stderr:\n%s\nwant a connection error naming the socket", code, stderr)
	}
}

// TestRedisPasswordFile: a password read from a file opens a server that
// requires it, and appears nowhere in the output.
func TestRedisPasswordFile(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{Password: "s3cret-pw"})
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "redis://" + srv.Addr() + "/0"
	code, stdout, stderr := runCLI(t, nil, "ls", "--redis-url", url, "--redis-password-file", pw)
	if code != 0 || strings.Contains(stdout+stderr, "s3cret") {
		t.Fatalf("with the file: exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr = runCLI(t, nil, "ls", "--redis-url", url)
	if code != 1 || !strings.Contains(stderr, "NOAUTH") {
		t.Fatalf("without the file: exit %d, stderr %q; want exit 1 and NOAUTH", code, stderr)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, nil, "ls", "--redis-url", url, "--redis-password-file", empty); code != 1 || !strings.Contains(stderr, "the first line is empty") {
		t.Fatalf("empty file: exit %d, stderr %q", code, stderr)
	}
}

// TestRedisServerMismatchHints: a server that is not what the flags say
// is named for what it is: a Cluster node used without --redis-cluster
// (MOVED), a sentinel used without --redis-sentinel-master (unknown
// data commands), and a master name the sentinels do not know (which
// go-redis reports as every sentinel unreachable).
func TestRedisServerMismatchHints(t *testing.T) {
	cluster := testenv.StartCluster(t)
	master := testenv.StartRedis(t)
	sentinel := testenv.StartSentinel(t, master, "metrics")
	tests := []struct {
		name  string
		args  [][]string // alternatives: at least one fails with want
		want  []string
		lacks string
	}{
		{"cluster node without --redis-cluster", func() [][]string {
			var alts [][]string
			for _, u := range cluster.URLs() {
				alts = append(alts, []string{"ls", "--redis-url", u})
			}
			return alts
		}(), []string{"MOVED ", "(the server is a node of a Redis Cluster: give --redis-cluster)"}, ""},
		{"sentinel without --redis-sentinel-master", [][]string{{"dump", "--redis-url", sentinel.URL()}},
			[]string{"ERR unknown command", "the address looks like a Redis Sentinel", "give --redis-sentinel-master"}, ""},
		{"master unknown to the sentinel", [][]string{{"ls", "--redis-url", sentinel.URL(), "--redis-sentinel-master", "nosuch"}},
			[]string{`the sentinels that answered know no master named "nosuch"`}, "unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed := 0
			for _, args := range tt.args {
				code, _, stderr := runCLI(t, nil, args...)
				if code == 0 {
					continue
				}
				failed++
				for _, w := range tt.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("%v: exit %d, stderr lacks %q:\n%s", args, code, w, stderr)
					}
				}
				if tt.lacks != "" && strings.Contains(stderr, tt.lacks) {
					t.Errorf("%v: stderr says %q:\n%s", args, tt.lacks, stderr)
				}
			}
			if failed == 0 {
				t.Errorf("no run failed: %v", tt.args)
			}
		})
	}
}
