package commands

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/render"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/storetest"
	"github.com/promstore/promstore/internal/testenv"
)

func TestNewCmdDumpFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    DumpOptions
		wantErr string
	}{
		{name: "defaults", args: []string{"--dir", "x"}, want: DumpOptions{Format: "text"}},
		{name: "all flags", args: []string{"-d", "x", "--format", "json", "--match", "^http_", "--raw", "--strict"},
			want: DumpOptions{Format: "json", Match: "^http_", Raw: true, Strict: true}},
		{name: "openmetrics", args: []string{"--dir", "x", "-o", "openmetrics"}, want: DumpOptions{Format: "openmetrics"}},
		{name: "bad format", args: []string{"--dir", "x", "--format", "yaml"}, wantErr: "--format must be one of"},
		{name: "bad regex", args: []string{"--dir", "x", "--match", "("}, wantErr: "--match"},
		{name: "raw openmetrics", args: []string{"--dir", "x", "--raw", "-o", "openmetrics"}, wantErr: "--raw"},
		{name: "positional arg", args: []string{"extra"}, wantErr: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseCmd(t, nil, NewCmdDump, tt.args, tt.wantErr)
			if got == nil {
				return
			}
			if got.Format != tt.want.Format || got.Match != tt.want.Match || got.Raw != tt.want.Raw || got.Strict != tt.want.Strict || got.Store == nil {
				t.Fatalf("opts = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestDumpFixtures dumps the stores the real Python clients wrote and
// compares with what Python's collector printed for them.
func TestDumpFixtures(t *testing.T) {
	fx := testenv.FixturesDir(t)
	for _, name := range []string{"python-0.25-files", "python-0.16-files"} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, "dump", "--strict", "--dir", filepath.Join(fx, name, "store"))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			want, err := os.ReadFile(filepath.Join(fx, name, "expected.prom"))
			if err != nil {
				t.Fatal(err)
			}
			testenv.CompareExposition(t, []byte(out), want)
			// Same store, other formats: they must carry the same families.
			for _, format := range []string{"openmetrics", "json"} {
				code, out2, errOut := runCLI(t, nil, "dump", "--dir", filepath.Join(fx, name, "store"), "--format", format)
				if code != 0 {
					t.Fatalf("%s: exit %d: %s", format, code, errOut)
				}
				checkFamilyCount(t, format, out2, strings.Count(string(want), "# TYPE "))
			}
		})
	}
}

