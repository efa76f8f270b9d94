package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zone runInZone's child runs in

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/redisstore"
	"github.com/promstore/promstore/internal/testenv"
)

// The machine-readable output of every command, as scripts read it.

// runInZone runs promstore with args as a child process (the test binary,
// see TestMain) in a time zone that is not UTC, where a file's mtime and
// a Redis updated_at come in local time (setting time.Local in the test
// would race with goroutines earlier tests left); time/tzdata, imported
// here, has the zone whatever the machine has installed. It returns the
// exit status, stdout and stderr.
func runInZone(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(childEnv(), asPromstore+"=1", "TZ=Asia/Kolkata")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return ee.ExitCode(), out.String(), errb.String()
	} else if err != nil {
		t.Fatalf("promstore %q: %v\n%s", args, err, errb.String())
	}
	return 0, out.String(), errb.String()
}

// jsonDoc parses out, which must be one JSON object.
func jsonDoc(t *testing.T, out string) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, out)
	}
	return doc
}

// oldShards writes a counter and a gauge_all shard of a process that no
// longer runs into a new directory, last updated two days ago (so that
// cleanup --dead-pids acts on them), and returns the directory and pid.
func oldShards(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	dead := testenv.DeadPID(t)
	st, err := filestore.Open(context.Background(), dir, filestore.Options{Layout: 16})
	if err != nil {
		t.Fatal(err)
	}
	lsWrite(t, st, store.ShardID{Kind: store.KindCounter, PID: dead}, 1, 2)
	lsWrite(t, st, store.ShardID{Kind: store.KindGauge, Mode: "all", PID: dead}, 3)
	testenv.AgeFilesBy(t, dir, 48*time.Hour)
	return dir, dead
}

