package commands

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/promstore/promstore/internal/compare"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

func TestNewCmdDiffFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(*testing.T, *DiffOptions)
	}{
		{name: "defaults", args: []string{"a", "b"}, check: func(t *testing.T, o *DiffOptions) {
			if o.A != "a" || o.B != "b" || o.Format != "text" || o.MaxLines != 20 || o.Compare != (compare.Options{}) {
				t.Errorf("options = %+v", o)
			}
		}},
		{name: "tolerances and counters", args: []string{"--tolerance", "1e-9", "--abs-tolerance", "0.5", "--counters", "-o", "json", "--max-lines", "0", "-", "b"},
			check: func(t *testing.T, o *DiffOptions) {
				if o.Compare != (compare.Options{Tolerance: 1e-9, AbsTolerance: 0.5, Counters: true}) || o.Format != "json" || o.MaxLines != 0 || o.A != "-" {
					t.Errorf("options = %+v", o)
				}
			}},
		{name: "one argument", args: []string{"a"}, wantErr: "accepts 2 arg(s)"},
		{name: "bad format", args: []string{"-o", "yaml", "a", "b"}, wantErr: "--format must be one of"},
		{name: "negative tolerance", args: []string{"--tolerance", "-1", "a", "b"}, wantErr: "must not be negative"},
		{name: "negative max-lines", args: []string{"--max-lines", "-5", "a", "b"}, wantErr: "--max-lines must not be negative"},
		{name: "redis-url flag", args: []string{"--redis-url", "redis://x", "a", "b"}, wantErr: "give Redis stores as arguments"},
		{name: "stdin twice", args: []string{"-", "-"}, wantErr: "only one of A and B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := parseCmd(t, nil, NewCmdDiff, tt.args, tt.wantErr)
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

// TestDiffEqualAcrossBackends compares one set of samples held in a
// directory written by prometheus_client, in Redis written by
// gunicorn-prometheus-exporter and in Python's own exposition: every pair
// is equal, in both directions. OpenMetrics input is
// TestDiffOpenMetricsInput's (a small one) and, for the whole fixture,
// TestDiffOpenMetricsFixtureLong's (make test-long).
func TestDiffEqualAcrossBackends(t *testing.T) {
	fx := testenv.FixturesDir(t)
	dir := filepath.Join(fx, "python-0.25-files", "store")
	srv := testenv.StartRedis(t)
	testenv.LoadRedisJSONL(t, srv.Client(), filepath.Join(fx, "gpe-0.2.4-redis", "store.jsonl"), nil)
	sources := map[string]string{
		"dir":           dir,
		"redis":         srv.URL(),
		"python text":   filepath.Join(fx, "python-0.25-files", "expected.prom"),
		"exporter text": filepath.Join(fx, "gpe-0.2.4-redis", "expected.prom"),
	}
	for na, a := range sources {
		for nb, b := range sources {
			if na >= nb {
				continue
			}
			t.Run(na+" vs "+nb, func(t *testing.T) {
				// Python sums in another order than the fixture's: 1e-9 as
				// the fixtures' README says.
				code, out, stderr := runCLI(t, nil, "diff", "--tolerance", "1e-9", a, b)
				if code != 0 || !strings.HasPrefix(out, "equal: 19 families, 595 series") {
					t.Fatalf("exit %d, want 0\n%s%s", code, out, stderr)
				}
			})
		}
	}
}

// TestDiffOpenMetricsInput: an OpenMetrics exposition (what
// `dump -o openmetrics` or a scrape with an OpenMetrics Accept header
// saves) is read as such and equals the text exposition of the same
// samples, both ways round; a changed value in it is found.
func TestDiffOpenMetricsInput(t *testing.T) {
	src := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	const match = "^app_(nolabel_total|events_total|payload_bytes|nolabel_gauge_all)$"
	tmp := t.TempDir()
	files := map[string]string{}
	for _, format := range []string{"text", "openmetrics"} {
		code, out, stderr := runCLI(t, nil, "dump", "--dir", src, "-m", match, "-o", format)
		if code != 0 {
			t.Fatalf("dump -o %s: %d %s", format, code, stderr)
		}
		files[format] = filepath.Join(tmp, "dump."+format)
		if err := os.WriteFile(files[format], []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{files["text"], files["openmetrics"]}, {files["openmetrics"], files["text"]}} {
		code, out, stderr := runCLI(t, nil, "diff", args[0], args[1])
		if code != 0 || !strings.HasPrefix(out, "equal: 4 families, ") {
			t.Errorf("diff %s %s: exit %d, want 0\n%s%s", args[0], args[1], code, out, stderr)
		}
	}
	om, err := os.ReadFile(files["openmetrics"])
	if err != nil {
		t.Fatal(err)
	}
	// The counter's one sample gets another value.
	lines := strings.Split(string(om), "\n")
	found := false
	for i, l := range lines {
		if strings.HasPrefix(l, "app_nolabel_total ") {
			lines[i], found = "app_nolabel_total 1e+06", true
		}
	}
	if !found {
		t.Fatalf("no app_nolabel_total sample in\n%s", om)
	}
	changed := strings.Join(lines, "\n")
	changedFile := filepath.Join(tmp, "changed.openmetrics")
	if err := os.WriteFile(changedFile, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, nil, "diff", files["text"], changedFile)
	if code != 1 || !strings.Contains(out, "app_nolabel_total") {
		t.Errorf("diff against a changed OpenMetrics file: exit %d, want 1 naming app_nolabel_total\n%s%s", code, out, stderr)
	}
}

// changeCounter writes one counter sample of shard id in dir back with its
// value changed by delta, and returns the sample's series as diff names it.
func changeCounter(t *testing.T, dir string, id store.ShardID, delta float64) string {
	t.Helper()
	ctx := context.Background()
	st, err := filestore.Open(ctx, dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var picked *store.Sample
	_ = st.Scan(ctx, func(s store.Sample) error {
		if picked == nil && s.Shard == id && s.Key.Name != "" {
			c := s
			picked = &c
		}
		return nil
	})
	if picked == nil {
		t.Fatalf("no sample in shard %s", id)
	}
	picked.Value += delta
	if err := st.WriteShard(ctx, id, []store.Sample{*picked}); err != nil {
		t.Fatal(err)
	}
	return compare.SeriesKey(picked.Key.Name, picked.Key.Labels, "")
}

func TestDiffFindsSeededChanges(t *testing.T) {
	src := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	before := filepath.Join(t.TempDir(), "before.prom")
	code, text, stderr := runCLI(t, nil, "dump", "--dir", src)
	if code != 0 {
		t.Fatal(stderr)
	}
	if err := os.WriteFile(before, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	id := store.ShardID{Kind: store.KindCounter, PID: "4100"}

	lowered := testenv.CopyStore(t, src)
	series := changeCounter(t, lowered, id, -1)
	code, out, stderr := runCLI(t, nil, "diff", before, lowered)
	if code != 1 || !strings.Contains(out, "~ "+series) || !strings.Contains(out, "different: 1 of") {
		t.Fatalf("plain diff of a lowered counter: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, nil, "diff", "--counters", before, lowered)
	if code != 1 || !strings.Contains(out, "~ "+series) || !strings.Contains(out, "1 series in 1 families went backwards") {
		t.Fatalf("--counters on a lowered counter: exit %d\n%s%s", code, out, stderr)
	}

	raised := testenv.CopyStore(t, src)
	changeCounter(t, raised, id, +1)
	code, out, stderr = runCLI(t, nil, "diff", "--counters", before, raised)
	if code != 0 || !strings.HasPrefix(out, "no counter, histogram or summary series went backwards") {
		t.Fatalf("--counters on a raised counter: exit %d\n%s%s", code, out, stderr)
	}
	code, out, _ = runCLI(t, nil, "diff", "-o", "json", before, raised)
	if code != 1 || !strings.Contains(out, `"equal":false`) {
		t.Fatalf("json diff of a raised counter: exit %d\n%s", code, out)
	}

	// A shard removed: its series are named as only in A.
	gone := testenv.CopyStore(t, src)
	if err := os.Remove(filepath.Join(gone, "gauge_all_4100.db")); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, nil, "diff", "--max-lines", "0", src, gone)
	if code != 1 || !strings.Contains(out, "app_gauge_all (gauge)\n  - app_gauge_all{pid=\"4100\"") {
		t.Fatalf("diff after removing a shard: exit %d\n%s", code, out)
	}
}

func TestDiffStdinAndUsage(t *testing.T) {
	src := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	f, out, errOut := testFactory(nil)
	expo, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store.prom"))
	if err != nil {
		t.Fatal(err)
	}
	f.IO.In = strings.NewReader(string(expo))
	// sample-store.prom is what prometheus_client 0.16 served: le="1e+010".
	if code := Execute(context.Background(), f, []string{"diff", "--python-client", "0.16", "-", src}); code != 0 {
		t.Fatalf("stdin vs dir: exit %d\n%s%s", code, out, errOut)
	}
	code, _, stderr := runCLI(t, nil, "diff", src, filepath.Join(t.TempDir(), "missing"))
	if code != 2 || !strings.Contains(stderr, "B: ") || !strings.Contains(stderr, "missing: no such directory, file or Redis URL") {
		t.Fatalf("missing source: exit %d, %s", code, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.prom")
	if err := os.WriteFile(bad, []byte("not an exposition {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A source that cannot be read is trouble, exit 2 without the usage
	// hint: 1 is kept for "different".
	code, _, stderr = runCLI(t, nil, "diff", bad, src)
	if code != 2 || !strings.Contains(stderr, "A: "+bad+": parse text exposition") || strings.Contains(stderr, "--help") {
		t.Fatalf("unparsable file: exit %d, %s", code, stderr)
	}
	code, _, stderr = runCLI(t, nil, "diff", src, "redis://127.0.0.1:1/0")
	if code != 2 || !strings.Contains(stderr, "B: open store: redis 127.0.0.1:1") {
		t.Fatalf("Redis down: exit %d, %s", code, stderr)
	}
}

// failWriter fails every write, as a closed pipe does.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// TestDiffWriteErrorIsTrouble: an output that cannot be written exits 2,
// so that 1 keeps meaning "different".
func TestDiffWriteErrorIsTrouble(t *testing.T) {
	f, _, errOut := testFactory(nil)
	f.IO.Out = failWriter{}
	e := &compare.Exposition{Source: "x", Families: []compare.Family{{Name: "a", Type: "gauge", Series: []compare.Series{{Name: "a", Value: 1}}}}}
	other := &compare.Exposition{Source: "y"}
	opts := &DiffOptions{IO: f.IO, A: "a", B: "b", Format: "text", Load: func(_ context.Context, arg string) (*compare.Exposition, error) {
		if arg == "a" {
			return e, nil
		}
		return other, nil
	}}
	err := diffRun(context.Background(), opts)
	if code := exitCode(context.Background(), f, err, "promstore diff"); code != 2 || !strings.Contains(errOut.String(), "write output") {
		t.Errorf("exit %d, stderr %q; want 2 naming the output", code, errOut.String())
	}
}

// TestDiffNegativeMaxLinesIsUsageError: --max-lines -5 exits 2, as a
// negative --tolerance does, before any store is read.
func TestDiffNegativeMaxLinesIsUsageError(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"max-lines", []string{"diff", "--max-lines", "-5", "a", "b"}},
		{"tolerance", []string{"diff", "--tolerance", "-1", "a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, _, stderr := runCLI(t, nil, tt.args...); code != ExitUsage || !strings.Contains(stderr, "must not be negative") {
				t.Errorf("exit %d, want %d:\n%s", code, ExitUsage, stderr)
			}
		})
	}
}