func checkFamilyCount(t *testing.T, format, out string, want int) {
	t.Helper()
	switch format {
	case "openmetrics":
		if !strings.HasSuffix(out, "# EOF\n") {
			t.Errorf("openmetrics output does not end with # EOF")
		}
		if got := strings.Count(out, "# TYPE "); got != want {
			t.Errorf("openmetrics: %d families, want %d", got, want)
		}
	case "json":
		var doc struct {
			Families []struct {
				Name    string            `json:"name"`
				Samples []json.RawMessage `json:"samples"`
			} `json:"families"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("json output: %v", err)
		}
		if len(doc.Families) != want {
			t.Errorf("json: %d families, want %d", len(doc.Families), want)
		}
	}
}

// TestDumpMatchesPythonCollector writes stores with the real Python client
// in several processes and compares dump with Python's own collector on
// the same directory.
func TestDumpMatchesPythonCollector(t *testing.T) {
	for _, seed := range []string{"1", "2", "3"} {
		t.Run("seed"+seed, func(t *testing.T) {
			dir := t.TempDir()
			pythonWrite(t, dir, "--procs", "4", "--series", "24", "--seed", seed)
			want := pythonCollect(t, dir)
			code, out, errOut := runCLI(t, nil, "dump", "--strict", "--dir", dir, "--python-client", testenv.PythonClient(t).String())
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			testenv.CompareExposition(t, []byte(out), want)
			// Python reads the files in directory order and so does
			// promstore: the values agree to the bit, so the lines do too.
			if g, w := sortedLines(out), sortedLines(string(want)); g != w {
				t.Errorf("sorted lines differ from Python's output")
			}
		})
	}
}

// TestDumpMatchesPythonOnProductionLikeStore: the small store of
// scripts/prodstore.py (workers that each write their own subset of
// series in their own order, dead workers with a few series each, every
// kind and gauge mode of the client, written by the real client) dumps
// exactly as Python's collector serves it.
func TestDumpMatchesPythonOnProductionLikeStore(t *testing.T) {
	dir := t.TempDir()
	py := testenv.Python(t)
	runCmd(t, py, filepath.Join(testenv.RepoRoot(t), "scripts", "prodstore.py"), dir, "--size", "small")
	want := pythonCollect(t, dir)
	code, out, errOut := runCLI(t, nil, "dump", "--strict", "--dir", dir, "--python-client", testenv.PythonClient(t).String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(out, "\n"); n < 5000 {
		t.Fatalf("only %d output lines from the small production-like store", n)
	}
	testenv.CompareExposition(t, []byte(out), want)
	if g, w := sortedLines(out), sortedLines(string(want)); g != w {
		t.Errorf("sorted lines differ from Python's output")
	}
}

func sortedLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	sortStrings(lines)
	return strings.Join(lines, "\n")
}

// TestDumpMixedLayouts reads a directory that mixes 16-byte files
// (prometheus_client 0.25) and 8-byte files (0.16): it must dump the same
// as its two halves read separately and merged.
func TestDumpMixedLayouts(t *testing.T) {
	fx := testenv.FixturesDir(t)
	newDir, oldDir, mixed := t.TempDir(), t.TempDir(), t.TempDir()
	pick := func(src, half string, pids ...string) {
		entries, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			for _, pid := range pids {
				if strings.HasSuffix(e.Name(), "_"+pid+".db") {
					testenv.CopyFile(t, filepath.Join(src, e.Name()), filepath.Join(half, e.Name()))
					testenv.CopyFile(t, filepath.Join(src, e.Name()), filepath.Join(mixed, e.Name()))
				}
			}
		}
	}
	pick(filepath.Join(fx, "python-0.25-files", "store"), newDir, "4100", "4101")
	pick(filepath.Join(fx, "python-0.16-files", "store"), oldDir, "4102", "4103")

	ctx := context.Background()
	agg := aggregate.New()
	layouts := map[int]int{}
	for _, d := range []string{newDir, oldDir} {
		st, err := filestore.Open(ctx, d, filestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Scan(ctx, agg.Add); err != nil {
			t.Fatalf("scan %s: %v", d, err)
		}
		infos, err := st.Shards(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range infos {
			layouts[in.Layout]++
		}
	}
	if layouts[8] == 0 || layouts[16] == 0 {
		t.Fatalf("halves do not hold both layouts: %v", layouts)
	}
	var want bytes.Buffer
	if err := render.Text(&want, agg.Families()); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "dump", "--strict", "--dir", mixed)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	testenv.CompareExposition(t, []byte(out), want.Bytes())
}

// TestDumpBadShards puts corrupt, empty, truncated and foreign files next
// to a good store: each is named in a warning, the rest dumps as before,
// and --strict turns them into exit status 1.
func TestDumpBadShards(t *testing.T) {
	src := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	dir := testenv.CopyStore(t, src)
	_, clean, _ := runCLI(t, nil, "dump", "--dir", dir)

	good, err := os.ReadFile(filepath.Join(dir, "counter_4100.db"))
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"counter_9001.db":       {},                                      // empty
		"histogram_9002.db":     []byte("not a shard at all, just text"), // garbage
		"summary_9003.db":       good[:200],                              // truncated: used > size
		"gauge_all_9004.db":     corruptKey(good),                        // invalid key JSON
		"gauge_bogus_9005.db":   good,                                    // unknown gauge mode
		"README.txt":            []byte("ignored: not *.db"),
		".counter_1.db.tmp-abc": good, // a writer's temp file: ignored
	}
	for name, data := range bad {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := runCLI(t, nil, "dump", "--dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out != clean {
		t.Errorf("output with bad shards differs from the clean store's")
	}
	for _, name := range []string{"counter_9001.db", "histogram_9002.db", "summary_9003.db", "gauge_all_9004.db", "gauge_bogus_9005.db"} {
		if !strings.Contains(errOut, name) {
			t.Errorf("stderr does not name %s:\n%s", name, errOut)
		}
	}
	if strings.Contains(errOut, "README") || strings.Contains(errOut, "tmp-abc") {
		t.Errorf("stderr names a file that is not a shard:\n%s", errOut)
	}
	for _, args := range [][]string{nil, {"--raw"}, {"--raw", "-o", "json"}, {"-o", "json"}, {"-o", "openmetrics"}} {
		code, out, errOut = runCLI(t, nil, append([]string{"dump", "--strict", "--dir", dir}, args...)...)
		if code != 1 || out != "" || !strings.Contains(errOut, "--strict") {
			t.Fatalf("--strict %v: exit %d, %d bytes out, stderr:\n%s", args, code, len(out), errOut)
		}
	}
	// A whole store still dumps raw under --strict.
	code, out, errOut = runCLI(t, nil, "dump", "--strict", "--raw", "--dir", src)
	if code != 0 || strings.Count(out, "\n") != 711 {
		t.Fatalf("--strict --raw of a sound store: exit %d, %d lines, stderr:\n%s", code, strings.Count(out, "\n"), errOut)
	}
}

// corruptKey returns a copy of a shard whose first key has a broken byte.
func corruptKey(shard []byte) []byte {
	c := append([]byte(nil), shard...)
	c[12] = '{' // first key starts at offset 12: '[' becomes '{'
	return c
}

func TestDumpMatchRawAndJSON(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	code, out, _ := runCLI(t, nil, "dump", "--dir", dir, "--match", "^app_events")
	if code != 0 || !strings.Contains(out, "# TYPE app_events_total counter") || strings.Count(out, "# TYPE") != 1 {
		t.Fatalf("--match: exit %d\n%s", code, out)
	}
	// The exposed name of a counter matches too.
	_, out, _ = runCLI(t, nil, "dump", "--dir", dir, "--match", "^app_nolabel_total$")
	if strings.Count(out, "# TYPE") != 1 {
		t.Fatalf("--match on exposed name:\n%s", out)
	}

	code, out, _ = runCLI(t, nil, "dump", "--dir", dir, "--raw", "--format", "json")
	if code != 0 {
		t.Fatalf("--raw json: exit %d", code)
	}
	n := 0
	pids := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s struct {
			Shard, Kind, Mode, Pid, Family, Name, Value, Timestamp string
			Labels                                                 map[string]string
		}
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if s.Shard == "" || s.Kind == "" || s.Pid == "" || s.Name == "" {
			t.Fatalf("line %d incomplete: %s", n, sc.Text())
		}
		pids[s.Pid] = true
		n++
	}
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	if err := st.Scan(context.Background(), func(store.Sample) error { want++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != want || len(pids) != 3 {
		t.Fatalf("raw json: %d samples from %d pids, want %d from 3", n, len(pids), want)
	}
	code, out, _ = runCLI(t, nil, "dump", "--dir", dir, "--raw")
	if code != 0 || !strings.HasPrefix(out, "SHARD\tKIND\tMODE\tPID\tSAMPLE\tVALUE\tTIMESTAMP\n") || strings.Count(out, "\n") != want+1 {
		t.Fatalf("raw text: exit %d, %d lines, want %d", code, strings.Count(out, "\n"), want+1)
	}
}

func TestDumpOpenMetricsParses(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	_, out, _ := runCLI(t, nil, "dump", "--dir", dir, "--format", "openmetrics")
	_, text, _ := runCLI(t, nil, "dump", "--dir", dir)
	dec := expfmt.NewDecoder(strings.NewReader(text), expfmt.NewFormat(expfmt.TypeTextPlain))
	_ = dec
	if !strings.HasSuffix(out, "# EOF\n") || strings.Count(out, "# TYPE") != strings.Count(text, "# TYPE") {
		t.Fatalf("openmetrics output:\n%s", out)
	}
}

func TestDumpStoreSelectionAndExitCodes(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	_, want, _ := runCLI(t, nil, "dump", "--dir", dir)
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		wantOut  bool
		wantErr  string
	}{
		{"env upper", map[string]string{"PROMETHEUS_MULTIPROC_DIR": dir}, []string{"dump"}, 0, true, ""},
		{"env lower", map[string]string{"prometheus_multiproc_dir": dir}, []string{"dump"}, 0, true, ""},
		{"upper wins", map[string]string{"PROMETHEUS_MULTIPROC_DIR": dir, "prometheus_multiproc_dir": "/nonexistent"}, []string{"dump"}, 0, true, ""},
		{"flag wins", map[string]string{"PROMETHEUS_MULTIPROC_DIR": "/nonexistent"}, []string{"dump", "--dir", dir}, 0, true, ""},
		{"no store", nil, []string{"dump"}, 2, false, "no store given"},
		{"both stores", nil, []string{"dump", "--dir", dir, "--redis-url", "redis://127.0.0.1:1"}, 2, false, "not both"},
		{"missing dir", nil, []string{"dump", "--dir", "/nonexistent/dir"}, 1, false, "/nonexistent/dir"},
		{"unknown flag", nil, []string{"dump", "--bogus"}, 2, false, "unknown flag"},
		{"unknown command", nil, []string{"frobnicate"}, 2, false, "unknown command"},
		{"redis down", nil, []string{"dump", "--redis-url", "redis://:hunter2@127.0.0.1:1", "--redis-timeout", "1s"}, 1, false, "127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.env, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, errOut)
			}
			if tt.wantOut && out != want {
				t.Errorf("output differs from dump --dir")
			}
			if tt.wantErr != "" && !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", errOut, tt.wantErr)
			}
			if strings.Contains(errOut, "hunter2") {
				t.Errorf("password in stderr: %s", errOut)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "promstore ") || !strings.Contains(out, "go1.") {
		t.Fatalf("version: exit %d %q", code, out)
	}
}

// TestDumpPythonClientFlag: --python-client is parsed into the options,
// and a release promstore does not know is a usage error.
func TestDumpPythonClientFlag(t *testing.T) {
	tests := []struct {
		args    []string
		want    string
		wantErr string
	}{
		{args: []string{"--dir", "x"}, want: "0.26"},
		{args: []string{"--dir", "x", "--python-client", "0.25"}, want: "0.25"},
		{args: []string{"--dir", "x", "--python-client", "0.16.0"}, want: "0.16"},
		{args: []string{"--dir", "x", "--python-client", "latest"}, want: "0.26"},
		{args: []string{"--dir", "x", "--python-client", "0.12"}, wantErr: "--python-client"},
		{args: []string{"--dir", "x", "--python-client", "two"}, wantErr: "--python-client"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got := parseCmd(t, nil, NewCmdDump, tt.args, tt.wantErr)
			if got != nil && got.PythonClient.String() != tt.want {
				t.Errorf("PythonClient = %s, want %s", got.PythonClient, tt.want)
			}
		})
	}
	for _, newCmd := range []string{"serve", "top"} {
		code, _, errOut := runCLI(t, nil, newCmd, "--dir", t.TempDir(), "--python-client", "9.9")
		if code != 2 || !strings.Contains(errOut, "--python-client") {
			t.Errorf("%s --python-client 9.9: exit %d, %q; want a usage error", newCmd, code, errOut)
		}
	}
}

// TestDumpFixturesEveryClient dumps every file fixture as each release
// would print it: the label strings (le included) and the value strings
// are byte for byte what that release printed. Only the 0.26 fixture
// holds floats the releases spell differently; the others must come out
// the same whatever the release, but for the 0.25 fixture's mostrecent
// gauges before 0.18 (see TestDumpMostrecentAsOldClients).
func TestDumpFixturesEveryClient(t *testing.T) {
	fx := testenv.FixturesDir(t)
	tests := []struct {
		fixture, client, want string
		exactLines            bool // the fixture's sums come out to the bit here
	}{
		{"python-0.26-files", "latest", "expected.prom", true},
		{"python-0.26-files", "0.26", "expected.prom", true},
		{"python-0.26-files", "0.25", "expected-0.25.prom", true},
		{"python-0.26-files", "0.16", "expected-0.25.prom", true},
		{"python-0.25-files", "latest", "expected.prom", false},
		{"python-0.25-files", "0.25", "expected.prom", false},
		{"python-0.25-files", "0.18", "expected.prom", false}, // 0.17 and older: TestDumpMostrecentAsOldClients
		{"python-0.16-files", "latest", "expected.prom", false},
		{"python-0.16-files", "0.25", "expected.prom", false},
		{"python-0.16-files", "0.16", "expected.prom", false},
	}
	for _, tt := range tests {
		t.Run(tt.fixture+"/"+tt.client, func(t *testing.T) {
			dir := filepath.Join(fx, tt.fixture, "store")
			code, out, errOut := runCLI(t, nil, "dump", "--strict", "--dir", dir, "--python-client", tt.client)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			want, err := os.ReadFile(filepath.Join(fx, tt.fixture, tt.want))
			if err != nil {
				t.Fatal(err)
			}
			testenv.CompareExposition(t, []byte(out), want)
			if tt.exactLines && sortedLines(out) != sortedLines(string(want)) {
				t.Errorf("sorted lines differ from %s", tt.want)
			}
			// OpenMetrics and JSON spell values and le labels alike.
			wantLines := map[string]bool{}
			for _, l := range strings.Split(string(want), "\n") {
				if l != "" && !strings.HasPrefix(l, "#") {
					wantLines[l] = true
				}
			}
			code, om, errOut := runCLI(t, nil, "dump", "--dir", dir, "--python-client", tt.client, "-o", "openmetrics")
			if code != 0 {
				t.Fatalf("openmetrics: exit %d: %s", code, errOut)
			}
			if tt.exactLines {
				for _, l := range strings.Split(om, "\n") {
					if l != "" && !strings.HasPrefix(l, "#") && !wantLines[l] {
						t.Errorf("openmetrics line %q is not in %s", l, tt.want)
					}
				}
			}
			code, js, errOut := runCLI(t, nil, "dump", "--dir", dir, "--python-client", tt.client, "-o", "json")
			if code != 0 {
				t.Fatalf("json: exit %d: %s", code, errOut)
			}
			if tt.fixture == "python-0.26-files" {
				heap := `"2.8942530991690136e+10"`
				if tt.want != "expected.prom" {
					heap = `"2.8942530991690136e+010"`
				}
				if !strings.Contains(js, heap) {
					t.Errorf("json lacks the value %s", heap)
				}
				code, raw, _ := runCLI(t, nil, "dump", "--dir", dir, "--python-client", tt.client, "--raw")
				if code != 0 || !strings.Contains(raw, "\t"+strings.Trim(heap, `"`)+"\t") {
					t.Errorf("raw lacks the value %s", heap)
				}
			}
		})
	}
}