// TestJSONTimesAreUTC: every time in JSON is RFC 3339 in UTC, as ls's TSV
// writes it; ls's "updated", analyze's growth and cleanup's orphans came
// in the local zone ("2026-12-08T02:36:08+01:00" under TZ=Europe/Berlin),
// so the same shard had another time in JSON than in TSV.
func TestJSONTimesAreUTC(t *testing.T) {
	dir, _ := oldShards(t)
	srv, _, _ := orphanedRedis(t)
	rst, err := redisstore.Open(context.Background(), redisstore.Config{URLs: []string{srv.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	lsWrite(t, rst, store.ShardID{Kind: store.KindGauge, Mode: "all", PID: "web-1"}, 3)
	rst.Close()
	field := func(m any, path ...string) any {
		for _, p := range path {
			mm, _ := m.(map[string]any)
			m = mm[p]
		}
		return m
	}
	each := func(list any, path ...string) []any {
		var out []any
		l, _ := list.([]any)
		for _, e := range l {
			out = append(out, field(e, path...))
		}
		return out
	}
	tests := []struct {
		name  string
		args  []string
		times func(doc map[string]any) []any
	}{
		{"ls", []string{"ls", "--dir", dir, "-o", "json"}, func(doc map[string]any) []any {
			return each(doc["shards"], "updated")
		}},
		{"analyze", []string{"analyze", "--dir", dir, "-o", "json"}, func(doc map[string]any) []any {
			return []any{field(doc, "growth", "oldest_update"), field(doc, "growth", "newest_update")}
		}},
		{"ls redis", []string{"ls", "--redis-url", srv.URL(), "-o", "json"}, func(doc map[string]any) []any {
			var out []any
			for _, s := range doc["shards"].([]any) {
				if s.(map[string]any)["pid"] == "web-1" { // the orphan's shard has no time
					out = append(out, field(s, "updated"))
				}
			}
			return out
		}},
		{"cleanup orphans", []string{"cleanup", "--redis-url", srv.URL(), "--orphans", "--dry-run", "-o", "json"}, func(doc map[string]any) []any {
			return each(doc["orphans"], "updated")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runInZone(t, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			times := tt.times(jsonDoc(t, out))
			if len(times) == 0 {
				t.Fatalf("no times in:\n%s", out)
			}
			for _, v := range times {
				s, _ := v.(string)
				if _, err := time.Parse(time.RFC3339Nano, s); err != nil || !strings.HasSuffix(s, "Z") {
					t.Errorf("time %#v: want an RFC 3339 time in UTC (…Z)\n%s", v, out)
				}
			}
		})
	}
}

// TestLsJSONTotalsUsed: the totals sum every size the rows have; used
// was missing, so a script had to add the rows' up itself.
func TestLsJSONTotalsUsed(t *testing.T) {
	dir, _ := oldShards(t)
	code, out, errOut := runCLI(t, nil, "ls", "--dir", dir, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Shards []lsRow
		Totals map[string]any
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	var used int64
	for _, r := range got.Shards {
		used += r.Used
	}
	if u, ok := got.Totals["used"].(float64); !ok || used == 0 || int64(u) != used {
		t.Errorf("totals.used = %v, want the rows' sum %d:\n%s", got.Totals["used"], used, out)
	}
}

// TestAnalyzeJSONShape: analyze's JSON has the same keys whatever the
// store holds: a store with no shards had "all_mode_gauges": null and
// growth times of year 1 ("0001-01-01T00:00:00Z") where no time is known,
// and "problems" only when there were some; the labels cut by --top had
// no count of all of them, as the families have families_total.
func TestAnalyzeJSONShape(t *testing.T) {
	dir, _ := oldShards(t)
	tests := []struct {
		name           string
		dir            string
		top            string
		wantLabels     int
		wantLabelTotal float64
		wantTimes      bool
	}{
		{name: "no shards", dir: t.TempDir(), top: "10", wantLabels: 0, wantLabelTotal: 0},
		// The shards' labels: i, and pid of the all-mode gauge.
		{name: "top 1", dir: dir, top: "1", wantLabels: 1, wantLabelTotal: 2, wantTimes: true},
		{name: "top 0", dir: dir, top: "0", wantLabels: 2, wantLabelTotal: 2, wantTimes: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, "analyze", "--dir", tt.dir, "--top", tt.top, "-o", "json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			doc := jsonDoc(t, out)
			for _, k := range []string{"families", "labels", "all_mode_gauges", "problems"} {
				if _, ok := doc[k].([]any); !ok {
					t.Errorf("%s = %#v, want a list", k, doc[k])
				}
			}
			if n := len(doc["labels"].([]any)); n != tt.wantLabels || doc["labels_total"] != tt.wantLabelTotal {
				t.Errorf("%d labels, labels_total %v; want %d and %v", n, doc["labels_total"], tt.wantLabels, tt.wantLabelTotal)
			}
			g := doc["growth"].(map[string]any)
			for _, k := range []string{"oldest_update", "newest_update"} {
				s, ok := g[k].(string)
				switch {
				case ok != tt.wantTimes:
					t.Errorf("growth.%s = %#v, want one: %v", k, g[k], tt.wantTimes)
				case ok && strings.HasPrefix(s, "0001-"):
					t.Errorf("growth.%s = %s, the zero time", k, s)
				}
			}
		})
	}
}

// TestCleanupJSONSummaryAndError: cleanup's JSON says which store it is
// about, what the run's error was (a refusal printed the empty plan with
// "done": false and nothing else), counts the orphan keys in its summary
// and their memory in bytes_freed, as the text's last line does ("up to
// 200 B freed" while bytes_freed was 0), gives an orphan without
// updated_at no time (it had year 1), and names a file that is no shard
// by its path, as the text does, not as "_".
func TestCleanupJSONSummaryAndError(t *testing.T) {
	srv, c, orphan := orphanedRedis(t)
	if err := c.HSet(context.Background(), "gunicorn:counter:4100:metric:00000000000000000000000000000002", "value", "1.0").Err(); err != nil {
		t.Fatal(err)
	}
	old, _ := oldShards(t)
	if err := os.WriteFile(filepath.Join(old, "foo.db"), []byte("foo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Shards of a pid that is gone, changed just now: --dead-pids refuses
	// (the process may have exited within --min-idle).
	fresh := t.TempDir()
	fst, err := filestore.Open(context.Background(), fresh, filestore.Options{Layout: 16})
	if err != nil {
		t.Fatal(err)
	}
	lsWrite(t, fst, store.ShardID{Kind: store.KindCounter, PID: testenv.DeadPID(t)}, 1)

	tests := []struct {
		name  string
		args  []string
		code  int
		check func(t *testing.T, doc map[string]any)
	}{
		{"orphans", []string{"--redis-url", srv.URL(), "--orphans", "--min-idle", "0", "--dry-run"}, 0, func(t *testing.T, doc map[string]any) {
			var sum float64
			for _, o := range doc["orphans"].([]any) {
				o := o.(map[string]any)
				sum += o["bytes"].(float64)
				// The orphan without updated_at has no time, not year 1.
				if _, dated := o["updated"]; dated != (o["key"] == orphan) {
					t.Errorf("orphan %v: want updated only where updated_at is", o)
				}
			}
			s := doc["summary"].(map[string]any)
			if sum <= 0 || s["orphans"] != 2.0 || s["bytes_freed"] != sum {
				t.Errorf("summary %v: want the 2 orphans counted and their %v bytes freed", s, sum)
			}
			if st, _ := doc["store"].(string); doc["error"] != nil || !strings.HasPrefix(st, "redis://") {
				t.Errorf("store %v, error %v", doc["store"], doc["error"])
			}
		}},
		{"refused", []string{"--dir", fresh, "--dead-pids", "--dry-run"}, ExitError, func(t *testing.T, doc map[string]any) {
			if e, _ := doc["error"].(string); !strings.HasPrefix(e, "refusing --dead-pids: ") || doc["store"] != "dir "+fresh || doc["done"] != false {
				t.Errorf("store %v, done %v, error %q: want the refusal", doc["store"], doc["done"], e)
			}
		}},
		{"foreign file", []string{"--dir", old, "--dead-pids", "--dry-run", "-v"}, 0, func(t *testing.T, doc map[string]any) {
			var names []string
			for _, s := range doc["shards"].([]any) {
				names = append(names, s.(map[string]any)["shard"].(string))
			}
			if !strings.Contains(strings.Join(names, " "), filepath.Join(old, "foo.db")) {
				t.Errorf("shards %q: want foo.db named by its path", names)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, append(append([]string{"cleanup"}, tt.args...), "-o", "json")...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, errOut)
			}
			tt.check(t, jsonDoc(t, out))
		})
	}
}

// TestHelpNamesFormats: each command's --help names every output format
// it has; --raw's said nothing of what -o gives it (a tab-separated table
// or JSON lines).
func TestHelpNamesFormats(t *testing.T) {
	tests := []struct {
		cmd  string
		want []string
	}{
		{"dump", []string{"text, openmetrics or json", "--raw", "tab-separated table", "one JSON object per line"}},
		{"ls", []string{"table, json or tsv"}},
		{"fsck", []string{"text or json"}},
		{"analyze", []string{"table or json"}},
		{"cleanup", []string{"text or json"}},
		{"diff", []string{"text or json"}},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, tt.cmd, "--help")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(strings.Join(strings.Fields(out), " "), w) {
					t.Errorf("--help lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
