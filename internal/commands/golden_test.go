package commands

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/cleanup"
	"github.com/promstore/promstore/internal/migrate"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

// sampleStore is testdata/sample-store, the store the README's examples
// use (written by prometheus_client 0.16; testdata/sample-store.prom is
// what Python served for it).
func sampleStore(t *testing.T) string {
	t.Helper()
	return filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
}

// TestDumpSampleStoreGolden dumps testdata/sample-store in every format:
// the text exposition must hold exactly what Python served for it
// (testdata/sample-store.prom, written by prometheus_client 0.16, hence
// --python-client 0.16; Python's order is its file order, so the
// comparison is by family and sample), and every format must equal its
// golden file under testdata/golden/ byte for byte (go test -update
// rewrites them). --raw lists shards in directory order, which depends on
// the checkout: its lines are compared sorted.
func TestDumpSampleStoreGolden(t *testing.T) {
	dir := sampleStore(t)
	dump := func(t *testing.T, args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, nil, append([]string{"dump", "--dir", dir, "--python-client", "0.16"}, args...)...)
		if code != 0 {
			t.Fatalf("dump %v: exit %d\n%s", args, code, errOut)
		}
		return out
	}
	t.Run("python", func(t *testing.T) {
		want, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store.prom"))
		if err != nil {
			t.Fatal(err)
		}
		testenv.CompareExposition(t, []byte(dump(t)), want)
	})
	for _, tc := range []struct {
		name string
		args []string
		sort bool
	}{
		{"sample-store.prom", nil, false},
		{"sample-store.om", []string{"--format", "openmetrics"}, false},
		{"sample-store.json", []string{"--format", "json"}, false},
		{"sample-store.raw.tsv", []string{"--raw"}, true},
		{"sample-store.raw.jsonl", []string{"--raw", "--format", "json"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := dump(t, tc.args...)
			if tc.sort {
				lines := strings.SplitAfter(out, "\n")
				start := 0
				if !strings.HasPrefix(lines[0], "{") {
					start = 1 // the header stays first
				}
				slices.Sort(lines[start:])
				out = strings.Join(lines, "")
			}
			testenv.Golden(t, "golden/"+tc.name, []byte(out))
		})
	}
}

// TestLsGolden: ls's three outputs of a fixed set of rows (a file of a
// dead pid, a live sparse one, an archive, a Redis shard, a shard whose
// pid and problem need escaping, a file that is no shard).
func TestLsGolden(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rows := []lsRow{
		{Name: "counter_4100", Kind: "counter", PID: "4100", Alive: "no", Samples: 11, Bytes: 65536, Allocated: 65536, Used: 1584, Layout: 8,
			Updated: now.Add(-90 * time.Second), Location: "/store/counter_4100.db", Problems: []string{}},
		{Name: "gauge_livesum_7", Kind: "gauge", Mode: "livesum", PID: "7", Alive: "yes", Samples: 2, Bytes: 1 << 20, Allocated: 8192, Used: 240, Layout: 16,
			Updated: now.Add(-3*time.Hour - 5*time.Minute), Location: "/store/gauge_livesum_7.db", Problems: []string{}},
		{Name: "counter_archive", Kind: "counter", PID: "archive", Alive: lsArchive, Samples: 40, Bytes: 65536, Allocated: 65536, Used: 4000, Layout: 16,
			Updated: now.Add(-30 * time.Hour), Location: "/store/counter_archive.db", Problems: []string{}},
		{Name: "histogram_web\t1", Kind: "histogram", PID: "web\t1", Alive: "unknown", Samples: 0, Bytes: 16, Allocated: 4096,
			Updated: now.Add(-20 * time.Minute), Location: "/store/histogram_web\t1.db", Problems: []string{"corrupt: entry at offset 8: key is not valid JSON\nsecond line"}},
		{Name: "gauge_all_web-1", Kind: "gauge", Mode: "all", PID: "web-1", Alive: "unknown", Samples: 3, Bytes: 712, Allocated: 712,
			Updated: now.Add(-30 * time.Second), Location: "gunicorn:gauge_all:web-1:*", Problems: []string{"1 orphan metric hashes (no usable meta hash)"}},
		{Name: "x.db", Location: "/store/x.db", Alive: "unknown", Problems: []string{"not a shard file name"}},
	}
	for _, by := range []string{"name", "pid"} {
		t.Run(by, func(t *testing.T) {
			rs := slices.Clone(rows)
			lsSort(rs, by)
			tot := lsTotalsOf(rs)
			f, out, _ := testFactory(nil)
			if err := lsTable(f.IO, rs, tot, now); err != nil {
				t.Fatal(err)
			}
			testenv.Golden(t, "golden/ls-"+by+".table", out.Bytes())
			out.Reset()
			if err := lsTSV(out, rs); err != nil {
				t.Fatal(err)
			}
			testenv.Golden(t, "golden/ls-"+by+".tsv", out.Bytes())
			out.Reset()
			if err := lsJSON(out, "dir /store", rs, tot, []string{"shard x: cannot read"}, ""); err != nil {
				t.Fatal(err)
			}
			testenv.Golden(t, "golden/ls-"+by+".json", out.Bytes())
		})
	}
}