// TestDumpMatchEachFamily: `dump --match '^F$'` prints exactly family F's
// block of the whole dump, for every family of the sample store, in text
// and OpenMetrics; a pattern matching none prints nothing.
func TestDumpMatchEachFamily(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	for _, format := range []string{"text", "openmetrics"} {
		code, all, _ := runCLI(t, nil, "dump", "--dir", dir, "--format", format)
		if code != 0 {
			t.Fatalf("%s: exit %d", format, code)
		}
		all = strings.TrimSuffix(all, "# EOF\n")
		// The blocks of the whole dump, by family: each starts with its
		// "# HELP" line.
		blocks := map[string]string{}
		for _, b := range strings.Split(all, "# HELP ")[1:] {
			name, _, _ := strings.Cut(b, " ")
			blocks[name] = "# HELP " + b
		}
		if len(blocks) < 3 {
			t.Fatalf("%s: only %d families in the sample store's dump", format, len(blocks))
		}
		for name, want := range blocks {
			family := name
			if format == "openmetrics" {
				family = strings.TrimSuffix(name, "_total") // counters' HELP names the family
			}
			_, got, _ := runCLI(t, nil, "dump", "--dir", dir, "--format", format, "--match", "^"+regexp.QuoteMeta(family)+"$")
			got = strings.TrimSuffix(got, "# EOF\n")
			if got != want {
				t.Errorf("%s --match ^%s$:\n%s\nwant:\n%s", format, family, got, want)
			}
		}
		if _, got, _ := runCLI(t, nil, "dump", "--dir", dir, "--format", format, "--match", "^no_such_family$"); strings.Contains(got, "# HELP") {
			t.Errorf("%s: a pattern matching nothing printed:\n%s", format, got)
		}
	}
}

