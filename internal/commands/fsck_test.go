package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/promstore/promstore/internal/analyze"
	"github.com/promstore/promstore/internal/fsck"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

func TestNewCmdFsckFlags(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
		check   func(*testing.T, *FsckOptions)
	}{
		{name: "check", args: []string{"--dir", "x"}, check: func(t *testing.T, o *FsckOptions) {
			if o.Dir != "x" || o.Repair || o.DryRun || o.Format != "text" {
				t.Errorf("options = %+v", o)
			}
		}},
		{name: "repair", args: []string{"-d", "x", "--repair", "--dry-run", "--quarantine", "/q", "-o", "json"}, check: func(t *testing.T, o *FsckOptions) {
			if !o.Repair || !o.DryRun || o.Quarantine != "/q" || o.Format != "json" {
				t.Errorf("options = %+v", o)
			}
		}},
		{name: "dir from the environment", env: map[string]string{"PROMETHEUS_MULTIPROC_DIR": "/m"}, args: []string{}, check: func(t *testing.T, o *FsckOptions) {
			if o.Dir != "/m" {
				t.Errorf("Dir = %q", o.Dir)
			}
		}},
		{name: "redis", args: []string{"--redis-url", "redis://localhost:6379/0"}, check: func(t *testing.T, o *FsckOptions) {
			if o.Dir != "" || o.Store == nil {
				t.Errorf("options = %+v", o)
			}
		}},
		{name: "repair of redis", args: []string{"--redis-url", "redis://localhost:6379/0", "--repair"}, wantErr: "--repair works on directories"},
		{name: "dry-run alone", args: []string{"-d", "x", "--dry-run"}, wantErr: "--dry-run goes with --repair"},
		{name: "quarantine alone", args: []string{"-d", "x", "--quarantine", "q"}, wantErr: "--quarantine goes with --repair"},
		{name: "bad format", args: []string{"-d", "x", "-o", "yaml"}, wantErr: "--format must be one of"},
		{name: "no store", args: []string{}, wantErr: "no store given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := parseCmd(t, tt.env, NewCmdFsck, tt.args, tt.wantErr)
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

func TestFsckRunDirectory(t *testing.T) {
	dir := testenv.CopyStore(t, filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store"))
	code, out, stderr := runCLI(t, nil, "fsck", "--dir", dir)
	if code != 0 || !strings.Contains(out, "no problems in 33 shards (710 samples)") {
		t.Fatalf("clean store: exit %d\n%s%s", code, out, stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "counter_9001.db"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "counter_4101.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "counter_4101.db"), data[:300], 0o644); err != nil {
		t.Fatal(err)
	}
	// The check promises what --repair does: nothing for a shard whose
	// process runs (here 9001, as the liveness given says).
	for _, running := range []string{"", "9001"} {
		f, outBuf, _ := testFactory(nil)
		alive := func(pid string) store.Liveness {
			if pid == running {
				return store.AliveYes
			}
			return store.AliveNo
		}
		err := fsckRun(context.Background(), &FsckOptions{IO: f.IO, Dir: dir, Format: "json", Alive: alive})
		var rep struct {
			Problems []struct{ Shard, Kind, Repair, Detail string }
		}
		wantRepair := "quarantine"
		if running != "" {
			wantRepair = ""
		}
		if jerr := json.Unmarshal(outBuf.Bytes(), &rep); jerr != nil || !errors.Is(err, errSilent) || len(rep.Problems) != 2 ||
			rep.Problems[0].Shard != "counter_4101.db" || rep.Problems[0].Kind != "truncated" || rep.Problems[0].Repair != "rewrite" ||
			rep.Problems[1].Shard != "counter_9001.db" || rep.Problems[1].Kind != "empty" || rep.Problems[1].Repair != wantRepair ||
			(running != "") != strings.Contains(rep.Problems[1].Detail, "left alone by --repair while process 9001 runs") {
			t.Fatalf("json, process %q running: %v, %v\n%s", running, err, jerr, outBuf.String())
		}
	}

	// The behaviour half through fsckRun: a dry run changes nothing, a
	// repair fixes both, a second check is clean.
	f, outBuf, _ := testFactory(nil)
	opts := &FsckOptions{IO: f.IO, Dir: dir, Repair: true, DryRun: true, Format: "text", Alive: func(string) store.Liveness { return store.AliveNo }}
	if err := fsckRun(context.Background(), opts); !errors.Is(err, errSilent) || !strings.Contains(outBuf.String(), "--repair would rewrite 1 shard(s) and move 1 file(s)") {
		t.Fatalf("dry run: %v\n%s", err, outBuf.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "counter_9001.db")); err != nil {
		t.Fatalf("the dry run moved a file: %v", err)
	}
	outBuf.Reset()
	opts.DryRun = false
	if err := fsckRun(context.Background(), opts); !errors.Is(err, errSilent) || !strings.Contains(outBuf.String(), "rewrote 1 shard(s), moved 1 file(s)") {
		t.Fatalf("repair: %v\n%s", err, outBuf.String())
	}
	code, out, _ = runCLI(t, nil, "fsck", "--dir", dir)
	if code != 0 {
		t.Fatalf("after the repair: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "promstore-quarantine", "counter_9001.db")); err != nil {
		t.Fatal(err)
	}
}

func TestFsckRedis(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := srv.Client()
	testenv.LoadRedisJSONL(t, c, filepath.Join(testenv.FixturesDir(t), "gpe-0.2.4-redis", "store.jsonl"), nil)
	code, out, stderr := runCLI(t, nil, "fsck", "--redis-url", srv.URL())
	if code != 0 || !strings.Contains(out, "no problems in") {
		t.Fatalf("clean Redis store: exit %d\n%s%s", code, out, stderr)
	}
	// An orphan metric hash (no meta hash): named as the reader names it.
	if err := c.HSet(context.Background(), "gunicorn:counter:777:metric:0123456789abcdef0123456789abcdef", "value", "1.0").Err(); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, nil, "fsck", "--redis-url", srv.URL())
	if code != 1 || !strings.Contains(out, "gunicorn:counter:777:metric:0123456789abcdef0123456789abcdef") || !strings.Contains(out, "redis-key") {
		t.Fatalf("orphan: exit %d\n%s", code, out)
	}
}

// TestFsckRedisDetails: the detail of a malformed metric hash is the
// reader's reason, without an empty part before it.
func TestFsckRedisDetails(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := srv.Client()
	ctx := context.Background()
	tests := []struct {
		name   string
		field  string // of the metric hash: removed ("value") or set to "notafloat"
		detail string
	}{
		{"no value field", "", "metric hash has no value field"},
		{"value not a number", "value", `value "notafloat" is not a number`},
		{"timestamp not a number", "timestamp", `timestamp "notafloat" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			testenv.LoadRedisJSONL(t, c, filepath.Join(testenv.FixturesDir(t), "gpe-0.2.4-redis", "store.jsonl"), nil)
			keys, err := c.Keys(ctx, "gunicorn:gauge_mostrecent:*:metric:*").Result()
			if err != nil || len(keys) == 0 {
				t.Fatalf("no mostrecent metric hash: %v", err)
			}
			k := keys[0]
			if tt.field == "" {
				err = c.HDel(ctx, k, "value").Err()
			} else {
				err = c.HSet(ctx, k, tt.field, "notafloat").Err()
			}
			if err != nil {
				t.Fatal(err)
			}
			code, out, stderr := runCLI(t, nil, "fsck", "--redis-url", srv.URL(), "-o", "json")
			var r fsck.Report
			if err := json.Unmarshal([]byte(out), &r); code != 1 || err != nil {
				t.Fatalf("exit %d, %v:\n%s%s", code, err, out, stderr)
			}
			found := false
			for _, p := range r.Problems {
				if p.Shard == k {
					found = true
					if p.Detail != tt.detail {
						t.Errorf("detail of %s = %q, want %q", k, p.Detail, tt.detail)
					}
				}
			}
			if !found {
				t.Errorf("no problem of %s: %+v", k, r.Problems)
			}
		})
	}
}

// TestFsckTableKeepsOddNamesOnOneRow: a shard name holding a newline,
// tab or a byte that is not UTF-8 (any byte but "/" may be in a file
// name) stays on its table row, quoted as Go quotes it so no byte is lost.
func TestFsckTableKeepsOddNamesOnOneRow(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"counter_90\n02.db", "counter_90\t03.db", "counter_90\xff04.db"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr := runCLI(t, nil, "fsck", "--dir", dir)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 1 || len(lines) != 5 {
		t.Fatalf("exit %d, %d lines, want 1 and a header, 3 rows and the summary:\n%s%s", code, len(lines), out, stderr)
	}
	for i, want := range []string{`"counter_90\t03.db" `, `"counter_90\n02.db" `, `"counter_90\xff04.db" `} {
		if !strings.HasPrefix(lines[i+1], want) || !strings.Contains(lines[i+1], "empty file") {
			t.Errorf("row %q, want it to start %q", lines[i+1], want)
		}
	}
}

// TestFsckRepairStoppedCountsWhatWasDone: a repair that fails part-way
// (the quarantine cannot be made) reports what it did, not what it
// planned: "moved 0 file(s)", each undone repair marked.
func TestFsckRepairStoppedCountsWhatWasDone(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"counter_9001.db", "counter_9002.db"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, outBuf, _ := testFactory(nil)
	opts := &FsckOptions{IO: f.IO, Dir: dir, Repair: true, Quarantine: notADir, Format: "text", Alive: func(string) store.Liveness { return store.AliveNo }}
	err := fsckRun(context.Background(), opts)
	out := outBuf.String()
	if err == nil || errors.Is(err, errSilent) || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("err %v, want the quarantine's error", err)
	}
	if !strings.Contains(out, "rewrote 0 shard(s), moved 0 file(s)") || !strings.Contains(out, "2 repair(s) not done") {
		t.Errorf("summary claims what was not done:\n%s", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want a header, 2 rows and the summary:\n%s", len(lines), out)
	}
	for _, l := range lines[1:3] {
		if !strings.Contains(l, "not done: quarantine") {
			t.Errorf("row %q does not say the repair was not done", l)
		}
	}
}

// TestFsckCountsTheBarrier: a cleanup barrier left without a journal is
// a problem --repair fixes (it removes it): the summaries of the check,
// the dry run and the repair count it, and the repaired row says
// "removed", not "moved to " nowhere.
func TestFsckCountsTheBarrier(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, filestore.BarrierName), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"--repair fixes 1 of them"}},
		{[]string{"--repair", "--dry-run"}, []string{"move 0 file(s) to ", ", and remove the cleanup barrier (dry run"}},
		{[]string{"--repair"}, []string{"  removed  ", ", removed the cleanup barrier"}},
	} {
		code, out, stderr := runCLI(t, nil, append([]string{"fsck", "--dir", dir}, tt.args...)...)
		for _, w := range tt.want {
			if code != 1 || !strings.Contains(out, w) {
				t.Errorf("fsck %v: exit %d, want 1 and %q in\n%s%s", tt.args, code, w, out, stderr)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, filestore.BarrierName)); !os.IsNotExist(err) {
		t.Errorf("barrier still there: %v", err)
	}
}

// TestStrayRedisKeyIsReportedNotFatal: a key under the prefix that has
// ":metric:" in its name but belongs to no shard (a name that is not
// UTF-8, an unknown kind, too few parts) is one problem among the
// others: fsck lists it with the rest of the store's problems (an orphan
// elsewhere) and analyze reports the whole store with a warning naming
// it. Both used to stop at the listing with the key's error alone.
func TestStrayRedisKeyIsReportedNotFatal(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := srv.Client()
	ctx := context.Background()
	const orphan = "gunicorn:counter:777:metric:0123456789abcdef0123456789abcdef"
	tests := []struct {
		name, key, detail string
	}{
		{"name not UTF-8", "gunicorn:counter:41\xff00:metric:0123", "key name is not valid UTF-8"},
		{"unknown kind", "gunicorn:bogus:4100:metric:0123", `unknown metric kind "bogus"`},
		{"too few parts", "gunicorn:x:metric:0123", "key name is not <prefix>:<kind>:<pid>:metric:<md5>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			testenv.LoadRedisJSONL(t, c, filepath.Join(testenv.FixturesDir(t), "gpe-0.2.4-redis", "store.jsonl"), nil)
			for _, k := range []string{tt.key, orphan} {
				if err := c.HSet(ctx, k, "value", "1.0").Err(); err != nil {
					t.Fatal(err)
				}
			}

			code, out, stderr := runCLI(t, nil, "fsck", "--redis-url", srv.URL(), "-o", "json")
			var r fsck.Report
			if err := json.Unmarshal([]byte(out), &r); code != 1 || err != nil {
				t.Fatalf("fsck: exit %d, %v:\n%s%s", code, err, out, stderr)
			}
			details := map[string]string{}
			for _, p := range r.Problems {
				details[p.Shard] = p.Detail
			}
			// JSON strings hold UTF-8 only: a name's other bytes are U+FFFD.
			if !strings.Contains(details[strings.ToValidUTF8(tt.key, "\uFFFD")], tt.detail) || !strings.Contains(details[orphan], "orphan metric hash") || len(r.Problems) != 2 {
				t.Errorf("fsck problems %+v, want %q for %q and the orphan", r.Problems, tt.detail, tt.key)
			}
			if r.Shards != 53 || r.Samples != 1682 {
				t.Errorf("fsck: %d shards, %d samples; want 53 (the fixture's and the orphan's) and 1682", r.Shards, r.Samples)
			}

			code, out, stderr = runCLI(t, nil, "analyze", "--redis-url", srv.URL(), "-o", "json")
			var a analyze.Report
			if err := json.Unmarshal([]byte(out), &a); code != 0 || err != nil {
				t.Fatalf("analyze: exit %d, %v:\n%s%s", code, err, out, stderr)
			}
			if a.Series != 595 || !strings.Contains(stderr, tt.detail) {
				t.Errorf("analyze: %d series, want 595; stderr lacks %q:\n%s", a.Series, tt.detail, stderr)
			}
			// The key is named so that redis-cli takes it as it is: quoted
			// with \xff where a byte is not UTF-8, else bare.
			name := tt.key
			if !utf8.ValidString(name) {
				name = strconv.Quote(name)
			}
			if !strings.Contains(stderr, "shard "+name+": ") {
				t.Errorf("analyze: stderr does not name the key as %s:\n%s", name, stderr)
			}
		})
	}
}

// TestFsckChecksEveryMetaHash: a meta hash that names nothing for its own
// metric hash is reported even when another process's meta hash of the
// same md5 names the sample (a read names all of an md5's metric hashes
// by the one that sorts first): Python's collector reads each metric
// hash's own meta hash and skips the sample. fsck said "no problems".
func TestFsckChecksEveryMetaHash(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := srv.Client()
	ctx := context.Background()
	tests := []struct {
		name   string
		breaks func(meta string) error
		detail string // with the meta hash's name for %s
	}{
		{"no original_key", func(meta string) error { return c.HDel(ctx, meta, "original_key").Err() },
			"orphan metric hash: meta hash %s has no original_key"},
		{"wrong type", func(meta string) error {
			if err := c.Del(ctx, meta).Err(); err != nil {
				return err
			}
			return c.RPush(ctx, meta, "x").Err()
		}, "orphan metric hash: reading meta hash %s: WRONGTYPE"},
		{"not JSON", func(meta string) error { return c.HSet(ctx, meta, "original_key", "not json {").Err() },
			`original_key "not json {" does not hash to`},
		{"another sample's key", func(meta string) error {
			return c.HSet(ctx, meta, "original_key", `["x", "x_total", {}, "h"]`).Err()
		}, `original_key "[\"x\", \"x_total\", {}, \"h\"]" does not hash to`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			testenv.LoadRedisJSONL(t, c, filepath.Join(testenv.FixturesDir(t), "gpe-0.2.4-redis", "store.jsonl"), nil)
			// A counter sample of pid 4103 whose md5 pid 4100 holds too.
			metas, err := c.Keys(ctx, "gunicorn:counter:4103:meta:*").Result()
			if err != nil {
				t.Fatal(err)
			}
			meta := ""
			for _, m := range metas {
				if n, err := c.Exists(ctx, strings.Replace(m, ":4103:", ":4100:", 1)).Result(); err == nil && n == 1 {
					meta = m
					break
				}
			}
			if meta == "" {
				t.Fatal("no counter md5 of both pid 4100 and pid 4103")
			}
			if err := tt.breaks(meta); err != nil {
				t.Fatal(err)
			}
			metric := strings.Replace(meta, ":meta:", ":metric:", 1)
			want := tt.detail
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, meta)
			}

			code, out, stderr := runCLI(t, nil, "fsck", "--redis-url", srv.URL(), "-o", "json")
			var r fsck.Report
			if err := json.Unmarshal([]byte(out), &r); code != 1 || err != nil {
				t.Fatalf("exit %d, %v:\n%s%s", code, err, out, stderr)
			}
			if len(r.Problems) != 1 || r.Problems[0].Shard != metric || !strings.Contains(r.Problems[0].Detail, want) {
				t.Errorf("problems %+v, want one of %s: %q", r.Problems, metric, want)
			}
			if r.Samples != 1681 {
				t.Errorf("%d samples readable, want 1681", r.Samples)
			}
		})
	}
}