// freedRE matches the disk space a cleanup frees, which depends on the
// file system (allocated blocks): the golden files hold a placeholder.
var (
	freedRE     = regexp.MustCompile(`(up to )?[0-9.]+ (?:B|KiB|MiB|GiB) freed`)
	freedJSONRE = regexp.MustCompile(`"bytes_freed": [0-9]+`)
)

// TestCleanupGolden: cleanup's text and JSON output, dry run and real run,
// of testdata/sample-store with every pid dead.
func TestCleanupGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		dry  bool
		json bool
	}{
		{"cleanup-dry-run.txt", true, false},
		{"cleanup-dry-run.json", true, true},
		{"cleanup.txt", false, false},
		{"cleanup.json", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testenv.CopyStore(t, sampleStore(t))
			testenv.AgeFiles(t, dir)
			f, out, errOut := testFactory(nil)
			opts := &CleanupOptions{IO: f.IO, Verbose: true, JSON: tc.json,
				Store: func(ctx context.Context) (store.Store, error) { return store.Open(ctx, store.Location{Dir: dir}) },
				Cleanup: cleanup.Options{DeadPIDs: true, Local: true, DryRun: tc.dry,
					Alive: func(string) store.Liveness { return store.AliveNo }}}
			if err := cleanupRun(context.Background(), opts); err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			re, repl := freedRE, "${1}<disk space> freed"
			if tc.json {
				re, repl = freedJSONRE, `"bytes_freed": "<disk space>"`
			}
			if !re.MatchString(out.String()) {
				t.Fatalf("no bytes freed in:\n%s", out)
			}
			got := re.ReplaceAllString(out.String(), repl)
			// JSON names the store: a temporary directory.
			got = strings.ReplaceAll(got, dir, "<dir>")
			testenv.Golden(t, "golden/"+tc.name, []byte(got))
		})
	}
}

// TestMigratePlanGolden: the dry-run plan (with a sample already present
// and a conflict) and the summary of a migration of
// testdata/sample-store into a directory.
func TestMigratePlanGolden(t *testing.T) {
	ctx := context.Background()
	src, err := store.Open(ctx, store.Location{Dir: sampleStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	dstDir := t.TempDir()
	dst, err := store.Open(ctx, store.Location{Dir: dstDir})
	if err != nil {
		t.Fatal(err)
	}
	// The target already holds counter_4101's first sample, and its
	// second with another value.
	id := store.ShardID{Kind: store.KindCounter, PID: "4101"}
	var have []store.Sample
	err = src.Scan(ctx, func(s store.Sample) error {
		if s.Shard == id && len(have) < 2 {
			have = append(have, s)
		}
		return nil
	})
	if err != nil || len(have) != 2 {
		t.Fatalf("scan: %v, %d samples", err, len(have))
	}
	have[1].Value += 1
	if err := dst.WriteShard(ctx, id, have); err != nil {
		t.Fatal(err)
	}
	plan, err := migrate.Build(ctx, src, dst, migrate.Options{CheckTarget: filestore.CheckShardID})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	printPlan(&b, plan, src, dst)
	b.WriteString("--- summary\n" + migrateSummary(plan, 1500*time.Millisecond) + "\n")
	got := strings.NewReplacer(sampleStore(t), "<source>", dstDir, "<target>").Replace(b.String())
	testenv.Golden(t, "golden/migrate-plan.txt", []byte(got))
}