// TestFilteredShards: the entries handed over are those keep accepts, in
// their order, keep asked once per key and kind (again when another key
// of the same ID, from another store, came between; each time for a key
// without an ID); a shard left empty is not handed over.
func TestFilteredShards(t *testing.T) {
	a := &store.Key{Family: "a", ID: 1}
	b := &store.Key{Family: "b", ID: 2}
	a2 := &store.Key{Family: "a2", ID: 1} // another store's key of ID 1
	b0 := &store.Key{Family: "b"}         // no ID
	asked := map[string]int{}
	keep := func(k *store.Key, kind store.Kind) bool {
		asked[string(kind)+"/"+k.Family]++
		return k.Family == "a" || (k.Family == "b" && kind == store.KindCounter)
	}
	var got []string
	fn := filteredShards(keep, func(id store.ShardID, es []store.Entry) error {
		s := string(id.Kind) + ":"
		for _, e := range es {
			s += fmt.Sprintf(" %s=%g", e.Key.Family, e.Value)
		}
		got = append(got, s)
		return nil
	})
	e := func(k *store.Key, v float64) store.Entry { return store.Entry{Key: k, KeyID: k.ID, Value: v} }
	shards := []struct {
		kind    store.Kind
		entries []store.Entry
	}{
		{store.KindCounter, []store.Entry{e(a, 1), e(b, 2), e(a, 3)}},
		{store.KindGauge, []store.Entry{e(b, 4), e(a, 5)}},
		{store.KindGauge, []store.Entry{e(b, 6)}}, // none kept: not handed over
		{store.KindCounter, []store.Entry{e(a2, 7), e(b0, 8), e(b0, 9), e(a, 10)}},
	}
	for _, sh := range shards {
		if err := fn(store.ShardID{Kind: sh.kind, PID: "1"}, sh.entries); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"counter: a=1 b=2 a=3", "gauge: a=5", "counter: b=8 b=9 a=10"}
	if !slices.Equal(got, want) {
		t.Errorf("handed over %q, want %q", got, want)
	}
	// a twice under counter: a2 took its ID's answer in between; b0,
	// without an ID, each time.
	wantAsked := map[string]int{"counter/a": 2, "counter/b": 3, "gauge/a": 1, "gauge/b": 1, "counter/a2": 1}
	if !maps.Equal(asked, wantAsked) {
		t.Errorf("keep asked %v, want %v", asked, wantAsked)
	}
}

