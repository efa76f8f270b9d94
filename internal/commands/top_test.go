package commands

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

func TestNewCmdTopFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    TopOptions
		wantErr string
	}{
		{name: "defaults", args: []string{"--dir", "x"}, want: TopOptions{Interval: 2 * time.Second}},
		{name: "interval and once", args: []string{"-d", "x", "--interval", "500ms", "--once"}, want: TopOptions{Interval: 500 * time.Millisecond, Once: true}},
		{name: "short interval", args: []string{"-d", "x", "-n", "1m"}, want: TopOptions{Interval: time.Minute}},
		{name: "zero interval", args: []string{"-d", "x", "--interval", "0s"}, wantErr: "--interval must be positive"},
		{name: "negative interval", args: []string{"-d", "x", "--interval", "-1s"}, wantErr: "--interval must be positive"},
		{name: "not a duration", args: []string{"-d", "x", "--interval", "2"}, wantErr: "invalid argument"},
		{name: "positional arg", args: []string{"extra"}, wantErr: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseCmd(t, nil, NewCmdTop, tt.args, tt.wantErr)
			if got == nil {
				return
			}
			if got.Interval != tt.want.Interval || got.Once != tt.want.Once || got.Store == nil || got.IO == nil {
				t.Fatalf("opts = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func sampleStoreDir(t *testing.T) string {
	return filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
}

// TestTopPrintsSnapshotWhenNotTerminal runs top with stdout not a
// terminal: one table of the aggregated series, then exit 0.
func TestTopPrintsSnapshotWhenNotTerminal(t *testing.T) {
	dir := sampleStoreDir(t)
	code, out, errOut := runCLI(t, nil, "top", "--dir", dir)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "# dir "+dir+" · read ") {
		t.Errorf("first line %q does not name the store", lines[0])
	}
	// Liveness is probed for real: whatever runs as 4100-4102 here, every
	// pid is either live or dead, none unknown.
	if !strings.HasPrefix(lines[1], "# shards 33 · pids 3 (") || strings.Contains(lines[1], "unknown") ||
		!strings.HasSuffix(lines[1], "· series 290 · samples 710") {
		t.Errorf("second line %q", lines[1])
	}
	if f := strings.Fields(lines[2]); len(f) != 3 || f[0] != "NAME" || f[1] != "LABELS" || f[2] != "VALUE" {
		t.Errorf("column header %q", lines[2])
	}
	if n := len(lines) - 3; n != 290 {
		t.Errorf("%d series lines, want 290", n)
	}
	for _, want := range []string{
		`(?m)^app_requests_total +\{route="/api/v1/items/2",tag=" spaced "\} +329\.75$`,
		`(?m)^app_latency_seconds_count +\{route="/api/v1/items/0",tag="plain"\} +6\.0$`,
		`(?m)^app_gauge_sum +\{route="/api/v1/items/0",tag="plain"\} +78\.11890000000005$`,
		`(?m)^app_nolabel_total +11\.0$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks a line matching %s", want)
		}
	}

	// --once prints the same on a terminal (modulo the read time).
	f, tout, _ := testFactory(nil)
	f.IO.OutTTY = true
	if code := Execute(context.Background(), f, []string{"top", "--once", "--dir", dir}); code != 0 {
		t.Fatalf("--once exit %d", code)
	}
	if a, b := strings.SplitN(out, "\n", 2)[1], strings.SplitN(tout.String(), "\n", 2)[1]; a != b {
		t.Errorf("--once on a terminal differs from the piped output")
	}
}

func TestTopWarnsAboutBadShards(t *testing.T) {
	dir := testenv.CopyStore(t, sampleStoreDir(t))
	if err := os.WriteFile(filepath.Join(dir, "counter_999.db"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "top", "--dir", dir)
	if code != 0 || !strings.Contains(errOut, "promstore: warning: shard counter_999.db") || !strings.Contains(out, "# skipped: shard counter_999.db") {
		t.Fatalf("exit %d, stderr %q, output head %q", code, errOut, out[:min(len(out), 300)])
	}
}

func TestTopErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no store", []string{"top"}, 2, "no store given"},
		{"missing dir", []string{"top", "--dir", "/nonexistent/dir"}, 1, "/nonexistent/dir"},
		{"bad interval", []string{"top", "--dir", "x", "--interval", "0"}, 2, "--interval must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, nil, tt.args...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tt.wantCode, tt.wantErr)
			}
		})
	}
}

// TestTopInteractive runs the full-screen program on a real store with
// keys from a pipe: it draws the store, then q quits.
func TestTopInteractive(t *testing.T) {
	dir := testenv.CopyStore(t, sampleStoreDir(t))
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := &screenBuffer{}
	keys := &gatedReader{out: out, after: "app_events_total", keys: "q"}
	opts := &TopOptions{
		IO:       &IOStreams{In: keys, Out: out, ErrOut: &bytes.Buffer{}, OutTTY: true},
		Store:    func(context.Context) (store.Store, error) { return st, nil },
		Interval: time.Hour,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := topRun(ctx, opts); err != nil {
		t.Fatalf("top: %v", err)
	}
	s := out.String()
	// The title line is 80 columns here and ends with the read's duration,
	// so a slow read (a loaded machine) shortens the room for the path: the
	// store is named by its start.
	named := "dir " + dir[:min(len(dir), 20)]
	for _, want := range []string{"promstore top", named, "✓ read ok", "\x1b[?1049h"} {
		if !strings.Contains(s, want) {
			t.Errorf("screen lacks %q", want)
		}
	}
}

// screenBuffer is a bytes.Buffer safe for one writer and many readers that
// wakes waiters on every write.
type screenBuffer struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  bytes.Buffer
}

func (b *screenBuffer) init() {
	if b.cond == nil {
		b.cond = sync.NewCond(&b.mu)
	}
}

func (b *screenBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	defer b.cond.Broadcast()
	return b.buf.Write(p)
}

func (b *screenBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor blocks until the buffer holds s.
func (b *screenBuffer) waitFor(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	for !strings.Contains(b.buf.String(), s) {
		b.cond.Wait()
	}
}

// gatedReader types keys once out shows after, then reports end of input.
type gatedReader struct {
	out   *screenBuffer
	after string
	keys  string
	done  bool
}

func (r *gatedReader) Read(p []byte) (int, error) {
	if r.done {
		return 0, io.EOF
	}
	r.out.waitFor(r.after)
	r.done = true
	return copy(p, r.keys), nil
}

// TestTopOncePythonClient: top prints le labels and values as the chosen
// release spells them.
func TestTopOncePythonClient(t *testing.T) {
	dir := filepath.Join(testenv.FixturesDir(t), "python-0.26-files", "store")
	for _, tt := range []struct{ client, le, heap string }{
		{"latest", `le="1e+10"`, "2.8942530991690136e+10\n"},
		{"0.25", `le="1e+010"`, "2.8942530991690136e+010\n"},
	} {
		code, out, errOut := runCLI(t, nil, "top", "--once", "--dir", dir, "--python-client", tt.client)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tt.client, code, errOut)
		}
		if !strings.Contains(out, tt.le) || !strings.Contains(out, tt.heap) {
			t.Errorf("%s: output lacks %s or %q:\n%s", tt.client, tt.le, tt.heap, out)
		}
	}
}