// TestDumpMostrecentAsOldClients: prometheus_client before 0.18 knows no
// mostrecent modes and serves such shards one sample per process, as mode
// all. A directory of mostrecent and livemostrecent shards in the 8-byte
// layout (what migrate redis-to-file --layout legacy writes for those
// clients) dumps with --python-client 0.16 exactly as the real 0.16
// collector serves it, and its 16-byte twin the same; the default (the
// newest client) takes each series' latest value and leaves a series never
// set out.
func TestDumpMostrecentAsOldClients(t *testing.T) {
	ctx := context.Background()
	key := func(family, route string) *store.Key {
		return storetest.Key(t, family, family, []store.Label{{Name: "route", Value: route}}, "latest value")
	}
	shards := []struct {
		id      store.ShardID
		samples []store.Sample
	}{
		{store.ShardID{Kind: store.KindGauge, Mode: "mostrecent", PID: "7"}, []store.Sample{
			{Key: key("temp", "/a"), Value: 1.5, Timestamp: 1700000002},
			{Key: key("temp", "/b"), Value: -3, Timestamp: 1700000001},
			{Key: key("temp", "/never"), Value: 0, Timestamp: 0},
		}},
		{store.ShardID{Kind: store.KindGauge, Mode: "mostrecent", PID: "12"}, []store.Sample{
			{Key: key("temp", "/a"), Value: 2.5, Timestamp: 1700000001},
			{Key: key("temp", "/b"), Value: 4, Timestamp: 1700000003},
		}},
		{store.ShardID{Kind: store.KindGauge, Mode: "livemostrecent", PID: "7"}, []store.Sample{
			{Key: key("queue", "/a"), Value: 9, Timestamp: 1700000005},
		}},
		{store.ShardID{Kind: store.KindCounter, PID: "7"}, []store.Sample{
			{Key: storetest.Key(t, "hits", "hits_total", nil, "hits"), Value: 3},
		}},
	}
	write := func(layout int) string {
		dir := t.TempDir()
		st, err := filestore.Open(ctx, dir, filestore.Options{Layout: layout})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		for _, sh := range shards {
			samples := slices.Clone(sh.samples)
			for i := range samples {
				samples[i].Shard = sh.id
				if layout == filestore.LayoutLegacy {
					samples[i].Timestamp = 0
				}
			}
			if err := st.WriteShard(ctx, sh.id, samples); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	legacy, timestamped := write(filestore.LayoutLegacy), write(filestore.LayoutTimestamp)
	dump := func(dir, client string) string {
		t.Helper()
		code, out, errOut := runCLI(t, nil, "dump", "--strict", "--dir", dir, "--python-client", client)
		if code != 0 {
			t.Fatalf("dump --python-client %s: exit %d: %s", client, code, errOut)
		}
		return out
	}
	old := dump(legacy, "0.16")
	for _, want := range []string{`temp{pid="7",route="/a"} 1.5`, `temp{pid="12",route="/b"} 4.0`, `temp{pid="7",route="/never"} 0.0`, `queue{pid="7",route="/a"} 9.0`} {
		if !strings.Contains(old, want+"\n") {
			t.Errorf("--python-client 0.16 lacks %s:\n%s", want, old)
		}
	}
	if got := dump(legacy, "0.17"); got != old {
		t.Errorf("0.17 differs from 0.16:\n%s", got)
	}
	if got := dump(timestamped, "0.16"); got != old {
		t.Errorf("the 16-byte layout as 0.16 differs from the 8-byte one:\n%s\nwant\n%s", got, old)
	}
	newest := dump(timestamped, "0.18")
	for _, want := range []string{`temp{route="/a"} 1.5`, `temp{route="/b"} 4.0`, `queue{route="/a"} 9.0`} {
		if !strings.Contains(newest, want+"\n") {
			t.Errorf("--python-client 0.18 lacks %s:\n%s", want, newest)
		}
	}
	if strings.Contains(newest, "/never") || strings.Contains(newest, "pid=") {
		t.Errorf("--python-client 0.18 keeps a series never set or a pid label:\n%s", newest)
	}
	if got := dump(timestamped, "latest"); got != newest {
		t.Errorf("latest differs from 0.18:\n%s", got)
	}
	// The real 0.16 collector (Debian's) on the legacy directory.
	testenv.CompareExposition(t, []byte(old), pythonCollect(t, legacy))
}

// TestDumpGaugePIDLabelAsPython: gauges whose application labels include
// one named "pid" (a parent's child processes, say), written by two
// processes of the real client. Python labels a per-process gauge (all,
// liveall) with the process's pid in that label's place, and merges the
// other modes without any "pid" label, the application's included; a
// counter keeps its own. promstore had written both pids (a label name
// twice: Prometheus rejects the scrape) and kept the label on merged
// gauges.
func TestDumpGaugePIDLabelAsPython(t *testing.T) {
	dir := t.TempDir()
	const script = `
import sys
from prometheus_client import Gauge, Counter
from prometheus_client.values import ValueClass
proc = int(sys.argv[1])
modes = ['all', 'liveall', 'min', 'max', 'sum', 'livemin', 'livemax', 'livesum']
if hasattr(ValueClass, '_multiprocess') and 'mostrecent' in Gauge._MULTIPROC_MODES:
    modes += ['mostrecent', 'livemostrecent']
for mode in modes:
    g = Gauge('child_' + mode, 'Children.', ['pid', 'role'], multiprocess_mode=mode)
    if mode in ('all', 'liveall'):
        g.labels(str(4242 + proc), 'web').set(proc + 0.5)
    else:
        for child in ('4242', '4243'):
            g.labels(child, 'web').set(proc * 10 + int(child) - 4240)
c = Counter('spawned', 'Spawned.', ['pid'])
c.labels('4242').inc(proc + 1)
`
	for proc := range 2 {
		testenv.RunPython(t, nil, script, []string{"PROMETHEUS_MULTIPROC_DIR=" + dir}, strconv.Itoa(proc))
	}
	want := pythonCollect(t, dir)
	code, out, errOut := runCLI(t, nil, "dump", "--strict", "--dir", dir, "--python-client", testenv.PythonClient(t).String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Count(out, `pid="`) < 5 {
		t.Fatalf("too few pid labels in:\n%s", out)
	}
	testenv.CompareExposition(t, []byte(out), want)
	if g, w := sortedLines(out), sortedLines(string(want)); g != w {
		t.Errorf("sorted lines differ from Python's output:\n%s\nwant:\n%s", g, w)
	}
}

// TestDumpCountsManyProblems: a directory of many damaged shards (a pile
// of 0-byte files from killed workers) warns about the first 20 and counts
// the rest, instead of one line each.
func TestDumpCountsManyProblems(t *testing.T) {
	dir := testenv.CopyStore(t, filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store"))
	for i := range 50 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("counter_%d.db", 90000+i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := runCLI(t, nil, "dump", "--dir", dir)
	if code != 0 || out == "" {
		t.Fatalf("exit %d, %d bytes of output: %s", code, len(out), errOut)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != 21 || !strings.Contains(lines[20], "and 30 more problems (promstore fsck lists every one)") {
		t.Errorf("%d warning lines, the last %q", len(lines), lines[len(lines)-1])
	}
	code, _, errOut = runCLI(t, nil, "dump", "--strict", "--dir", dir)
	if code != 1 || !strings.Contains(errOut, "50 shard problem(s) found and --strict given") {
		t.Errorf("--strict: exit %d: %s", code, errOut)
	}
}

// TestDumpPIDsWithUnderscoreAsPython: a program that sets its own process
// identifier holding "_" ("web_1") writes counter_web_1.db and
// gauge_max_web_1.db; Python's collector reads them, and so does dump,
// to the same output. Its all-mode gauges Python labels with a pid cut
// at the "_" (pid="" for every such process): dump leaves those out,
// naming the file and why, and serves the rest.
func TestDumpPIDsWithUnderscoreAsPython(t *testing.T) {
	const script = `
import sys
from prometheus_client import values
ident = sys.argv[1]
values.ValueClass = values.MultiProcessValue(lambda: ident)
from prometheus_client import Counter, Gauge, Histogram
n = int(ident.rsplit('_', 1)[1])
Counter('jobs', 'Jobs.', ['queue']).labels('fast').inc(n)
Histogram('took', 'Took.', buckets=(0.5, 2.0)).observe(n / 2)
Gauge('depth', 'Depth.', multiprocess_mode='max').set(n * 3)
Gauge('open', 'Open.', multiprocess_mode='livesum').set(n)
if len(sys.argv) > 2:
    Gauge('mem', 'Mem.', multiprocess_mode='all').set(n)
`
	write := func(t *testing.T, withAll bool) string {
		t.Helper()
		dir := t.TempDir()
		for _, ident := range []string{"web_1", "web_2", "worker_a_3"} {
			args := []string{ident}
			if withAll {
				args = append(args, "all")
			}
			testenv.RunPython(t, nil, script, []string{"PROMETHEUS_MULTIPROC_DIR=" + dir}, args...)
		}
		return dir
	}
	t.Run("read as Python reads them", func(t *testing.T) {
		dir := write(t, false)
		want := pythonCollect(t, dir)
		code, out, errOut := runCLI(t, nil, "dump", "--strict", "--dir", dir, "--python-client", testenv.PythonClient(t).String())
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if !strings.Contains(out, `jobs_total{queue="fast"} 6.0`) {
			t.Errorf("the three processes' counters are not summed:\n%s", out)
		}
		testenv.CompareExposition(t, []byte(out), want)
	})
	t.Run("all-mode gauges left out, named", func(t *testing.T) {
		dir := write(t, true)
		code, out, errOut := runCLI(t, nil, "dump", "--dir", dir)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if !strings.Contains(out, `jobs_total{queue="fast"} 6.0`) || strings.Contains(out, "mem{") {
			t.Errorf("output:\n%s", out)
		}
		for _, w := range []string{"gauge_all_web_1.db", `pid="", not "web_1"`, "gauge_all_worker_a_3.db", `pid="wor", not "worker_a_3"`} {
			if !strings.Contains(errOut, w) {
				t.Errorf("stderr lacks %q:\n%s", w, errOut)
			}
		}
	})
}
